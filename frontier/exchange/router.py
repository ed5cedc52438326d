"""The exchange: admits connections and routes calls, publishes and streams.

All routing is non-blocking: forwarding a frame appends it to the target session's
outgoing buffer, and the answer is matched back through a :class:`Pending` entry, so
no greenlet is spawned per call and a slow peer never stalls anyone else. The only
blocking work (service hooks during an edge's handshake, MQ produces) runs in the
edge's own reader greenlet or a greenlet of its own.
"""

from __future__ import annotations

import logging
import random
import time
from typing import Any, Callable, Collection, Final, Iterable, Mapping, Sequence

import gevent
import msgpack

from frontier import metrics
from frontier.sessions.bans import Ban, EdgeBans
from frontier.sessions.info import EdgeInfo, ServiceInfo, SessionObserver
from frontier.sessions.registry import EdgeRegistry, ServiceRegistry
from frontier.sessions.session import Session
from frontier.wire.codec import event_of, fields_of
from frontier.wire.connection import RELAY_RESERVE
from frontier.wire.errors import (
    ErrorCode, FrontierError, InvalidArgument, LimitExceeded, Refused, RemoteProtocolError, code_name,
)
from frontier.wire.events import (
    EXPOSE_PREFIX, HOOK_EDGE_OFFLINE, HOOK_EDGE_ONLINE, HOOK_GET_EDGE_ID, HOOK_METHOD_PREFIX, HOOKS, ROLE_SERVICE, Ack, Cancel,
    Event, GoAway, Hello, Ping, Pong, Publish, Register, Request, Response, StreamAccept, StreamCredit,
    StreamData, StreamEnd, StreamOpen, StreamReset, Welcome, WireId,
)
from frontier.wire.state import StreamState

from . import hooks
from .deadlines import CallDeadlines
from .hashby import picker
from .pending import Pending

log = logging.getLogger("frontier.exchange")

E2S: Final = metrics.EDGE_TO_SERVICE
S2E: Final = metrics.SERVICE_TO_EDGE
E2MQ: Final = metrics.EDGE_TO_MQ
OK: Final = ErrorCode.OK
_REQUEST: Final = Request.TYPE
_RESPONSE: Final = Response.TYPE
_PUBLISH: Final = Publish.TYPE
_ACK: Final = Ack.TYPE
_WELCOME: Final = Welcome.TYPE
#: packs hook payloads (one packer: the exchange runs on one hub, and ``packb`` makes one per call)
_pack_payload: Final = msgpack.Packer().pack
_monotonic: Final = time.monotonic
_CALL: Final = metrics.CALL
_PUBLISHED: Final = metrics.PUBLISH
_RESULT: Final[dict[int, str]] = {code: code_name(code) for code in ErrorCode}  # metric label per code
_MAX_EDGE_ID = 2**53  # ids stay exact in JSON consumers
#: what sends and receives stream frames through the exchange: a :class:`Session`, or
#: a :class:`~frontier.exchange.gateway_stream.GatewayStream` (the gateway's own end of
#: a stream, e.g. the ingress', which speaks like one). Any, not a union: compiled
#: (frontier/compiled.py), a parameter typed ``Session`` refuses anything else at run
#: time. Calls, publishes and their answers only ever come from and go to sessions (a
#: call on a gateway stream is refused here), so their handlers take ``Session``: the
#: compiled code then reads a session's fields directly
Peer = Any


def check_names(kind: str, names: Iterable[str], max_length: int) -> None:
    """Refuse empty names, reserved ``$`` names and names over ``max_length`` characters."""
    for name in names:
        if not name or name.startswith(HOOK_METHOD_PREFIX):
            raise InvalidArgument(f"{kind} name {name!r:.80} is empty or reserved")
        if len(name) > max_length:
            raise LimitExceeded(f"{kind} name of {len(name)} characters is longer than limits.max_name_length ({max_length})")


def check_registrations(have: tuple[Collection[str], Collection[str]], add_rpcs: Sequence[str], add_topics: Sequence[str],
                        limits: Any) -> None:
    """Refuse what would take a connection past ``limits.max_registrations`` methods plus
    topics (``have``: what it holds now), or carries a bad name; cheapest checks first."""
    rpcs, topics = have
    cap = limits.max_registrations
    if len(rpcs) + len(topics) + len(add_rpcs) + len(add_topics) > cap:  # duplicates may still fit
        total = len(set(rpcs).union(add_rpcs)) + len(set(topics).union(add_topics))
        if total > cap:
            raise LimitExceeded(f"{total} methods and topics exceed limits.max_registrations ({cap})")
    check_names("method", add_rpcs, limits.max_name_length)
    check_names("topic", add_topics, limits.max_name_length)


class Exchange:
    """Routing core of one gateway; implements the session ``Dispatcher``."""

    def __init__(
        self, *, limits: Any, hashby: str = "edgeid", alloc_edge_ids: bool = True,
        sinks: Sequence[Any] = (), observers: Sequence[SessionObserver] = (),
        authenticators: Mapping[str, Any] | None = None, edge_hooks: str = hooks.ONE,
    ) -> None:
        self.limits = limits
        #: largest body of a frame the gateway relays (it may grow by RELAY_RESERVE)
        self._relay_max = limits.max_frame_size - RELAY_RESERVE
        # the limits every call reads, as native values (``limits`` is immutable)
        self._max_inflight: int = limits.max_inflight
        self._default_timeout = float(limits.default_call_timeout)
        self._max_timeout = float(limits.max_call_timeout)
        #: what every ``Welcome`` says after the id
        self._welcome_limits = (limits.max_frame_size, float(limits.heartbeat_interval), limits.stream_window, limits.max_inflight)
        #: role -> object whose ``authenticate(hello)`` checks credentials first
        #: (see :mod:`frontier.auth`); a role missing here is not authenticated
        self.authenticators = dict(authenticators or {})
        self.edges: EdgeRegistry[Session] = EdgeRegistry()
        self.services: ServiceRegistry[Session] = ServiceRegistry()
        self.observers: list[SessionObserver] = list(observers)
        metrics.EDGES.set_function(lambda: len(self.edges))
        metrics.SERVICES.set_function(lambda: len(self.services))
        self.alloc_edge_ids = alloc_edge_ids
        #: edge ids an operator banned, refused at admission
        self.bans = EdgeBans()
        self.draining = False
        self._pick = picker(hashby)
        #: ``one`` (Go's: one service per hook, picked by hashby) or ``all`` (every one)
        self.edge_hooks = edge_hooks
        self._sinks_by_topic: dict[str, list[Any]] = {}
        for sink in sinks:
            for topic in sink.topics:
                self._sinks_by_topic.setdefault(topic, []).append(sink)
        self._next_gid = 0
        self._next_service_id = 0
        self._deadlines = CallDeadlines(self._expire, gevent.get_hub().loop.timer)
        self._stats = metrics.ROUTES
        #: the counters of calls and of publishes, by direction (the directions are known)
        self._call_routes = {d: self._stats.route(_CALL, d) for d in (E2S, S2E)}
        self._publish_routes = {d: self._stats.route(_PUBLISHED, d) for d in (E2S, S2E, E2MQ)}
        self._dispatch: dict[type, Callable[[Peer, Any], None]] = {
            Request: self._on_lean_event, Response: self._on_lean_event, Ack: self._on_lean_event,
            Publish: self._on_lean_event, Cancel: self._on_cancel, Register: self._on_register,
            StreamOpen: self._on_stream_open, StreamAccept: self._on_stream_accept,
            StreamData: self._on_stream_data, StreamCredit: self._on_stream_credit,
            StreamEnd: self._on_stream_end, StreamReset: self._on_stream_reset,
            Ping: self._on_ping, Pong: _ignore,
        }

    # -- admission ------------------------------------------------------------------------

    def admit(self, session: Session, hello: Hello) -> None:
        """Handshake: check credentials, assign an id, run hooks, register, send
        ``Welcome`` (or refuse). Credentials are checked before any hook runs."""
        try:
            if self.draining:
                raise FrontierError("the gateway is draining", code=ErrorCode.GOING_AWAY)
            if hello.role != session.role:
                raise Refused(f"this port is for {session.role}s, not {hello.role}s")
            auth = self.authenticators.get(session.role)
            claims = auth.authenticate(hello) if auth is not None else None
            bound = claims.edge_id if claims is not None else None
            if claims is not None and claims.expires:
                session.expires = claims.expires  # the reaper closes the connection then
            if session.is_edge:
                if hello.topics:
                    raise InvalidArgument("edges register methods only")
                check_registrations(((), ()), hello.rpcs, (), self.limits)
                self._admit_edge(session, hello, bound)
            else:
                check_registrations(((), ()), hello.rpcs, hello.topics, self.limits)
                name = hello.name
                if name.startswith(EXPOSE_PREFIX) and ROLE_SERVICE in self.authenticators:
                    # another frontier relaying its ingress's streams to edges here (only
                    # authenticated services may): "$expose:<target>", the target checked
                    name = name[len(EXPOSE_PREFIX):]
                check_names("service", (name,) if name else (), self.limits.max_name_length)
                self._admit_service(session, hello)
        except FrontierError as exc:
            metrics.CONNECTIONS_REFUSED.labels(role=session.role, reason=code_name(exc.code)).inc()
            session.close(exc.code, exc.message, retry_after=exc.retry_after)

    def _welcome(self, session: Session) -> Event:
        """The ``Welcome`` for ``session`` (built by ``event_of``: no dataclass ``__init__``
        per connect)."""
        return event_of((_WELCOME, session.id, *self._welcome_limits))

    def _admit_service(self, session: Session, hello: Hello) -> None:
        unknown = set(hello.hooks) - set(HOOKS)
        if unknown:
            raise InvalidArgument(f"unknown hooks {sorted(unknown)}")
        self._next_service_id += 1
        session.id = self._next_service_id
        session.name = hello.name
        session.rpcs = set(hello.rpcs)
        session.topics = set(hello.topics)
        session.hooks = tuple(hello.hooks)
        self.services.add(session.id, session, name=session.name, rpcs=session.rpcs, topics=session.topics, hooks=session.hooks)
        session.online = True
        session.send(self._welcome(session))
        self._notify("service_online", service_info(session))

    def _admit_edge(self, session: Session, hello: Hello, bound: int | None = None) -> None:
        session.meta = hello.meta
        session.rpcs = tuple(sorted(set(hello.rpcs)))
        edge_id = session.id = bound if bound is not None else self._assign_edge_id(session, hello)
        self.bans.check(edge_id)
        # what is sent to it is held until the Welcome goes out
        session.held = []
        if edge_id not in self.edges:
            # visible at once, so a service reacting to edge_online can already call it;
            # an id that is held stays with its holder until the newcomer passed every hook
            self.edges.put(edge_id, session)
        try:
            self._run_online_hooks(session)
        except FrontierError:
            self.edges.remove(edge_id, session)
            raise
        if session.closed:  # kicked while its hooks ran
            self.edges.remove(edge_id, session)
            return
        old = self.edges.put(edge_id, session)
        if old is not None:
            old.close(ErrorCode.DUPLICATE_EDGE, f"edge {edge_id} connected again from {session.addr}")
        session.online = True
        session.release_held(self._welcome(session))
        if self.observers:  # the snapshot costs a connect something; nobody may be listening
            self._notify("edge_online", edge_info(session))

    def _assign_edge_id(self, session: Session, hello: Hello) -> int:
        if self.services.by_hook.get(HOOK_GET_EDGE_ID):
            payload = _pack_payload({"meta": session.meta, "addr": session.addr})
            target, answer = self._hook_one(HOOK_GET_EDGE_ID, payload, 0, session.ip)
            if target is None:
                raise Refused(f"get_edge_id: {answer.message}")
            if answer.code != OK:
                raise Refused(f"get_edge_id of service {target.name or target.id} failed: {answer.message or code_name(answer.code)}")
            try:
                edge_id = msgpack.unpackb(answer.data)
            except Exception:
                edge_id = None
            if type(edge_id) is not int or edge_id < 0:
                raise Refused(f"get_edge_id returned {edge_id!r}, not an edge id")
            return edge_id
        if hello.edge_id is not None:
            return hello.edge_id
        if self.alloc_edge_ids:
            while True:
                edge_id = random.randrange(1, _MAX_EDGE_ID)
                if edge_id not in self.edges:
                    return edge_id
        raise Refused("no get_edge_id service is online and edgeid_alloc_when_no_idservice_on is off")

    def _run_online_hooks(self, session: Session) -> None:
        targets = list(self.services.by_hook.get(HOOK_EDGE_ONLINE))
        if not targets:
            return
        payload = _pack_payload({"edge_id": session.id, "meta": session.meta, "addr": session.addr})
        if self.edge_hooks == hooks.ONE:
            target, answer = self._hook_one(HOOK_EDGE_ONLINE, payload, session.id, session.ip)
            if target is not None and answer.code != OK:
                raise Refused(f"edge_online of service {target.name or target.id} refused edge {session.id}: {answer.message or code_name(answer.code)}")
            return  # none left online: nobody to refuse the edge
        waiters = [(t, self._hook_call(t, "$" + HOOK_EDGE_ONLINE, payload)) for t in targets]
        for target, waiter in waiters:
            answer = waiter.get()
            if answer.code != OK:
                raise Refused(f"edge_online of service {target.name or target.id} refused edge {session.id}: {answer.message or code_name(answer.code)}")

    def _hook_one(self, hook: str, payload: bytes, edge_id: int, ip: str) -> tuple[Session | None, hooks.HookAnswer]:
        """Ask one service registered for ``hook`` (see :func:`hooks.call_one`)."""
        return hooks.call_one(lambda: list(self.services.by_hook.get(hook)), self._pick, self._hook_call,
                              "$" + hook, payload, edge_id, ip)

    def _hook_call(self, target: Session, method: str, payload: bytes,
                   callback: Callable[[hooks.HookAnswer], None] | None = None) -> hooks.HookAnswer:
        """Send a hook request; the answer always arrives by the hook deadline, as a
        timeout if the service is silent (to ``callback`` if given)."""
        waiter = hooks.HookAnswer(callback)
        self._send_to(None, 0, target, method, payload, self.limits.hook_timeout, None, 0, "hook", False, waiter)
        return waiter

    # -- dispatch ---------------------------------------------------------------------------

    def dispatch(self, session: Peer, event: Event | list) -> None:
        """Handle one event from an admitted session, or a lean frame's field list."""
        if type(event) is list:
            self._on_lean(session, event)
        else:
            self._dispatch[type(event)](session, event)

    def _on_lean(self, session: Session, f: list) -> None:
        """A call, publish or answer as its field list (the lean frames)."""
        kind: int = f[0]
        if kind == _REQUEST or kind == _PUBLISH:
            self._on_call(session, f)
        else:
            self._on_answer(session, f)

    def _on_lean_event(self, session: Session, event: Event) -> None:
        """A call, publish or answer that came as an event object: route its fields."""
        self._on_lean(session, fields_of(event))

    def _on_ping(self, s: Peer, ev: Ping) -> None:
        s.send(Pong(ev.nonce))

    def _on_register(self, s: Session, ev: Register) -> None:
        try:
            if s.is_edge and (ev.topics or ev.hooks):
                raise InvalidArgument("edges register methods only")
            check_registrations((s.rpcs, s.topics), ev.rpcs, ev.topics, self.limits)
            # what is registered already changes nothing: a repeated Register costs no
            # registry or observer work (the control-plane store, Frontlas)
            if s.is_edge:
                if not set(ev.rpcs).issubset(s.rpcs):
                    s.rpcs = tuple(sorted(set(s.rpcs).union(ev.rpcs)))
                    self._notify("edge_updated", edge_info(s))
            else:
                unknown = set(ev.hooks) - set(HOOKS)
                if unknown:
                    raise InvalidArgument(f"unknown hooks {sorted(unknown)}")
                new_hooks = tuple(h for h in ev.hooks if h not in s.hooks)
                rpcs, topics = s.rpcs, s.topics
                assert isinstance(rpcs, set) and isinstance(topics, set)  # a service's are sets
                if new_hooks or not rpcs.issuperset(ev.rpcs) or not topics.issuperset(ev.topics):
                    rpcs.update(ev.rpcs)
                    topics.update(ev.topics)
                    s.hooks += new_hooks
                    self.services.extend(s, rpcs=ev.rpcs, topics=ev.topics, hooks=new_hooks)
                    self._notify("service_updated", service_info(s))
        except FrontierError as exc:
            s.send(Response(ev.req_id, exc.code, b"", exc.message))
            return
        s.send(Response(ev.req_id, OK))

    # -- calls and publishes ---------------------------------------------------------------------

    def _too_large(self, s: Session) -> str:
        """Why the frame ``s`` just sent cannot be relayed (see RELAY_RESERVE)."""
        metrics.RELAY_REFUSED.labels(kind="entry").inc()
        return (f"a frame of {s.conn.last_size} bytes does not fit the frame limit once relayed "
                f"(at most {self._relay_max} bytes)")

    def _on_call(self, s: Session, f: list) -> None:
        """A Request or a Publish, as its field list
        ``[TYPE, id, method or topic, data, timeout_ms, edge_id, stream_id]``."""
        kind: int = f[0]
        is_publish = kind == _PUBLISH
        direction = E2S if s.is_edge else S2E
        origin_id = f[1]
        name: str = f[2]
        stream_id: int = f[6]
        timeout_ms: int = f[4]
        if s.conn.last_size > self._relay_max:
            return self._refuse_call(s, is_publish, origin_id, direction, ErrorCode.PAYLOAD_TOO_LARGE, self._too_large(s))
        if stream_id:
            return self._on_stream_message(s, f, is_publish, direction)
        if s.is_edge:
            if is_publish:
                services = self.services.by_topic.get(name)
                sinks = self._sinks_by_topic.get(name)
                if not services and not sinks:
                    return self._refuse_call(s, True, origin_id, direction, ErrorCode.TOPIC_NOT_ONLINE,
                                             f"no service or MQ claims topic {name!r}")
                candidates = services + sinks if sinks else services
                target = candidates[0] if len(candidates) == 1 else self._pick(candidates, s.id, s.ip)
            else:
                if name.startswith(HOOK_METHOD_PREFIX):
                    return self._refuse_call(s, False, origin_id, direction, ErrorCode.INVALID_ARGUMENT, f"method {name!r} is reserved")
                candidates = self.services.by_rpc.get(name)
                if not candidates:
                    return self._refuse_call(s, False, origin_id, direction, ErrorCode.RPC_NOT_ONLINE, f"no service registered {name!r}")
                target = candidates[0] if len(candidates) == 1 else self._pick(candidates, s.id, s.ip)
            edge_id = s.id
        else:
            target = self.edges.get(f[5]) if f[5] is not None else None
            if target is None:
                return self._refuse_call(s, is_publish, origin_id, direction, ErrorCode.EDGE_NOT_ONLINE, f"edge {f[5]} is not online")
            if not is_publish and name not in target.rpcs:
                return self._refuse_call(s, False, origin_id, direction, ErrorCode.RPC_NOT_ONLINE, f"edge {f[5]} has no method {name!r}")
            edge_id = None
        calls_out = s.calls_out
        if len(calls_out) >= self._max_inflight or origin_id in calls_out:
            return self._over_inflight(s, is_publish, origin_id, direction)
        if is_publish and type(target) is not Session:
            self._produce(s, f, target)
            return
        self._send_to(s, origin_id, target, name, f[3], timeout_ms / 1000, edge_id, 0, direction, is_publish)

    def _on_stream_message(self, s: Session, f: list, is_publish: bool, direction: str) -> None:
        """A call or publish riding a stream goes straight to the stream's other end."""
        link = s.streams.get(f[6])
        origin_id = f[1]
        if link is None:
            return self._refuse_call(s, is_publish, origin_id, direction, ErrorCode.STREAM_RESET, f"stream {f[6]} is not open")
        calls_out = s.calls_out
        if len(calls_out) >= self._max_inflight or origin_id in calls_out:
            return self._over_inflight(s, is_publish, origin_id, direction)
        peer, peer_sid = link
        if type(peer) is not Session:  # the gateway's own end of a stream serves no calls
            code, why = ((ErrorCode.TOPIC_NOT_ONLINE, "the gateway takes no messages on this stream") if is_publish
                         else (ErrorCode.RPC_NOT_ONLINE, "the gateway serves no calls on this stream"))
            return self._refuse_call(s, is_publish, origin_id, direction, code, why)
        self._send_to(s, origin_id, peer, f[2], f[3], f[4] / 1000, s.id if s.is_edge else None, peer_sid, direction, is_publish)

    def _over_inflight(self, s: Session, is_publish: bool, origin_id: WireId, direction: str) -> None:
        """Answer BufferFull past ``max_inflight``; an id reused while its first use is
        in flight breaks the protocol (and would slip past the count)."""
        if origin_id in s.calls_out:
            raise RemoteProtocolError(f"id {origin_id} is already in flight on this connection")
        kind = "publishes" if is_publish else "calls"
        self._refuse_call(s, is_publish, origin_id, direction, ErrorCode.BUFFER_FULL, f"more than {self.limits.max_inflight} {kind} in flight")

    def _send_to(
        self, origin: Session | None, origin_id: WireId, target: Session, name: str, data: bytes, timeout: float,
        edge_id: int | None, stream_id: int, direction: str, is_publish: bool, waiter: hooks.HookAnswer | None = None,
    ) -> None:
        """Forward a call or publish to ``target`` and remember whom to answer. The
        deadline is the caller's (``default_call_timeout`` when it sent none), cut to
        ``max_call_timeout``."""
        if timeout <= 0:
            timeout = self._default_timeout
        elif timeout > self._max_timeout:
            timeout = self._max_timeout
        self._next_gid += 1
        gid: WireId = self._next_gid  # boxed once: the same object in the frame and every table
        if target.closed:
            code, why = (ErrorCode.EDGE_NOT_ONLINE if target.is_edge else ErrorCode.SERVICE_NOT_ONLINE), f"{target.role} {target.id} went offline"
        elif not target.relay_fields((_PUBLISH if is_publish else _REQUEST, gid, name, data, int(timeout * 1000), edge_id, stream_id)):
            code, why = ErrorCode.PAYLOAD_TOO_LARGE, f"the {'publish' if is_publish else 'call'} does not fit the frame limit once relayed"
        else:
            started = _monotonic()
            p = Pending(origin, origin_id, target, gid, is_publish, direction, started,
                        self._deadlines.add(target, gid, started + timeout), waiter)
            target.pending[gid] = p
            if origin is not None:
                origin.calls_out[origin_id] = p
            return
        if waiter is not None:
            waiter.set(code, why)
        elif origin is not None:
            self._refuse_call(origin, is_publish, origin_id, direction, code, why)

    def _on_answer(self, s: Session, f: list) -> None:
        """A Response ``[TYPE, call_id, code, data, message]`` or an Ack
        ``[TYPE, msg_id, code, message]``, as its field list."""
        gid = f[1]
        pending = s.pending
        p = pending.get(gid)  # (get and del: compiled, cheaper than a pop with a default)
        if p is None:
            return
        del pending[gid]
        kind: int = f[0]
        if s.conn.last_size > self._relay_max and p.waiter is None:
            # legal on its own but not once relayed: the caller learns why, the answerer stays
            self._finish(p, ErrorCode.PAYLOAD_TOO_LARGE, f"the answer {self._too_large(s)}")
        elif kind == _RESPONSE:
            self._finish(p, f[2], f[4], f[3])
        else:
            self._finish(p, f[2], f[3])

    def _on_cancel(self, s: Peer, ev: Cancel) -> None:
        p = s.calls_out.pop(ev.call_id, None)
        if p is None:
            return
        CallDeadlines.cancel(p.deadline, p.gid)
        target = p.target
        if target is not None:
            target.pending.pop(p.gid, None)
            if not p.is_publish:
                target.send(Cancel(p.gid))
        self._count(p.is_publish, p.direction, ErrorCode.CANCELLED)

    def _expire(self, target: Session, gid: WireId) -> None:
        p = target.pending.pop(gid, None)
        if p is None:
            return
        self._finish(p, ErrorCode.TIMEOUT, "the deadline passed at the gateway")
        if not p.is_publish:
            target.send(Cancel(gid))

    def _finish(self, p: Pending, code: int, message: str, data: bytes = b"") -> None:
        """Answer whoever is waiting for ``p``."""
        CallDeadlines.cancel(p.deadline, p.gid)
        if p.waiter is not None:
            p.waiter.set(code, message, data)  # a hook's answer
            return
        origin = p.origin
        if origin is None:
            return
        calls_out = origin.calls_out
        if p.origin_id in calls_out:
            del calls_out[p.origin_id]
        if not origin.relay_fields(_answer(p.is_publish, p.origin_id, code, message, data)):
            code = ErrorCode.PAYLOAD_TOO_LARGE
            origin.relay_fields(_answer(p.is_publish, p.origin_id, code, "the answer does not fit the frame limit once relayed"))
        self._count(p.is_publish, p.direction, code, _monotonic() - p.started)

    def _refuse_call(self, s: Session, is_publish: bool, origin_id: WireId, direction: str, code: int, message: str) -> None:
        s.relay_fields(_answer(is_publish, origin_id, code, message))
        self._count(is_publish, direction, code)

    def _count(self, is_publish: bool, direction: str, code: int, latency: float | None = None) -> None:
        if direction != "hook":
            route = (self._publish_routes if is_publish else self._call_routes)[direction]
            if code == OK:
                route.ok(latency)
            else:
                route.count(_RESULT.get(code, "unknown"))

    # -- external MQ ----------------------------------------------------------------------------

    def _produce(self, s: Session, f: list, sink: Any) -> None:
        """Hand an edge's message (a Publish's field list) to an MQ sink in its own
        greenlet; ack after the broker did."""
        msg_id = f[1]
        marker = Pending(s, msg_id, None, 0, True, E2MQ, _monotonic(), None)
        s.calls_out[msg_id] = marker
        timeout = f[4] / 1000 or self._default_timeout
        gevent.spawn(self._produce_one, s, msg_id, f[2], f[3], sink, timeout, marker)

    def _produce_one(self, s: Session, msg_id: WireId, topic: str, data: bytes, sink: Any, timeout: float, marker: Pending) -> None:
        code, message = OK, ""
        try:
            sink.produce(topic, data, edge_id=s.id, addr=s.addr, timeout=timeout)
        except FrontierError as exc:
            code, message = exc.code, exc.message
        except Exception as exc:  # a sink bug must still answer the edge
            log.exception("MQ sink %s failed", getattr(sink, "broker", sink))
            code, message = ErrorCode.BROKER_UNAVAILABLE, f"{type(exc).__name__}: {exc}"
        if s.calls_out.get(msg_id) is not marker:
            return  # already answered (the drain deadline passed) or the edge is gone
        del s.calls_out[msg_id]
        s.send(Ack(msg_id, code, message))
        self._count(True, E2MQ, code, _monotonic() - marker.started)

    # -- streams -----------------------------------------------------------------------------------

    def _on_stream_open(self, s: Peer, ev: StreamOpen) -> None:
        if s.is_edge:
            direction = E2S
            candidates = self.services.by_name.get(ev.service)
            target = self._pick(candidates, s.id, s.ip) if candidates else None
            why = (ErrorCode.SERVICE_NOT_ONLINE, f"no service named {ev.service!r} is online")
        else:
            direction = S2E
            target = self.edges.get(ev.edge_id) if ev.edge_id is not None else None
            why = (ErrorCode.EDGE_NOT_ONLINE, f"edge {ev.edge_id} is not online")
        if target is not None and (len(s.streams) >= self.limits.max_streams or len(target.streams) >= self.limits.max_streams):
            target, why = None, (ErrorCode.BUFFER_FULL, f"more than {self.limits.max_streams} streams open on a connection")
        if target is None:
            s.send(StreamReset(ev.stream_id, *why))
            self._count_stream(direction, why[0])
            return
        peer_sid = target.conn.new_stream_id()
        if s.is_edge:
            opened = StreamOpen(peer_sid, ev.service, s.id, s.meta, s.addr, ev.window, ev.timeout_ms)
        else:
            opened = StreamOpen(peer_sid, s.name, None, b"", s.addr, ev.window, ev.timeout_ms)
        if not target.relay(opened):
            why = (ErrorCode.PAYLOAD_TOO_LARGE, "the stream open does not fit the frame limit once relayed")
            s.send(StreamReset(ev.stream_id, *why))
            self._count_stream(direction, why[0])
            return
        s.streams[ev.stream_id] = (target, peer_sid)
        target.streams[peer_sid] = (s, ev.stream_id)
        self._count_stream(direction, OK)

    def _count_stream(self, direction: str, code: int) -> None:
        self._stats.count(metrics.STREAM, direction, _RESULT.get(code, "unknown"))

    def _on_stream_accept(self, s: Peer, ev: StreamAccept) -> None:
        link = s.streams.get(ev.stream_id)
        if link is not None:
            link[0].send(StreamAccept(link[1], ev.window))

    def _on_stream_data(self, s: Peer, ev: StreamData) -> None:
        link = s.streams.get(ev.stream_id)
        if link is None:
            return
        if s.conn.last_size > self._relay_max or not link[0].relay(StreamData(link[1], ev.data)):
            self._reset_link(s, ev.stream_id, ErrorCode.PAYLOAD_TOO_LARGE, "stream data does not fit the frame limit once relayed")
            return
        self._stats.add_stream_bytes(E2S if s.is_edge else S2E, len(ev.data))

    def _on_stream_credit(self, s: Peer, ev: StreamCredit) -> None:
        link = s.streams.get(ev.stream_id)
        if link is not None:
            link[0].send(StreamCredit(link[1], ev.amount))

    def _on_stream_end(self, s: Peer, ev: StreamEnd) -> None:
        link = s.streams.get(ev.stream_id)
        if link is not None:
            peer, peer_sid = link
            peer.send(StreamEnd(peer_sid))
            if s.conn.stream_state(ev.stream_id) is StreamState.CLOSED and peer.conn.stream_state(peer_sid) is StreamState.CLOSED:
                del s.streams[ev.stream_id]
                peer.streams.pop(peer_sid, None)

    def _on_stream_reset(self, s: Peer, ev: StreamReset) -> None:
        link = s.streams.pop(ev.stream_id, None)
        if link is not None:
            peer, peer_sid = link
            peer.streams.pop(peer_sid, None)
            if s.conn.last_size > self._relay_max or not peer.relay(StreamReset(peer_sid, ev.code, ev.message)):
                peer.send(StreamReset(peer_sid, ev.code, "the stream was reset (its reason was too long to relay)"))

    def _reset_link(self, s: Peer, stream_id: int, code: int, message: str) -> None:
        """Reset a stream on both ends (the gateway's own decision, e.g. a frame it cannot relay)."""
        link = s.streams.pop(stream_id, None)
        s.send(StreamReset(stream_id, code, message))
        if link is not None:
            peer, peer_sid = link
            peer.streams.pop(peer_sid, None)
            peer.send(StreamReset(peer_sid, code, message))

    # -- going away -------------------------------------------------------------------------------

    def closed(self, session: Session) -> None:
        """Offline path: unregister, tell observers and hooks, fail what waits on it."""
        if session.is_edge:
            # identity-checked: a replaced, older connection must not remove the newer
            if self.edges.remove(session.id, session) and session.online:
                info = edge_info(session)
                self._notify("edge_offline", info)
                self._run_offline_hooks(info, session.ip)
        elif session.online:
            self.services.remove(session.id, session, name=session.name, rpcs=session.rpcs, topics=session.topics, hooks=session.hooks)
            self._notify("service_offline", service_info(session))
        session.online = False
        gone = ErrorCode.EDGE_NOT_ONLINE if session.is_edge else ErrorCode.SERVICE_NOT_ONLINE
        why = f"{session.role} {session.id} went offline"
        pending, session.pending = session.pending, {}
        for p in pending.values():
            self._finish(p, gone, why)
        calls_out, session.calls_out = session.calls_out, {}
        for p in calls_out.values():
            CallDeadlines.cancel(p.deadline, p.gid)
            if p.target is not None and p.target.pending.pop(p.gid, None) is not None and not p.is_publish:
                p.target.send(Cancel(p.gid))
        streams, session.streams = session.streams, {}
        for peer, peer_sid in streams.values():
            peer.streams.pop(peer_sid, None)
            peer.send(StreamReset(peer_sid, ErrorCode.STREAM_RESET, why))

    def _run_offline_hooks(self, info: EdgeInfo, ip: str) -> None:
        targets = self.services.by_hook.get(HOOK_EDGE_OFFLINE)
        if targets:
            payload = _pack_payload({"edge_id": info.edge_id, "meta": info.meta, "addr": info.addr})
            if self.edge_hooks == hooks.ONE:
                hooks.notify_one(lambda: list(self.services.by_hook.get(HOOK_EDGE_OFFLINE)), self._pick,
                                 self._hook_call, "$" + HOOK_EDGE_OFFLINE, payload, info.edge_id, ip)
                return
            for target in list(targets):
                self._send_to(None, 0, target, "$" + HOOK_EDGE_OFFLINE, payload, self.limits.hook_timeout, None, 0, "hook", False)

    def _notify(self, what: str, info: Any) -> None:
        for observer in self.observers:
            try:
                getattr(observer, what)(info)
            except Exception:
                log.exception("observer %r failed on %s", observer, what)

    # -- operator actions ------------------------------------------------------------------------------

    def kick_edge(self, edge_id: int, reconnect: bool = True) -> bool:
        """Force an edge offline through the normal offline path, telling it to come
        back after ``limits.kick_reconnect_delay`` (``reconnect``) or not at all."""
        return self._kick(self.edges.get(edge_id), reconnect)

    def kick_service(self, service_id: int, reconnect: bool = True) -> bool:
        """Force a service connection offline, as :meth:`kick_edge`."""
        return self._kick(self.services.get(service_id), reconnect)

    def _kick(self, session: Session | None, reconnect: bool) -> bool:
        if session is None:
            return False
        delay = self.limits.kick_reconnect_delay if reconnect else None
        session.close(ErrorCode.KICKED, "kicked by an operator", retry_after=delay)
        return True

    def lift_ban(self, edge_id: int) -> bool:
        """End an edge's ban; False if it had none."""
        return self.bans.lift(edge_id)

    def list_bans(self) -> list[Ban]:
        """The bans in force, soonest to end first."""
        return self.bans.active()

    def ban_edge(self, edge_id: int, seconds: float, reason: str = "") -> Ban:
        """Ban ``edge_id`` for ``seconds`` (see :class:`EdgeBans`); close it if online."""
        ban = self.bans.add(edge_id, seconds, reason)
        session = self.edges.get(edge_id)
        if session is not None:
            session.close(ErrorCode.BANNED, f"banned by an operator for {seconds:.0f}s" + (f": {reason}" if reason else ""),
                          retry_after=seconds)
        return ban

    def sessions(self) -> list[Session]:
        """Every admitted session (edges and services)."""
        return [*self.edges, *self.services]

    def go_away(self, message: str = "the gateway is shutting down") -> None:
        """Tell every client to reconnect elsewhere; refuse new handshakes."""
        self.draining = True
        for session in self.sessions():
            session.send(GoAway(ErrorCode.GOING_AWAY, message))

    def in_flight(self) -> int:
        """Calls and publishes the gateway is still waiting to answer."""
        return sum(len(s.calls_out) for s in self.sessions())

    def abort_in_flight(self, code: int, message: str) -> int:
        """Answer every call and publish still in flight with ``code`` (their targets
        get a ``Cancel`` for calls); return how many. The end of a drain."""
        count = 0
        for session in self.sessions():
            pending, session.pending = session.pending, {}
            for p in pending.values():
                count += p.waiter is None and p.origin is not None
                self._finish(p, code, message)
                if not p.is_publish:
                    session.send(Cancel(p.gid))
        for session in self.sessions():  # what is left waits on MQ produces
            for origin_id, p in list(session.calls_out.items()):
                if p.target is None and p.gid == 0:
                    del session.calls_out[origin_id]
                    session.send(Ack(origin_id, code, message))
                    count += 1
        return count


def edge_info(s: Session) -> EdgeInfo:
    """Snapshot of an edge session for observers."""
    return EdgeInfo(s.id, s.meta, s.addr, s.created_at, tuple(s.rpcs))


def service_info(s: Session) -> ServiceInfo:
    """Snapshot of a service session for observers."""
    return ServiceInfo(s.id, s.name, s.addr, s.created_at, tuple(sorted(s.rpcs)), tuple(sorted(s.topics)))


def _answer(is_publish: bool, origin_id: WireId, code: int, message: str, data: bytes = b"") -> tuple:
    """The field tuple of the answer to a call (a Response) or a publish (an Ack)."""
    return (_ACK, origin_id, code, message) if is_publish else (_RESPONSE, origin_id, code, data, message)


def _ignore(session: Peer, event: Event) -> None:
    pass

