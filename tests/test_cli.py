"""frontier.cli as a user runs it: `python -m frontier.cli ...` in a subprocess."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import typing
from pathlib import Path

import pytest
import yaml

from frontier.config import Config

REPO = Path(__file__).resolve().parent.parent


def clean_env(**extra: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("FRONTIER__")}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "frontier.cli", *args],
        cwd=REPO,
        env=clean_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_help_lists_the_commands() -> None:
    result = run("--help")
    assert result.returncode == 0
    assert "serve" in result.stdout and "config" in result.stdout
    assert "FRONTIER__" in result.stdout


def test_serve_help_lists_its_options() -> None:
    result = run("serve", "--help")
    assert result.returncode == 0
    assert "--config FILE" in result.stdout and "--log-level LEVEL" in result.stdout


def test_no_command_is_a_usage_error() -> None:
    result = run()
    assert result.returncode == 2
    assert "usage: frontier-gevent" in result.stderr


def test_bad_log_level_flag_is_a_usage_error() -> None:
    result = run("serve", "--log-level", "loud")
    assert result.returncode == 2
    assert "--log-level" in result.stderr


def test_config_check_prints_the_effective_config() -> None:
    result = run("config", "check", FRONTIER__LIMITS__MAX_FRAME_SIZE="65536")
    assert result.returncode == 0, result.stderr
    printed = yaml.safe_load(result.stdout)
    assert printed["limits"]["max_frame_size"] == 65536
    assert printed["servicebound"]["listen"]["addr"] == "0.0.0.0:30011"
    assert set(printed) == set(Config().to_dict())


def test_config_check_reads_the_example_file() -> None:
    result = run("config", "check", "--config", "etc/frontier.yaml")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert yaml.safe_load(result.stdout) == Config().to_dict()


def test_config_check_shows_warnings_on_stderr(tmp_path: Path) -> None:
    path = tmp_path / "frontier.yaml"
    path.write_text("exchange:\n  hashby: random\n  hashbyy: srcip\n")
    result = run("config", "check", "--config", str(path))
    assert result.returncode == 0
    assert "frontier-gevent: config warning: exchange.hashbyy: unknown key, ignored" in result.stderr
    exchange = yaml.safe_load(result.stdout)["exchange"]
    assert exchange["hashby"] == "random" and "hashbyy" not in exchange


@pytest.mark.parametrize("command", [("config", "check"), ("serve",)])
def test_bad_config_exits_2_with_the_key_named(tmp_path: Path, command: tuple[str, ...]) -> None:
    path = tmp_path / "frontier.yaml"
    path.write_text("exchange:\n  hashby: roundrobin\n")
    result = run(*command, "--config", str(path))
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "frontier-gevent: config error: exchange.hashby: expected one of edgeid, srcip, random, "
        "got 'roundrobin' (str)"
    )
    assert result.stdout == ""


@pytest.mark.parametrize("command", [("config", "check"), ("serve",)])
def test_missing_config_file_exits_2(tmp_path: Path, command: tuple[str, ...]) -> None:
    result = run(*command, "--config", str(tmp_path / "nope.yaml"))
    assert result.returncode == 2
    assert result.stderr.startswith("frontier-gevent: config error: ")
    assert "nope.yaml: cannot read config file" in result.stderr


def test_bad_env_override_exits_2() -> None:
    result = run("serve", FRONTIER__LIMITS__MAX_INFLIGHT="-3")
    assert result.returncode == 2
    assert "config error: limits.max_inflight: expected a number > 0, got -3" in result.stderr


# -- serve, with a stand-in Gateway -----------------------------------------------------

# The CLI imports frontier.server.Gateway after patching; this script puts a stand-in
# with the same interface in sys.modules first, so the test exercises only the CLI:
# patch order, thread pool, logging, signals, exit code.
STUB = textwrap.dedent(
    """
    import sys, types

    class Gateway:
        def __init__(self, config):
            import gevent, gevent.event, gevent.monkey
            self.stopped = gevent.event.Event()
            print(
                "STUB init",
                "socket_patched=%s" % gevent.monkey.is_module_patched("socket"),
                "ssl_patched=%s" % gevent.monkey.is_module_patched("ssl"),
                "pool=%d" % gevent.get_hub().threadpool.maxsize,
                "level=%s" % config.log.level,
                file=sys.stderr, flush=True,
            )

        def start(self):
            import logging
            logging.getLogger("stub").info("started\\nsecond line")
            print("STUB started", file=sys.stderr, flush=True)

        def stop(self, timeout=None):
            import gevent
            print("STUB stop timeout=%s" % timeout, file=sys.stderr, flush=True)
            if "--fail-stop" in sys.argv:
                raise RuntimeError("boom")
            if timeout is None and "--hold" in sys.argv:
                gevent.sleep(30)  # a long drain: only a second signal ends it
            self.stopped.set()

        def wait(self):
            self.stopped.wait()

    module = types.ModuleType("frontier.server")
    module.Gateway = Gateway
    sys.modules["frontier.server"] = module
    argv = [arg for arg in sys.argv[1:] if arg not in ("--hold", "--fail-stop")]
    from frontier.cli import main
    sys.exit(main(argv))
    """
)


class Served:
    """A `serve` subprocess; threads collect its stdout (the log) and stderr (the stub's lines)."""

    def __init__(self, *args: str, **env: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", STUB, *args],
            cwd=REPO,
            env=clean_env(**env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self.log: list[str] = []
        self.changed = threading.Condition()
        self.readers = [
            threading.Thread(target=self._read, args=(self.proc.stderr, self.lines), daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stdout, self.log), daemon=True),
        ]
        for reader in self.readers:
            reader.start()

    def _read(self, stream: typing.IO[str], into: list[str]) -> None:
        for line in stream:
            with self.changed:
                into.append(line.rstrip("\n"))
                self.changed.notify_all()

    def wait_for(self, prefix: str, timeout: float = 30) -> str:
        def found() -> str | None:
            return next((line for line in self.lines if line.startswith(prefix)), None)

        with self.changed:
            assert self.changed.wait_for(found, timeout), f"no {prefix!r} in {self.lines}"
            return found() or ""

    def finish(self, timeout: float = 30) -> tuple[int, list[str]]:
        code = self.proc.wait(timeout=timeout)
        for reader in self.readers:
            reader.join(timeout)
        return code, self.log

    def __enter__(self) -> Served:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.mark.timeout(90)
def test_serve_patches_first_and_stops_cleanly_on_sigterm() -> None:
    with Served("serve", "--log-level", "DEBUG") as served:
        init = served.wait_for("STUB init")
        assert "socket_patched=True" in init and "ssl_patched=True" in init
        assert int(init.split("pool=")[1].split()[0]) >= 100
        assert "level=debug" in init
        served.wait_for("STUB started")
        served.proc.send_signal(signal.SIGTERM)
        code, records = served.finish()
    assert code == 0
    assert "STUB stop timeout=None" in served.lines
    # one line per record, even for a message with a newline in it
    assert any(line.endswith("INFO stub: started\\nsecond line") for line in records), records
    assert any("INFO frontier.cli: SIGTERM received: draining" in line for line in records), records
    assert records[-1].endswith("INFO frontier.cli: frontier-gevent stopped")


@pytest.mark.timeout(90)
def test_serve_second_signal_stops_at_once() -> None:
    with Served("serve", "--hold") as served:
        served.wait_for("STUB started")
        served.proc.send_signal(signal.SIGINT)
        served.wait_for("STUB stop timeout=None")
        served.proc.send_signal(signal.SIGINT)
        code, records = served.finish()
    assert code == 0
    assert "STUB stop timeout=0" in served.lines
    assert any("WARNING frontier.cli: SIGINT received again: stopping now" in line for line in records), records


@pytest.mark.timeout(90)
def test_serve_logs_json_and_config_warnings(tmp_path: Path) -> None:
    path = tmp_path / "frontier.yaml"
    path.write_text("log:\n  format: json\n  level: info\nlimits:\n  max_frame: 1\n")
    with Served("serve", "--config", str(path)) as served:
        served.wait_for("STUB started")
        served.proc.send_signal(signal.SIGTERM)
        code, lines = served.finish()
    assert code == 0
    records = [json.loads(line) for line in lines]
    assert {"level": "warning", "logger": "frontier.config", "msg": "limits.max_frame: unknown key, ignored"}.items() <= records[0].items()
    assert records[-1]["msg"] == "frontier-gevent stopped"


@pytest.mark.timeout(90)
def test_serve_exits_1_when_stop_fails() -> None:
    with Served("serve", "--fail-stop") as served:
        served.wait_for("STUB started")
        served.proc.send_signal(signal.SIGTERM)
        code, records = served.finish()
    assert code == 1
    assert any("ERROR frontier.cli: frontier-gevent: stop(timeout=None) failed; exiting with status 1" in line for line in records), records
    assert any("RuntimeError: boom" in line for line in records), records


# -- logging and rlimit, in process ------------------------------------------------------


@pytest.fixture
def restore_root_logger() -> typing.Iterator[None]:
    import logging

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


def test_log_file_rotates_and_compresses(tmp_path: Path, restore_root_logger: None) -> None:
    import gzip
    import logging

    from frontier.process import configure_logging
    from frontier.config import Log, LogFile

    path = tmp_path / "logs" / "frontier.log"
    configure_logging(Log(output="file", level="info", file=LogFile(path=str(path), max_size=1, max_backups=2, compress=True)))
    logger = logging.getLogger("frontier.test")
    logger.debug("not written at info")
    for index in range(1200):
        logger.info("record %04d %s", index, "x" * 1000)
    rotated = tmp_path / "logs" / "frontier.log.1.gz"
    assert path.exists() and rotated.exists()
    with gzip.open(rotated, "rt") as handle:
        first = handle.readline()
    assert "INFO frontier.test: record 0000" in first
    assert "not written" not in path.read_text()


def test_unwritable_log_file_is_a_config_error(tmp_path: Path, restore_root_logger: None) -> None:
    from frontier.process import configure_logging
    from frontier.config import Log, LogFile
    from frontier.wire.errors import ConfigError

    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ConfigError, match=r"^log\.file\.path: cannot open"):
        configure_logging(Log(output="both", file=LogFile(path=str(blocker / "sub" / "x.log"))))


def test_rlimit_is_raised_never_lowered() -> None:
    import resource

    from frontier.process import apply_rlimit
    from frontier.config import RLimit

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        pytest.skip("the open-file limit is already unlimited")
    try:
        apply_rlimit(RLimit(enable=True, nofile=16))
        assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == soft
        target = soft + 1 if hard == resource.RLIM_INFINITY or soft < hard else soft
        apply_rlimit(RLimit(enable=True, nofile=target))
        assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == target
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
