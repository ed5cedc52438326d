"""A TCP forwarder tests put in front of a broker they cannot stop (the shared RabbitMQ).

``python tcp_proxy.py LISTEN_PORT TARGET_HOST TARGET_PORT``. Killing the process cuts
every connection (broker "down"); starting it again on the same port brings the
broker "back"; SIGSTOP freezes it (a broker that accepts but never answers).
"""

from gevent import monkey

monkey.patch_all()

import socket  # noqa: E402
import sys  # noqa: E402

import gevent  # noqa: E402
from gevent.server import StreamServer  # noqa: E402


def pipe(src: socket.socket, dst: socket.socket) -> None:
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def main() -> None:
    listen_port, host, port = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])

    def handle(client: socket.socket, _addr) -> None:
        try:
            upstream = socket.create_connection((host, port), timeout=5)
            upstream.settimeout(None)
        except OSError:
            client.close()
            return
        gevent.joinall([gevent.spawn(pipe, client, upstream), gevent.spawn(pipe, upstream, client)])
        client.close()
        upstream.close()

    server = StreamServer(("127.0.0.1", listen_port), handle)
    server.start()
    print("listening", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
