"""The security keys of the configuration: validation messages naming the key, and
FRONTIER_DRAIN_SECONDS above every other source of limits.drain_timeout."""

from __future__ import annotations

import pytest
import yaml

from frontier.config import Config, load_config
from frontier.wire.errors import ConfigError


@pytest.mark.parametrize("raw, message", [
    ({"edgebound": {"auth": {"enable": True}}}, r"^edgebound\.auth\.secrets: expected at least one secret"),
    ({"edgebound": {"auth": {"secrets": ["short"]}}}, r"^edgebound\.auth\.secrets\[0\]: expected a secret of at least 16"),
    ({"servicebound": {"auth": {"enable": True, "secrets": []}}}, r"^servicebound\.auth\.secrets: expected at least one"),
    ({"limits": {"exempt_ips": ["10.0.0.0/33"]}}, r"^limits\.exempt_ips\[0\]: expected an IP address or CIDR"),
    ({"limits": {"connect_rate_per_ip": -1}}, r"^limits\.connect_rate_per_ip: expected a number >= 0"),
    ({"limits": {"connect_burst_per_ip": 0}}, r"^limits\.connect_burst_per_ip: expected a number > 0"),
    ({"limits": {"max_handshake_size": 100}}, r"^limits\.max_handshake_size: expected a number >= 1024"),
])
def test_wrong_values_name_their_key(raw, message):
    with pytest.raises(ConfigError, match=message):
        Config.from_dict(raw, warn=lambda m: None)


def test_the_secret_itself_is_never_in_an_error():
    with pytest.raises(ConfigError) as info:
        Config.from_dict({"edgebound": {"auth": {"secrets": ["hunter2"]}}}, warn=lambda m: None)
    assert "hunter2" not in str(info.value)


def test_keys_parse_and_round_trip():
    raw = {
        "edgebound": {"auth": {"enable": True, "secrets": ["a" * 16, "b" * 20]}},
        "servicebound": {"auth": {"enable": True, "secrets": "c" * 16}},  # a lone string is a list of one
        "limits": {"max_connections_per_ip": 50, "connect_rate_per_ip": 2.5, "ban_seconds": 0,
                   "exempt_ips": ["10.0.0.0/8", "::1"], "max_streams": 8, "max_handshake_size": 4096},
    }
    config = Config.from_dict(raw, warn=lambda m: pytest.fail(m))
    assert config.servicebound.auth.secrets == ("c" * 16,)
    assert config.limits.exempt_ips == ("10.0.0.0/8", "::1")
    assert Config.from_dict(yaml.safe_load(config.to_yaml()), warn=lambda m: pytest.fail(m)) == config


def test_drain_seconds_from_the_environment_win(tmp_path):
    path = tmp_path / "frontier.yaml"
    path.write_text("limits: {drain_timeout: 30}\n")
    assert load_config(str(path), env={}).limits.drain_timeout == 30
    env = {"FRONTIER__LIMITS__DRAIN_TIMEOUT": "20", "FRONTIER_DRAIN_SECONDS": "2.5"}
    assert load_config(str(path), env=env).limits.drain_timeout == 2.5
    assert load_config(None, env={"FRONTIER_DRAIN_SECONDS": "0"}).limits.drain_timeout == 0
    assert load_config(None, env={"FRONTIER_DRAIN_SECONDS": " "}).limits.drain_timeout == 10.0
    for bad in ("soon", "-1", "inf", "nan"):
        with pytest.raises(ConfigError, match="^FRONTIER_DRAIN_SECONDS: expected seconds"):
            load_config(None, env={"FRONTIER_DRAIN_SECONDS": bad})
