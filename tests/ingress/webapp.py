"""A small real web app for the ingress tests, served by werkzeug's threaded server
in a thread of the test process: pages, echo, chunked and large streamed bodies,
slow answers, headers as seen, and a WebSocket echo (``simple-websocket``).
"""

from __future__ import annotations

import hashlib
import threading
import time
from typing import Iterator

from flask import Flask, Response, jsonify, request
from simple_websocket import ConnectionClosed, Server as WebSocket
from werkzeug.serving import make_server

PAGE = """<!doctype html><html><head><title>edge app</title></head><body>
<h1 id="title">hello from the edge</h1>
<p id="ws">waiting</p>
<script>
const proto = location.protocol === "https:" ? "wss://" : "ws://";
const ws = new WebSocket(proto + location.host + "/ws");
ws.onopen = () => ws.send("ping-through-ingress");
ws.onmessage = (ev) => { document.getElementById("ws").textContent = ev.data; ws.close(); };
ws.onerror = () => { document.getElementById("ws").textContent = "error"; };
</script>
</body></html>
"""


class _AfterWebSocket(Response):
    """What a WebSocket view returns: werkzeug's dev server must not write an HTTP
    answer on the socket the WebSocket used (the trick Flask-Sock uses)."""

    def __call__(self, environ, start_response):  # type: ignore[override]
        raise ConnectionError("the WebSocket is over")


def pattern(size: int) -> Iterator[bytes]:
    """``size`` deterministic bytes in 64 KiB pieces (the same for every caller)."""
    block = hashlib.sha256(b"frontier").digest() * 2048  # 64 KiB
    left = size
    while left > 0:
        piece = block[: min(left, len(block))]
        left -= len(piece)
        yield piece


def pattern_sha256(size: int) -> str:
    """The sha256 of :func:`pattern` ``(size)``."""
    digest = hashlib.sha256()
    for piece in pattern(size):
        digest.update(piece)
    return digest.hexdigest()


def build_app(name: str = "edge-app", produced: list[int] | None = None) -> Flask:
    """The app; ``produced[0]`` counts the bytes ``/big`` generated so far."""
    app = Flask(name)
    produced = produced if produced is not None else [0]

    def counted(size: int) -> Iterator[bytes]:
        for piece in pattern(size):
            produced[0] += len(piece)
            yield piece

    @app.get("/")
    def index() -> str:
        return PAGE

    @app.get("/hello")
    def hello() -> Response:
        return Response(f"hello from {name}", mimetype="text/plain")

    @app.route("/echo", methods=["POST", "PUT"])
    def echo() -> Response:
        def gen() -> Iterator[bytes]:
            while True:
                chunk = request.stream.read(65536)
                if not chunk:
                    return
                yield chunk
        return Response(gen(), mimetype="application/octet-stream")

    @app.post("/count")
    def count() -> Response:
        digest, total = hashlib.sha256(), 0
        while True:
            chunk = request.stream.read(65536)
            if not chunk:
                break
            digest.update(chunk)
            total += len(chunk)
        return jsonify(bytes=total, sha256=digest.hexdigest())

    @app.get("/headers")
    def headers() -> Response:
        return jsonify({key.lower(): value for key, value in request.headers.items()})

    @app.get("/chunked")
    def chunked() -> Response:
        return Response((f"part {i}\n".encode() for i in range(5)), mimetype="text/plain")

    @app.get("/big/<int:size>")
    def big(size: int) -> Response:
        return Response(counted(size), mimetype="application/octet-stream", headers={"Content-Length": str(size)})

    @app.get("/slow/<float:seconds>")
    def slow(seconds: float) -> str:
        time.sleep(seconds)
        return "late"

    @app.route("/ws", websocket=True)
    def ws() -> Response:
        sock = WebSocket.accept(request.environ)
        try:
            while True:
                message = sock.receive(timeout=30)
                if message is None:
                    break
                sock.send(f"echo: {message}")
        except ConnectionClosed:
            pass
        return _AfterWebSocket()

    return app


class WebApp:
    """The app served on ``127.0.0.1:<port>`` in a daemon thread."""

    def __init__(self, name: str = "edge-app") -> None:
        #: bytes ``/big`` generated so far (how far a download got at the source)
        self.produced = [0]
        self.server = make_server("127.0.0.1", 0, build_app(name, self.produced), threaded=True)
        self.port = self.server.server_port
        self.addr = f"127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
