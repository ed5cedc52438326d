"""frontier.config: defaults, the Go frontier.yaml format, env overrides, refusals, warnings."""

from __future__ import annotations

import dataclasses
import logging
import textwrap
from pathlib import Path

import pytest
import yaml

from frontier.config import (
    Config,
    Daemon,
    Limits,
    Log,
    PProf,
    RLimit,
    apply_env_overrides,
    load_config,
    parse_addr,
)
from frontier.wire.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "frontier.yaml"
    path.write_text(textwrap.dedent(text))
    return str(path)


def load(raw: dict, **env: str) -> tuple[Config, list[str]]:
    warnings: list[str] = []
    config = Config.from_dict(apply_env_overrides(raw, env), warn=warnings.append)
    return config, warnings


def without_mqm(config: Config) -> dict:
    out = config.to_dict()
    del out["mqm"]
    return out


# -- defaults ------------------------------------------------------------------------


def test_defaults_match_go_and_our_limits() -> None:
    config = load_config(None, env={})
    assert config == Config()
    assert config.servicebound.listen.network == "tcp"
    assert config.servicebound.listen.addr == "0.0.0.0:30011"
    assert config.edgebound.listen.addr == "0.0.0.0:30012"
    assert config.edgebound.edgeid_alloc_when_no_idservice_on is True
    assert config.controlplane.enable is False
    assert config.controlplane.listen.addr == "0.0.0.0:30010"
    assert config.controlplane.auth.bearer_tokens == ()
    assert config.exchange.hashby == "edgeid"
    assert config.dao.backend == "buntdb"
    assert config.dao.debug is False
    assert config.frontlas.enable is False
    assert config.frontlas.dial.addrs == ("127.0.0.1:40012",)
    assert config.log.level == "info"
    assert config.limits == Limits(
        max_frame_size=1048576,
        handshake_timeout=10.0,
        heartbeat_interval=15.0,
        stream_window=1048576,
        max_inflight=1024,
        hook_timeout=30.0,
        default_call_timeout=30.0,
        drain_timeout=10.0,
        max_connections=0,
    )


def test_sections_are_frozen() -> None:
    config = Config()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.limits.max_frame_size = 1  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.exchange = None  # type: ignore[misc]


def test_example_file_is_the_defaults_and_warns_nothing() -> None:
    warnings: list[str] = []
    config = load_config(str(REPO / "etc" / "frontier.yaml"), env={}, warn=warnings.append)
    assert warnings == []
    assert config == Config()


def test_empty_file_is_the_defaults(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, ""), env={}) == Config()


# -- the Go format -------------------------------------------------------------------

GO_YAML = """\
controlplane:
  enable: true
  listen:
    addr: 127.0.0.1:30010
    advertised_addr: ""
    network: tcp
    tls:
      ca_certs: null
      certs: null
      enable: false
      insecure_skip_verify: false
      mtls: false
daemon:
  frontier_id: frontier01
  pprof:
    addr: 0.0.0.0:6060
    cpu_profile_rate: 0
    enable: true
  rlimit:
    enable: true
    nofile: 102400
dao:
  backend: sqlite3
  debug: true
edgebound:
  bypass:
    addrs:
    - 192.168.1.10:8443
    network: tcp
    tls:
      ca_certs: [ca1.cert]
      certs:
      - cert: frontier.cert
        key: frontier.key
      enable: true
      mtls: true
  bypass_enable: false
  edgeid_alloc_when_no_idservice_on: false
  listen:
    addr: 0.0.0.0:40012
    network: tcp
    tls:
      ca_certs: [ca1.cert, ca2.cert]
      certs:
      - cert: edgebound.cert
        key: edgebound.key
      enable: false
      insecure_skip_verify: false
      mtls: false
exchange:
  hashby: ""
frontlas:
  dial:
    addrs:
    - 10.0.0.1:40012
    - 10.0.0.2:40012
    network: tcp
  enable: true
  metrics:
    enable: true
    interval: 10
log:
  file:
    compress: false
    max_age: 30
    max_backups: 5
    max_size: 100
    path: /var/log/frontier/frontier.log
  format: json
  level: debug
  output: stdout
mqm:
  kafka:
    addrs: null
    enable: false
servicebound:
  listen:
    addr: 0.0.0.0:40011
    network: tcp
"""


def test_go_format_is_read_as_it_is(tmp_path: Path) -> None:
    warnings: list[str] = []
    config = load_config(write(tmp_path, GO_YAML), env={}, warn=warnings.append)
    assert config.controlplane.enable is True
    assert config.controlplane.listen.addr == "127.0.0.1:30010"
    assert config.controlplane.listen.tls.certs == ()  # null keeps the default
    assert config.daemon == Daemon(
        frontier_id="frontier01",
        rlimit=RLimit(enable=True, nofile=102400),
        pprof=PProf(enable=True),
    )
    assert config.dao.backend == "sqlite3" and config.dao.debug is True
    assert config.edgebound.listen.addr == "0.0.0.0:40012"
    assert config.edgebound.listen.tls.ca_certs == ("ca1.cert", "ca2.cert")
    assert config.edgebound.listen.tls.certs[0].cert == "edgebound.cert"
    assert config.edgebound.edgeid_alloc_when_no_idservice_on is False
    assert config.edgebound.bypass.addrs == ("192.168.1.10:8443",)
    assert config.exchange.hashby == "edgeid"  # "" means the default, as in Go
    assert config.frontlas.enable is True
    assert config.frontlas.dial.addrs == ("10.0.0.1:40012", "10.0.0.2:40012")
    assert config.frontlas.metrics.interval == 10
    assert config.log == Log(level="debug", format="json")
    assert config.servicebound.listen.addr == "0.0.0.0:40011"
    assert config.servicebound.listen.host_port == ("0.0.0.0", 40011)
    # the one Go feature turned on that we do not implement is named
    assert warnings == ["daemon.pprof.enable: Go's pprof profiler is not implemented in frontier-gevent, ignored"]


def test_partial_section_keeps_other_defaults() -> None:
    config, _ = load({"edgebound": {"listen": {"network": "tcp"}}, "limits": {"max_inflight": 8}})
    assert config.edgebound.listen.addr == "0.0.0.0:30012"
    assert config.limits.max_inflight == 8
    assert config.limits.max_frame_size == 1048576


@pytest.mark.parametrize("raw", ["127.0.0.1:40012", ["127.0.0.1:40012"]])
def test_dial_addr_is_an_alias_of_addrs(raw: object) -> None:
    config, warnings = load({"frontlas": {"enable": True, "dial": {"network": "tcp", "addr": raw}}})
    assert config.frontlas.dial.addrs == ("127.0.0.1:40012",)
    assert warnings == []


def test_dial_addr_and_addrs_disagreeing_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"^frontlas\.dial\.addr: give either addr or addrs"):
        load({"frontlas": {"dial": {"addr": ["a:1"], "addrs": ["b:2"]}}})


def test_aliases_and_case() -> None:
    config, _ = load({"dao": {"backend": "memory"}, "exchange": {"hashby": "Random"}, "log": {"level": "WARNING"}})
    assert config.dao.backend == "buntdb"
    assert config.exchange.hashby == "random"
    assert config.log.level == "warn"


def test_go_zero_means_default_for_log_rotation() -> None:
    config, _ = load({"log": {"file": {"max_size": 0, "max_backups": 0, "max_age": 0}}})
    assert (config.log.file.max_size, config.log.file.max_backups, config.log.file.max_age) == (100, 5, 0)


def test_numbers_are_yaml_1_2(tmp_path: Path) -> None:
    path = write(tmp_path, "daemon:\n  frontier_id: 0123\nlimits:\n  hook_timeout: 1e1\n")
    config = load_config(path, env={})
    assert config.daemon.frontier_id == "0123"  # not octal 83
    assert config.limits.hook_timeout == 10.0
    config, _ = load({}, FRONTIER__DAEMON__FRONTIER_ID="10:30")
    assert config.daemon.frontier_id == "10:30"  # not base-60 630


def test_integer_into_a_string_key_is_its_text() -> None:
    config, _ = load({"daemon": {"frontier_id": 7}})
    assert config.daemon.frontier_id == "7"


def test_tls_files_are_checked_when_enabled(tmp_path: Path) -> None:
    cert, key, ca = (tmp_path / name for name in ("s.crt", "s.key", "ca.crt"))
    for path in (cert, key, ca):
        path.write_text("-----")
    tls = {"enable": True, "mtls": True, "certs": [{"cert": str(cert), "key": str(key)}], "ca_certs": [str(ca)]}
    config, _ = load({"edgebound": {"listen": {"tls": tls}}})
    assert config.edgebound.listen.tls.enable and config.edgebound.listen.tls.mtls
    missing = dict(tls, ca_certs=[str(tmp_path / "nope.crt")])
    with pytest.raises(ConfigError, match=r"^edgebound\.listen\.tls\.ca_certs\[0\]: file not found"):
        load({"edgebound": {"listen": {"tls": missing}}})


def test_round_trip_through_yaml() -> None:
    config, _ = load(
        {
            "edgebound": {"listen": {"addr": "127.0.0.1:0"}},
            "controlplane": {"enable": True, "auth": {"bearer_tokens": ["t1", "t2"]}},
            "limits": {"max_connections": 5},
            "frontlas": {"dial": {"addrs": ["h:1", "h:2"]}},
        }
    )
    again, warnings = load(yaml.safe_load(config.to_yaml()))
    assert warnings == []
    assert without_mqm(again) == without_mqm(config)
    assert again.controlplane.auth.bearer_tokens == ("t1", "t2")


# -- environment overrides -----------------------------------------------------------


def test_env_overrides_nested_keys_with_yaml_values() -> None:
    config, _ = load(
        {"exchange": {"hashby": "srcip"}},
        FRONTIER__EDGEBOUND__LISTEN__ADDR="0.0.0.0:4000",
        FRONTIER__EXCHANGE__HASHBY="random",
        FRONTIER__LIMITS__MAX_FRAME_SIZE="65536",
        FRONTIER__LIMITS__DRAIN_TIMEOUT="2.5",
        FRONTIER__CONTROLPLANE__ENABLE="true",
        FRONTIER__CONTROLPLANE__AUTH__BEARER_TOKENS="[tok-a, tok-b]",
        FRONTIER_NOT_OURS="ignored",
        PATH="/usr/bin",
    )
    assert config.edgebound.listen.addr == "0.0.0.0:4000"
    assert config.exchange.hashby == "random"
    assert config.limits.max_frame_size == 65536
    assert config.limits.drain_timeout == 2.5
    assert config.controlplane.enable is True
    assert config.controlplane.auth.bearer_tokens == ("tok-a", "tok-b")


def test_env_beats_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "limits:\n  max_inflight: 10\n")
    config = load_config(path, env={"FRONTIER__LIMITS__MAX_INFLIGHT": "20"})
    assert config.limits.max_inflight == 20


def test_env_matches_existing_keys_case_insensitively() -> None:
    raw = {"mqm": {"amqp": {"queueBindings": None}}}
    out = apply_env_overrides(raw, {"FRONTIER__MQM__AMQP__QUEUEBINDINGS": "[]"})
    assert out == {"mqm": {"amqp": {"queueBindings": []}}}
    assert raw == {"mqm": {"amqp": {"queueBindings": None}}}  # the input is not changed


def test_load_config_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRONTIER__EXCHANGE__HASHBY", "srcip")
    assert load_config().exchange.hashby == "srcip"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"FRONTIER__LIMITS____X": "1"}, r"^FRONTIER__LIMITS____X: expected FRONTIER__SECTION__KEY"),
        ({"FRONTIER__": "1"}, r"^FRONTIER__: expected"),
        ({"FRONTIER__EXCHANGE__HASHBY__X": "1"}, r"^FRONTIER__EXCHANGE__HASHBY__X: exchange\.hashby is a value"),
        ({"FRONTIER__LIMITS__MAX_INFLIGHT": "[unclosed"}, r"^FRONTIER__LIMITS__MAX_INFLIGHT: cannot parse"),
        ({"FRONTIER__LIMITS__MAX_INFLIGHT": "many"}, r"^limits\.max_inflight: expected an integer"),
    ],
)
def test_bad_env_overrides_are_refused(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load({"exchange": {"hashby": "edgeid"}}, **env)


# -- refusals ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"exchange": {"hashby": "roundrobin"}}, r"^exchange\.hashby: expected one of edgeid, srcip, random, got 'roundrobin'"),
        ({"servicebound": {"listen": {"addr": "0.0.0.0:99999"}}}, r"^servicebound\.listen\.addr: expected \"host:port\" with a port in 0\.\.65535"),
        ({"edgebound": {"listen": {"addr": "localhost"}}}, r"^edgebound\.listen\.addr: expected \"host:port\""),
        ({"edgebound": {"listen": {"addr": 30012}}}, r"^edgebound\.listen\.addr: expected \"host:port\""),
        ({"edgebound": {"listen": {"network": "udp"}}}, r"^edgebound\.listen\.network: expected one of tcp \(Go's udp is not implemented\)"),
        ({"controlplane": {"enable": "yes please"}}, r"^controlplane\.enable: expected true or false, got 'yes please'"),
        ({"controlplane": {"listen": {"addr": "0.0.0.0:-1"}}}, r"^controlplane\.listen\.addr: expected \"host:port\""),
        ({"controlplane": {"auth": {"bearer_tokens": [""]}}}, r"^controlplane\.auth\.bearer_tokens\[0\]: expected a non-empty string"),
        ({"controlplane": {"auth": {"bearer_tokens": {"a": 1}}}}, r"^controlplane\.auth\.bearer_tokens: expected a list"),
        ({"dao": {"backend": "mysql"}}, r"^dao\.backend: expected one of buntdb, sqlite3"),
        ({"log": {"level": "loud"}}, r"^log\.level: expected one of debug, info, warn, error"),
        ({"log": {"output": "syslog"}}, r"^log\.output: expected one of stdout, stderr, file, both"),
        ({"log": {"file": {"max_age": -1}}}, r"^log\.file\.max_age: expected a number >= 0"),
        ({"daemon": {"rlimit": {"nofile": 0}}}, r"^daemon\.rlimit\.nofile: expected a number > 0"),
        ({"frontlas": {"dial": {"addrs": ["nohost"]}}}, r"^frontlas\.dial\.addrs\[0\]: expected \"host:port\""),
        ({"frontlas": {"dial": {"addrs": [":40012"]}}}, r"^frontlas\.dial\.addrs\[0\]: expected \"host:port\" with a host"),
        ({"frontlas": {"enable": True, "dial": {"addrs": []}}}, r"^frontlas\.dial\.addrs: expected at least one host:port when frontlas\.enable is true"),
        ({"frontlas": {"metrics": {"enable": True}}}, r"^frontlas\.metrics\.interval: expected seconds > 0"),
        ({"limits": {"max_frame_size": -1}}, r"^limits\.max_frame_size: expected a number > 0, got -1"),
        ({"limits": {"max_frame_size": 0}}, r"^limits\.max_frame_size: expected a number > 0, got 0"),
        ({"limits": {"max_frame_size": "1MB"}}, r"^limits\.max_frame_size: expected an integer, got '1MB'"),
        ({"limits": {"max_frame_size": 1.5}}, r"^limits\.max_frame_size: expected an integer"),
        ({"limits": {"max_inflight": True}}, r"^limits\.max_inflight: expected an integer, got True"),
        ({"limits": {"handshake_timeout": "10s"}}, r"^limits\.handshake_timeout: expected a number, got '10s'"),
        ({"limits": {"heartbeat_interval": float("inf")}}, r"^limits\.heartbeat_interval: expected a finite number"),
        ({"limits": {"drain_timeout": -0.5}}, r"^limits\.drain_timeout: expected a number >= 0"),
        ({"limits": {"max_connections": -1}}, r"^limits\.max_connections: expected a number >= 0"),
        ({"limits": {"default_call_timeout": 0}}, r"^limits\.default_call_timeout: expected a number > 0"),
        ({"limits": ["max_frame_size"]}, r"^limits: expected a mapping of keys"),
        ({"servicebound": "0.0.0.0:30011"}, r"^servicebound: expected a mapping of keys"),
        ({"servicebound": {"listen": {"tls": {"certs": ["a.crt"]}}}}, r"^servicebound\.listen\.tls\.certs\[0\]: expected a mapping"),
        ({"servicebound": {"listen": {"tls": {"enable": True}}}}, r"^servicebound\.listen\.tls\.certs: expected at least one cert/key pair"),
        ({"daemon": {"frontier_id": 1.5}}, r"^daemon\.frontier_id: expected a string \(quote it\)"),
    ],
)
def test_wrong_values_are_refused_naming_the_key(raw: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load(raw)


def test_file_problems_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.yaml: cannot read config file"):
        load_config(str(tmp_path / "nope.yaml"), env={})
    with pytest.raises(ConfigError, match=r"invalid YAML"):
        load_config(write(tmp_path, "servicebound: [unclosed\n"), env={})
    with pytest.raises(ConfigError, match=r"expected a mapping of sections at the top level"):
        load_config(write(tmp_path, "- a\n- b\n"), env={})


# -- warnings ------------------------------------------------------------------------


def test_unknown_keys_are_warned_with_their_path() -> None:
    config, warnings = load({"servicebound": {"listn": {"addr": "x"}}, "telemetry": {"on": True}, "limits": {"max_frame": 1}})
    assert config == dataclasses.replace(Config(), mqm=config.mqm)
    assert warnings == [
        "servicebound.listn: unknown key, ignored",
        "telemetry: unknown key, ignored",
        "limits.max_frame: unknown key, ignored",
    ]


def test_unknown_key_from_env_is_warned() -> None:
    _, warnings = load({}, FRONTIER__LIMITS__MAX_FRAMES="1")
    assert warnings == ["limits.max_frames: unknown key, ignored"]


def test_not_implemented_go_features_are_warned() -> None:
    _, warnings = load({"edgebound": {"bypass_enable": True}, "daemon": {"pprof": {"enable": True}}})
    assert warnings == [
        "edgebound.bypass_enable: the legacy-gateway bypass is not implemented in frontier-gevent, ignored",
        "daemon.pprof.enable: Go's pprof profiler is not implemented in frontier-gevent, ignored",
    ]


def test_default_warning_goes_to_the_log(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="frontier.config"):
        Config.from_dict({"exchange": {"hashby": "random", "salt": 3}})
    assert "exchange.salt: unknown key, ignored" in caplog.text


# -- parse_addr ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0.0.0.0:30011", ("0.0.0.0", 30011)),
        ("localhost:1", ("localhost", 1)),
        (":30012", ("", 30012)),
        ("127.0.0.1:0", ("127.0.0.1", 0)),
        ("[::1]:30010", ("::1", 30010)),
    ],
)
def test_parse_addr(text: str, expected: tuple[str, int]) -> None:
    assert parse_addr(text) == expected


@pytest.mark.parametrize("text", ["", "30011", "host:", "host:port", "::1:30011", "h:65536", "h:1:2"])
def test_parse_addr_refuses(text: str) -> None:
    with pytest.raises(ConfigError, match=r"^where\.addr: expected \"host:port\""):
        parse_addr(text, "where.addr")

