"""Chatroom agent: an edge that chats through the chatroom service.

Connects with the username as its meta, publishes every line typed on stdin to topic
``chatroom``, and prints what the room says. End with Ctrl-D (or Ctrl-C)::

    python sdk/examples/chatroom/agent.py --name alice [--edge-addr 127.0.0.1:30012]
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
import threading

from frontier.sdk import ConnectionClosed, Edge, FrontierError, Refused

TOPIC = "chatroom"


def show(line: str, prompt: bool) -> None:
    """Print a line from the room; redraw the prompt when a person is typing."""
    if prompt:
        sys.stdout.write(f"\033[2K\r{line}\n>>> ")
    else:
        sys.stdout.write(line + "\n")
    sys.stdout.flush()


def receive_loop(edge: Edge, prompt: bool) -> None:
    """Print every message the service sends, acknowledging each."""
    while True:
        try:
            msg = edge.receive()
        except ConnectionClosed:
            return
        msg.done()
        try:
            chat = json.loads(msg.data)
            if chat.get("kind") == "notice":
                line = f"* {chat['text']}"
            else:
                line = f"[{chat['user']}] {chat['text']}"
        except (ValueError, KeyError, TypeError):
            line = f"[?] {msg.data!r}"
        show(line, prompt)


def main() -> int:
    parser = argparse.ArgumentParser(description="frontier chatroom agent")
    parser.add_argument("--edge-addr", default="127.0.0.1:30012", help="the gateway's edge address")
    parser.add_argument("--name", default=None, help="username in the room (default: your login name)")
    args = parser.parse_args()
    name = args.name or getpass.getuser()
    prompt = sys.stdin.isatty()

    try:
        edge = Edge(args.edge_addr, meta=name.encode())
    except Refused as exc:
        print(f"the room refused {name!r}: {exc}", file=sys.stderr)
        return 1
    except FrontierError as exc:
        print(f"cannot connect to the gateway at {args.edge_addr}: {exc}", file=sys.stderr)
        return 1
    print(f"joined the chatroom as {name} (edge {edge.edge_id})", flush=True)
    threading.Thread(target=receive_loop, args=(edge, prompt), daemon=True).start()

    try:
        if prompt:
            sys.stdout.write(">>> ")
            sys.stdout.flush()
        for line in sys.stdin:
            text = line.rstrip("\n")
            if text:
                try:
                    edge.publish(TOPIC, text.encode())
                except FrontierError as exc:
                    show(f"! not sent: {exc}", prompt)
            if prompt:
                sys.stdout.write(">>> ")
                sys.stdout.flush()
    except KeyboardInterrupt:
        pass
    finally:
        edge.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
