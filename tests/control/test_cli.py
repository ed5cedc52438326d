"""``edges``/``services`` CLI commands against a real control plane."""

from __future__ import annotations

import argparse
import json
import socket

import pytest

from frontier.control.cli import TOKEN_ENV, add_parsers

pytestmark = pytest.mark.timeout(120)


def run(argv, capsys):
    parser = argparse.ArgumentParser(prog="frontier-gevent")
    add_parsers(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    code = args.func(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_parsers_set_func():
    parser = argparse.ArgumentParser()
    add_parsers(parser.add_subparsers(dest="command", required=True))
    for argv in (["edges", "list"], ["edges", "get", "1"], ["edges", "kick", "1"], ["edges", "rpcs"],
                 ["edges", "kick", "1", "--no-reconnect"], ["edges", "ban", "1", "--duration", "60"],
                 ["edges", "unban", "1"], ["edges", "bans"], ["services", "kick", "1", "--no-reconnect"],
                 ["services", "list"], ["services", "get", "1"], ["services", "kick", "1"],
                 ["services", "rpcs"], ["services", "topics"]):
        assert callable(parser.parse_args(argv).func), argv
    with pytest.raises(SystemExit):
        parser.parse_args(["edges", "get", "notanumber"])


def test_edges_list_table_and_json(shared_cp, capsys):
    addr = f"127.0.0.1:{shared_cp.port}"
    code, out, _ = run(["edges", "list", "--addr", addr, "--meta", "sensor", "--order", "edge_id"], capsys)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["EDGE_ID", "META", "ADDR", "CREATED", "RPCS"]
    assert lines[1].split()[:3] == ["9", "sensor-9", "10.0.0.9:5009"]
    assert lines[-1] == "page 1: 4 shown, 4 edges in all"
    code, out, _ = run(["edges", "list", "--addr", addr, "--json", "--page-size", "2", "--page", "2",
                        "--order=-edge_id"], capsys)
    body = json.loads(out)
    assert code == 0 and [e["edge_id"] for e in body["edges"]] == [10, 9] and body["count"] == 12


def test_edges_get_rpcs_and_services(shared_cp, capsys):
    addr = f"127.0.0.1:{shared_cp.port}"
    code, out, _ = run(["edges", "get", "4", "--addr", addr], capsys)
    assert code == 0 and "dev-4" in out and "echo,reboot" in out
    code, out, _ = run(["edges", "rpcs", "--addr", addr, "--order", "rpc"], capsys)
    assert out.splitlines() == ["echo", "reboot", "page 1: 2 shown, 2 RPCs in all"]
    code, out, _ = run(["services", "list", "--addr", addr, "--topic", "orders", "--order", "service_id"], capsys)
    assert [ln.split()[0] for ln in out.splitlines()[1:-1]] == ["101", "102", "103"]
    code, out, _ = run(["services", "get", "105", "--addr", addr, "--json"], capsys)
    assert json.loads(out)["service"] == "chat"
    code, out, _ = run(["services", "topics", "--addr", addr, "--service", "audit", "--order", "topic"], capsys)
    assert out.splitlines()[:2] == ["logs", "orders"]
    code, out, _ = run(["services", "rpcs", "--addr", f"http://{addr}/", "--service-id", "105"], capsys)
    assert out.splitlines()[0] == "say"


def test_errors_and_exit_codes(shared_cp, capsys):
    addr = f"127.0.0.1:{shared_cp.port}"
    code, out, err = run(["edges", "get", "999", "--addr", addr], capsys)
    assert code == 1 and "edge 999 is not online (404 EDGE_NOT_ONLINE)" in err and out == ""
    code, _, err = run(["edges", "list", "--addr", addr, "--order", "bogus"], capsys)
    assert code == 1 and "400" in err
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    code, _, err = run(["services", "list", "--addr", f"127.0.0.1:{dead}", "--timeout", "2"], capsys)
    assert code == 3 and "cannot reach" in err


def test_kick_and_token(start, capsys, monkeypatch):
    cp = start(tokens="sesame")
    addr = f"127.0.0.1:{cp.port}"
    code, _, err = run(["edges", "kick", "2", "--addr", addr], capsys)
    assert code == 1 and "401" in err
    code, out, _ = run(["edges", "kick", "2", "--addr", addr, "--token", "sesame"], capsys)
    assert code == 0 and out.strip() == "kicked edge 2"
    assert cp.kicks() == ["edge 2"]
    monkeypatch.setenv(TOKEN_ENV, "sesame")
    code, _, err = run(["edges", "kick", "2", "--addr", addr], capsys)
    assert code == 1 and "404" in err
    code, out, _ = run(["services", "kick", "104", "--addr", addr, "--json"], capsys)
    assert code == 0 and json.loads(out) == {}
