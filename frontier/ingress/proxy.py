"""One HTTP client connection of the ingress: h11 on both sides of a reverse proxy.

The client side is an ``h11`` server, the backend side an ``h11`` client over a
:class:`~frontier.ingress.pipes.Pipe` (a stream to an edge or a socket to an
upstream). Bodies are forwarded piece by piece as they arrive, never gathered:
a slow browser blocks the greenlet in its ``sendall``, so the pipe is not read, so
the edge gets no credit and stops reading its local service (flow control end to
end). Every wait has a deadline:

- ``header_timeout``: the whole request head (slowloris); 408 after;
- ``idle_timeout``: silence between requests, within a body, or of a WebSocket;
- ``backend_timeout``: reaching the backend and the first byte of its answer; 504 after.

A backend connection is kept for the next request of the same client connection
when both ends allow it (keep-alive), and opened again once if a kept one turns
out closed before answering a request without a body. ``Upgrade: websocket`` is
passed through: after the backend's ``101`` both sides are spliced as raw bytes.
"""

from __future__ import annotations

import logging
import socket
import time
from typing import TYPE_CHECKING, Any

import gevent
import h11

from frontier import metrics
from frontier.wire.errors import FrontierError, Timeout

from . import pages
from .backends import ProxyError, RedirectBackend
from .pipes import Pipe, SocketPipe
from .routes import request_host

if TYPE_CHECKING:
    from .apps import AppRuntime
    from .server import Ingress

log = logging.getLogger("frontier.ingress")

#: headers that belong to one hop and are never forwarded
HOP_BY_HOP = frozenset({b"connection", b"keep-alive", b"proxy-connection", b"te", b"trailer", b"transfer-encoding",
                        b"upgrade", b"proxy-authorization", b"proxy-authenticate"})
#: request headers the ingress sets itself (what a client sends is dropped)
FORWARDED = frozenset({b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host", b"forwarded"})
_RECV = 1 << 16
#: forwarded pieces between two yields to the hub (a fast pipe never starves others)
YIELD_EVERY = 16
_UNMATCHED = "-"


class _ClientGone(Exception):
    """The client closed, broke HTTP, or was too slow: drop the connection."""


class ClientConnection:
    """Serves the requests of one accepted client connection, one after another."""

    def __init__(self, ingress: "Ingress", sock: socket.socket, addr: tuple[str, int], scheme: str) -> None:
        self.ingress = ingress
        self.cfg = ingress.cfg
        self.sock = sock
        self.client_ip = addr[0]
        self.client_addr = f"{addr[0]}:{addr[1]}"
        self.scheme = scheme
        self.conn = h11.Connection(h11.SERVER, max_incomplete_event_size=self.cfg.max_header_size)
        #: a kept-alive backend connection: (key, pipe, h11 client)
        self._kept: tuple[Any, Pipe, h11.Connection] | None = None
        #: True while a request is being answered (a drain waits for those)
        self.busy = False

    def abort(self) -> None:
        """End the connection now (its reader sees the socket fail)."""
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    # -- the connection's life -------------------------------------------------------------

    def serve(self) -> None:
        """Answer requests until the client or a deadline ends the connection."""
        try:
            first = True
            while True:
                request = self._read_head(first)
                first = False
                if request is None:
                    return
                self.busy = True
                try:
                    keep = self._answer(request)
                finally:
                    self.busy = False
                if not keep or self.ingress.draining:
                    return
                if self.conn.our_state is h11.DONE and self.conn.their_state is h11.DONE:
                    self.conn.start_next_cycle()
                else:
                    return
                # pipelined requests are answered from the buffer without a read that would
                # block: yield once per request so one client cannot hold the hub
                gevent.sleep(0)
        except _ClientGone:
            pass
        finally:
            self._drop_kept()
            try:
                self.sock.close()
            except OSError:
                pass

    def _read_head(self, first: bool) -> h11.Request | None:
        """The next request's head within the deadlines, or None (closed, timed out,
        or broken: answered with 400/408/431 where it is still possible)."""
        cfg = self.cfg
        started = bool(self.conn.trailing_data[0])  # bytes of this head arrived (408 if it stays incomplete)
        deadline = time.monotonic() + (cfg.header_timeout if started or first else cfg.idle_timeout)
        while True:
            try:
                event = self.conn.next_event()
            except h11.RemoteProtocolError as exc:
                error = pages.HEADERS_TOO_LARGE if exc.error_status_hint == 431 else pages.BAD_REQUEST
                self._send_error_if_possible(error, f"the request could not be read: {exc}")
                return None
            if event is h11.NEED_DATA:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    if started:
                        self._send_error_if_possible(pages.REQUEST_TIMEOUT, f"the request head did not arrive within {cfg.header_timeout:g}s")
                    return None
                data = self._client_recv(remaining, quiet_timeout=True)
                if data is None:
                    continue  # the deadline check above decides
                if data and not started:
                    started = True
                    deadline = time.monotonic() + cfg.header_timeout
                self.conn.receive_data(data)
                continue
            if type(event) is h11.Request:
                # h11 bounds only a head still incomplete; one that came whole in one read is measured here
                size = len(event.method) + len(event.target) + sum(len(n) + len(v) + 4 for n, v in event.headers.raw_items())
                if size > cfg.max_header_size:
                    self._send_error(pages.HEADERS_TOO_LARGE, f"the request head is larger than {cfg.max_header_size} bytes",
                                     (_header(event.headers, b"accept") or b"").decode("latin-1"))
                    metrics.INGRESS_REQUESTS.labels(app=_UNMATCHED, code="431").inc()
                    return None
                return event
            return None  # ConnectionClosed, or PAUSED (nothing more to do on this connection)

    # -- one request -------------------------------------------------------------------------

    def _answer(self, request: h11.Request) -> bool:
        """Answer one request; False when the connection must end."""
        started = time.monotonic()
        headers = request.headers
        host_header = _header(headers, b"host") or b""
        host = request_host(host_header.decode("latin-1"))
        target = request.target.decode("latin-1")
        if target.startswith(("http://", "https://")):  # absolute form: its authority wins
            rest = target.split("://", 1)[1]
            authority, slash, path = rest.partition("/")
            host, target = request_host(authority), "/" + path
        accept = (_header(headers, b"accept") or b"").decode("latin-1")
        app_label = _UNMATCHED
        status = 0
        try:
            challenge = self.ingress.acme_answer(target)
            if challenge is not None:
                status = self._send_simple(200, challenge, "text/plain")
                return True
            found = self.ingress.apps.match(host, target)
            if found is None:
                raise ProxyError(pages.NO_APP, f"no app serves {host or '(no host)'}{target.split('?', 1)[0]}")
            match, runtime = found
            app_label = runtime.app.id
            if runtime.auth.required and not runtime.auth.check(_header(headers, b"authorization")):
                status = self._send_error(pages.UNAUTHORIZED, "this app needs credentials", accept, [runtime.auth.challenge()])
                return self.conn.their_state is h11.DONE or self._skip_body_if_small()
            length = _header(headers, b"content-length")
            max_body = self.cfg.max_body_size
            if max_body and length is not None and length.isdigit() and int(length) > max_body:
                raise ProxyError(pages.BODY_TOO_LARGE, f"the body is larger than {max_body} bytes")
            if isinstance(runtime.backend, RedirectBackend):
                method_kept = request.method not in (b"GET", b"HEAD")
                location = runtime.backend.location(target)
                status = self._send_simple(308 if method_kept else 301, f"Moved to {location}\n", "text/plain",
                                           [("location", location)])
                return self.conn.their_state is h11.DONE or self._skip_body_if_small()
            status = self._proxy(request, match, runtime, host_header)
            return status != 101
        except ProxyError as exc:
            if self.conn.our_state is not h11.SEND_RESPONSE:
                status = 502
                return False  # too late for an error page: the answer had started
            status = self._send_error(exc.error, exc.message, accept)
            return self.conn.their_state is h11.DONE or self._skip_body_if_small()
        finally:
            # a request cut off mid-answer (client or backend gone) counts as "aborted"
            metrics.INGRESS_REQUESTS.labels(app=app_label, code=str(status) if status else "aborted").inc()
            metrics.INGRESS_DURATION.labels(app=app_label).observe(time.monotonic() - started)

    def _proxy(self, request: h11.Request, match: Any, runtime: "AppRuntime", host_header: bytes) -> int:
        """Forward one request to the app's backend and its answer back; the status sent
        (101: a WebSocket was spliced and the connection is over)."""
        cfg = self.cfg
        app_id = runtime.app.id
        key, open_pipe = runtime.backend.resolve(match)
        upgrade = _wants_websocket(request.headers)
        out_headers = self._request_headers(request, runtime, host_header, upgrade)
        head = h11.Request(method=request.method, target=request.target, headers=out_headers)
        # a request without a body can be sent again if a kept connection turns out closed
        no_body = self._body_is_empty(request)
        pipe, bconn, reused = self._backend_for(key, open_pipe)
        bytes_in = 0
        try:
            try:
                pipe.sendall(bconn.send(head), cfg.backend_timeout)
                if no_body:
                    self._expect(h11.EndOfMessage)
                    pipe.sendall(bconn.send(h11.EndOfMessage()), cfg.backend_timeout)
            except FrontierError:
                if not (reused and no_body):
                    raise ProxyError(pages.BACKEND_UNREACHABLE, "the backend closed the connection") from None
                self._drop(pipe)
                pipe, bconn = self._fresh_backend(key, open_pipe)
                pipe.sendall(bconn.send(head), cfg.backend_timeout)
                pipe.sendall(bconn.send(h11.EndOfMessage()), cfg.backend_timeout)
                reused = False
            if not no_body:
                bytes_in = self._forward_body(pipe, bconn)
            try:
                response = self._read_response_head(pipe, bconn)
            except ProxyError as exc:
                if not (reused and no_body and exc.error is pages.BACKEND_UNREACHABLE):
                    raise
                self._drop(pipe)
                pipe, bconn = self._fresh_backend(key, open_pipe)
                pipe.sendall(bconn.send(head), cfg.backend_timeout)
                pipe.sendall(bconn.send(h11.EndOfMessage()), cfg.backend_timeout)
                response = self._read_response_head(pipe, bconn)
        except FrontierError as exc:
            self._drop(pipe)
            if isinstance(exc, Timeout):
                raise ProxyError(pages.BACKEND_TIMEOUT, f"the backend did not read the request within {cfg.backend_timeout:g}s") from None
            raise ProxyError(pages.BACKEND_UNREACHABLE, f"the backend connection failed: {exc.message}") from None
        except BaseException:  # ProxyError, the client gone mid-body, the greenlet killed
            self._drop(pipe)
            raise
        finally:
            if bytes_in:
                metrics.INGRESS_BYTES.labels(app=app_id, direction="in").inc(bytes_in)
        if response.status_code == 101:
            return self._switch(response, pipe, bconn, app_id)
        sent = [0]
        try:
            head = h11.Response(status_code=response.status_code, headers=self._closing(_response_headers(response.headers)),
                                reason=response.reason)
            self._forward_response_body(head, pipe, bconn, sent)
        except FrontierError:
            self._drop(pipe)
            raise _ClientGone() from None  # headers are out: the client sees a cut connection
        except BaseException:  # the client gone (a reset stream tells the edge to let go too)
            self._drop(pipe)
            raise
        finally:
            if sent[0]:
                metrics.INGRESS_BYTES.labels(app=app_id, direction="out").inc(sent[0])
        if bconn.our_state is h11.DONE and bconn.their_state is h11.DONE:
            bconn.start_next_cycle()
            self._kept = (key, pipe, bconn)
        else:
            self._drop(pipe)
        return response.status_code

    # -- the backend side ----------------------------------------------------------------------

    def _backend_for(self, key: Any, open_pipe: Any) -> tuple[Pipe, h11.Connection, bool]:
        kept = self._kept
        self._kept = None
        if kept is not None:
            if kept[0] == key and not getattr(kept[1], "failed", False):
                return kept[1], kept[2], True
            kept[1].close()
        pipe, bconn = self._fresh_backend(key, open_pipe)
        return pipe, bconn, False

    def _fresh_backend(self, key: Any, open_pipe: Any) -> tuple[Pipe, h11.Connection]:
        pipe = open_pipe(self.client_addr, self.cfg.backend_timeout)
        return pipe, h11.Connection(h11.CLIENT, max_incomplete_event_size=64 * 1024)

    def _drop(self, pipe: Pipe) -> None:
        try:
            pipe.close()
        except Exception:  # closing never fails the request
            log.debug("closing a backend pipe failed", exc_info=True)

    def _drop_kept(self) -> None:
        if self._kept is not None:
            self._drop(self._kept[1])
            self._kept = None

    def _request_headers(self, request: h11.Request, runtime: "AppRuntime", host_header: bytes,
                         upgrade: bool) -> list[tuple[bytes, bytes]]:
        named = _connection_tokens(request.headers)
        strip_auth = runtime.auth.required
        out: list[tuple[bytes, bytes]] = []
        chunked = False
        for name, value in request.headers:
            if name == b"transfer-encoding":
                chunked = chunked or b"chunked" in value.lower()
                continue
            if name in HOP_BY_HOP or name in FORWARDED or name in named or name == b"expect":
                continue
            if strip_auth and name == b"authorization":
                continue
            out.append((name, value))
        if chunked:
            out.append((b"transfer-encoding", b"chunked"))
        if upgrade:
            out += [(b"connection", b"Upgrade"), (b"upgrade", b"websocket")]
        out += [(b"x-forwarded-for", self.client_ip.encode()), (b"x-forwarded-proto", self.scheme.encode()),
                (b"x-forwarded-host", host_header)]
        return out

    @staticmethod
    def _body_is_empty(request: h11.Request) -> bool:
        length = _header(request.headers, b"content-length")
        if _header(request.headers, b"transfer-encoding") is not None:
            return False
        return length is None or length.strip() == b"0"

    def _forward_body(self, pipe: Pipe, bconn: h11.Connection) -> int:
        """The client's body to the backend, piece by piece; bytes forwarded."""
        cfg = self.cfg
        if self.conn.they_are_waiting_for_100_continue:
            self._client_send(h11.InformationalResponse(status_code=100, headers=[]))
        total = 0
        pieces = 0
        while True:
            event = self._client_event()
            if type(event) is h11.Data:
                total += len(event.data)
                if cfg.max_body_size and total > cfg.max_body_size:
                    raise ProxyError(pages.BODY_TOO_LARGE, f"the body is larger than {cfg.max_body_size} bytes")
                pipe.sendall(bconn.send(event), cfg.backend_timeout)
                pieces += 1
                if pieces % YIELD_EVERY == 0:
                    gevent.sleep(0)
            elif type(event) is h11.EndOfMessage:
                pipe.sendall(bconn.send(h11.EndOfMessage()), cfg.backend_timeout)
                return total
            else:
                raise _ClientGone()

    def _read_response_head(self, pipe: Pipe, bconn: h11.Connection) -> h11.Response | h11.InformationalResponse:
        """The backend's answer head within ``backend_timeout`` (1xx other than 101 skipped)."""
        cfg = self.cfg
        deadline = time.monotonic() + cfg.backend_timeout
        while True:
            try:
                event = bconn.next_event()
            except h11.RemoteProtocolError as exc:
                raise ProxyError(pages.BAD_BACKEND_RESPONSE, f"the backend's answer is not valid HTTP: {exc}") from None
            if event is h11.NEED_DATA:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise ProxyError(pages.BACKEND_TIMEOUT, f"the backend did not answer within {cfg.backend_timeout:g}s")
                try:
                    data = pipe.recv(_RECV, remaining)
                except Timeout:
                    raise ProxyError(pages.BACKEND_TIMEOUT, f"the backend did not answer within {cfg.backend_timeout:g}s") from None
                except FrontierError as exc:
                    raise ProxyError(pages.BACKEND_UNREACHABLE, f"the backend connection failed: {exc.message}") from None
                if not data:
                    raise ProxyError(pages.BACKEND_UNREACHABLE, "the backend closed the connection without answering")
                bconn.receive_data(data)
                continue
            if type(event) is h11.Response:
                return event
            if type(event) is h11.InformationalResponse:
                if event.status_code == 101:
                    return event
                continue
            raise ProxyError(pages.BAD_BACKEND_RESPONSE, "the backend closed the connection without answering")

    def _forward_response_body(self, head: h11.Response, pipe: Pipe, bconn: h11.Connection, sent: list[int]) -> None:
        """The answer's head and body to the client, counting body bytes in ``sent[0]``.
        What is ready is written in one ``sendall`` (head and a small body go out
        together); before waiting on the backend everything ready is written. A slow
        client blocks here, so the pipe is not read and the backend is slowed down."""
        idle = self.cfg.idle_timeout
        out = [self.conn.send(head)]
        ready = 0
        pieces = 0
        while True:
            try:
                event = bconn.next_event()
            except h11.RemoteProtocolError:
                raise _ClientGone() from None  # the backend broke off mid-body
            if event is h11.NEED_DATA:
                if out:
                    self._client_write(out)
                    ready = 0
                bconn.receive_data(pipe.recv(_RECV, idle))
                continue
            if type(event) is h11.Data:
                out.append(self.conn.send(event))
                sent[0] += len(event.data)
                ready += len(event.data)
                if ready >= _RECV:
                    self._client_write(out)
                    ready = 0
                pieces += 1
                if pieces % YIELD_EVERY == 0:
                    gevent.sleep(0)
            elif type(event) is h11.EndOfMessage:
                out.append(self.conn.send(h11.EndOfMessage()))
                self._client_write(out)
                return
            else:
                raise _ClientGone()

    # -- WebSocket (any 101 Switching Protocols) ---------------------------------------------------

    def _switch(self, response: h11.InformationalResponse, pipe: Pipe, bconn: h11.Connection, app_id: str) -> int:
        """Pass the 101 on, then splice raw bytes both ways until either side ends."""
        headers = [(n, v) for n, v in response.headers if n not in HOP_BY_HOP] + [(b"connection", b"Upgrade"), (b"upgrade", b"websocket")]
        self._client_send(h11.InformationalResponse(status_code=101, headers=headers, reason=response.reason))
        client_extra, _ = self.conn.trailing_data
        backend_extra, _ = bconn.trailing_data
        client = SocketPipe(self.sock, self.client_addr)
        gauge = metrics.INGRESS_WEBSOCKETS.labels(app=app_id)
        gauge.inc()
        activity = [time.monotonic()]
        try:
            if client_extra:
                pipe.sendall(client_extra, self.cfg.backend_timeout)
            if backend_extra:
                client.sendall(backend_extra, self.cfg.idle_timeout)
            up = gevent.spawn(_splice, client, pipe, self.cfg.idle_timeout, activity)
            down = gevent.spawn(_splice, pipe, client, self.cfg.idle_timeout, activity)
            gevent.joinall([up, down], count=1)
            # one direction ended: give the other a moment to finish its half, then stop
            gevent.joinall([up, down], timeout=self.cfg.idle_timeout)
            gevent.killall([up, down], block=True, timeout=1)
        except FrontierError:
            pass
        finally:
            gauge.dec()
            self._drop(pipe)
        return 101  # the connection ends with the WebSocket

    # -- the client side ---------------------------------------------------------------------------

    def _client_event(self) -> Any:
        """The next event of the request body (idle deadline per read)."""
        while True:
            try:
                event = self.conn.next_event()
            except h11.RemoteProtocolError:
                raise _ClientGone() from None
            if event is not h11.NEED_DATA:
                return event
            data = self._client_recv(self.cfg.idle_timeout)
            self.conn.receive_data(data)

    def _expect(self, kind: type) -> None:
        event = self._client_event()
        if type(event) is not kind:
            raise _ClientGone()

    def _skip_body_if_small(self) -> bool:
        """After an early answer: read away a small unread body so the connection can be
        kept; False (close) when it is large or slow."""
        budget = 64 * 1024
        deadline = time.monotonic() + 1.0
        try:
            while self.conn.their_state is h11.SEND_BODY and budget > 0 and time.monotonic() < deadline:
                event = self._client_event()
                if type(event) is h11.Data:
                    budget -= len(event.data)
        except _ClientGone:
            return False
        return self.conn.their_state is h11.DONE

    def _client_recv(self, timeout: float, *, quiet_timeout: bool = False) -> bytes | None:
        try:
            self.sock.settimeout(max(timeout, 0.001))
            return self.sock.recv(_RECV)
        except socket.timeout:
            if quiet_timeout:
                return None
            raise _ClientGone() from None
        except OSError:
            raise _ClientGone() from None

    def _client_send(self, event: Any) -> None:
        self._client_write([self.conn.send(event)])

    def _client_write(self, out: list[bytes]) -> None:
        """Write (and empty) ``out`` to the client within ``idle_timeout``."""
        data = out[0] if len(out) == 1 else b"".join(out)
        out.clear()
        if not data:
            return
        try:
            self.sock.settimeout(self.cfg.idle_timeout)
            self.sock.sendall(data)
        except OSError:  # socket.timeout included: a client that does not read
            raise _ClientGone() from None

    def _closing(self, headers: list[Any]) -> list[Any]:
        """``headers`` plus ``Connection: close`` while the ingress drains."""
        return [*headers, (b"connection", b"close")] if self.ingress.draining else headers

    def _send_whole(self, status: int, headers: list[tuple[str, str]], body: bytes) -> int:
        """A complete answer of the ingress's own, in one write."""
        headers = self._closing(headers)
        conn = self.conn
        self._client_write([conn.send(h11.Response(status_code=status, headers=headers, reason=pages.reason(status))),
                            conn.send(h11.Data(data=body)), conn.send(h11.EndOfMessage())])
        return status

    def _send_simple(self, status: int, text: str, ctype: str, extra: list[tuple[str, str]] | None = None) -> int:
        body = text.encode()
        return self._send_whole(status, [("content-type", ctype), ("content-length", str(len(body))), *(extra or [])], body)

    def _send_error(self, error: tuple[int, str], message: str, accept: str, extra: list[tuple[str, str]] | None = None) -> int:
        page = pages.render(error, message, accept, extra)
        return self._send_whole(page.status, page.headers, page.body)

    def _send_error_if_possible(self, error: tuple[int, str], message: str) -> None:
        """An error page when h11 still allows an answer (a broken head, a late one)."""
        if self.conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return
        page = pages.render(error, message, "")
        try:
            # h11 cannot answer a request it could not parse: write the bytes ourselves
            lines = [f"HTTP/1.1 {page.status} {pages.reason(page.status)}".encode()]
            lines += [f"{name}: {value}".encode() for name, value in page.headers] + [b"connection: close", b"", b""]
            self.sock.settimeout(1.0)
            self.sock.sendall(b"\r\n".join(lines) + page.body)
            metrics.INGRESS_REQUESTS.labels(app=_UNMATCHED, code=str(page.status)).inc()
        except OSError:
            pass


def _splice(src: Pipe, dst: Pipe, idle: float, activity: list[float]) -> None:
    """Raw bytes from ``src`` to ``dst`` until ``src`` ends (then half-close ``dst``).
    A read times out after ``idle`` seconds without traffic in either direction."""
    pieces = 0
    while True:
        try:
            data = src.recv(_RECV, idle)
        except Timeout:
            if time.monotonic() - activity[0] < idle:
                continue
            return
        except FrontierError:
            return
        if not data:
            dst.shutdown_write()
            return
        activity[0] = time.monotonic()
        try:
            dst.sendall(data, idle)
        except FrontierError:
            return
        pieces += 1
        if pieces % YIELD_EVERY == 0:
            gevent.sleep(0)


def _header(headers: Any, name: bytes) -> bytes | None:
    for key, value in headers:
        if key == name:
            return value
    return None


def _connection_tokens(headers: Any) -> set[bytes]:
    tokens: set[bytes] = set()
    for key, value in headers:
        if key == b"connection":
            tokens.update(token.strip().lower() for token in value.split(b","))
    return tokens


def _wants_websocket(headers: Any) -> bool:
    upgrade = _header(headers, b"upgrade")
    return upgrade is not None and upgrade.strip().lower() == b"websocket" and b"upgrade" in _connection_tokens(headers)


def _response_headers(headers: Any) -> list[tuple[bytes, bytes]]:
    named = _connection_tokens(headers)
    return [(n, v) for n, v in headers if n not in HOP_BY_HOP and n not in named]
