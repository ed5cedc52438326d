"""The chatroom example end to end: its real service and agent scripts as processes."""

from __future__ import annotations

from tests.e2e.proc_tools import ROOT, ChildProcess, wait_until

EXAMPLE = ROOT / "sdk" / "examples" / "chatroom"


def _service(gw) -> ChildProcess:
    proc = ChildProcess([str(EXAMPLE / "service.py"), "--service-addr", gw.service_addr])
    proc.expect("chatroom service ready", 10)
    return proc


def _agent(gw, name: str) -> ChildProcess:
    proc = ChildProcess([str(EXAMPLE / "agent.py"), "--edge-addr", gw.edge_addr, "--name", name])
    proc.expect(f"joined the chatroom as {name}", 10)
    return proc


def test_chatroom_relays_lines_and_announces_joins(gateway_factory):
    gw = gateway_factory()
    procs: list[ChildProcess] = []
    try:
        service = _service(gw)
        procs.append(service)
        alice = _agent(gw, "alice")
        procs.append(alice)
        service.expect("> alice joined", 10)
        bob = _agent(gw, "bob")
        procs.append(bob)
        alice.expect("* bob joined", 10)
        service.expect("> bob joined", 10)

        bob.write("hello from bob")
        alice.expect("[bob] hello from bob", 10)
        service.expect("[bob] hello from bob", 10)
        alice.write("hi bob, alice here")
        bob.expect("[alice] hi bob, alice here", 10)
        assert not any("hello from bob" in line for line in bob.lines), "the sender got its own line back"

        assert bob.stop() == 0  # end of stdin: the agent leaves
        alice.expect("* bob left", 10)
        service.expect("> bob left", 10)
        assert service.terminate() == 0  # SIGTERM: the service closes and exits cleanly
        assert alice.stop() == 0
        assert not any("joined" in line for line in bob.lines if "bob" in line), "bob was told he joined"
    finally:
        for proc in reversed(procs):
            proc.terminate()


def test_chatroom_refuses_a_name_already_in_the_room(gateway_factory):
    gw = gateway_factory()
    procs: list[ChildProcess] = []
    try:
        procs.append(_service(gw))
        procs.append(_agent(gw, "carol"))
        twin = ChildProcess([str(EXAMPLE / "agent.py"), "--edge-addr", gw.edge_addr, "--name", "carol"])
        procs.append(twin)
        assert twin.proc.wait(10) == 1
        wait_until(lambda: "the room refused" in twin.stderr, 5, what=f"a refusal on stderr (got {twin.stderr!r})")
        assert "already in the room" in twin.stderr, twin.stderr
    finally:
        for proc in reversed(procs):
            proc.terminate()

