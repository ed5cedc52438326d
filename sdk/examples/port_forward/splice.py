"""Copy bytes both ways between a TCP socket and a frontier stream until both sides
ended, with half-close carried across (the "proxy" use of streams)."""

from __future__ import annotations

import socket
import threading

from frontier.sdk import FrontierError, Stream

CHUNK = 1 << 16


def splice(sock: socket.socket, stream: Stream) -> tuple[int, int]:
    """Pump ``sock`` <-> ``stream`` until both directions ended; close both.
    Returns (bytes socket->stream, bytes stream->socket)."""
    counts = [0, 0]

    def upstream() -> None:  # socket -> stream
        try:
            while data := sock.recv(CHUNK):
                stream.sendall(data)  # blocks while the peer's window is full: TCP backpressure
                counts[0] += len(data)
            stream.shutdown_write()  # the client half-closed: so does the stream
        except (OSError, FrontierError):
            _abort(sock, stream)

    thread = threading.Thread(target=upstream, daemon=True)
    thread.start()
    try:  # stream -> socket, on this thread
        while data := stream.recv(CHUNK):
            sock.sendall(data)
            counts[1] += len(data)
        sock.shutdown(socket.SHUT_WR)  # the far end finished: tell the client
    except (OSError, FrontierError):
        _abort(sock, stream)
    thread.join()
    stream.close()
    sock.close()
    return counts[0], counts[1]


def _abort(sock: socket.socket, stream: Stream) -> None:
    """One side broke: end both so the other pump stops too."""
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    stream.close()
