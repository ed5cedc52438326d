"""Route matching and app validation, without sockets."""

from __future__ import annotations

import pytest

from frontier.config import Config, ConfigError, parse_app
from frontier.ingress.routes import RouteTable, normalize_path, request_host


def app(app_id: str, *frontends: tuple[str, str]) -> object:
    return parse_app({"id": app_id, "frontends": [{"hostname": h, "path_prefix": p} for h, p in frontends],
                      "backend": {"kind": "redirect", "redirect_opts": {"to": "https://x.test"}}})


def test_exact_host_beats_wildcard_then_longest_prefix() -> None:
    table = RouteTable([
        app("wild", ("*.example.com", "/")),
        app("wild-api", ("*.example.com", "/api")),
        app("exact", ("www.example.com", "/")),
        app("exact-deep", ("www.example.com", "/a/b")),
    ])
    assert table.match("www.example.com", "/x").app.id == "exact"
    assert table.match("www.example.com", "/a/b/c").app.id == "exact-deep"
    assert table.match("www.example.com", "/api").app.id == "exact"  # exact host first
    m = table.match("dev7.example.com", "/api/v1")
    assert (m.app.id, m.label) == ("wild-api", "dev7")
    assert table.match("dev7.example.com", "/").app.id == "wild"
    assert table.match("a.b.example.com", "/") is None  # one label only
    assert table.match("example.com", "/") is None


def test_exact_host_without_matching_prefix_falls_to_wildcard() -> None:
    table = RouteTable([app("wild", ("*.example.com", "/")), app("exact", ("www.example.com", "/only"))])
    assert table.match("www.example.com", "/other").app.id == "wild"


def test_path_normalisation() -> None:
    assert normalize_path("/%61dmin/x?y=1") == "/admin/x"
    assert normalize_path("/x/../admin") == "/admin"
    assert normalize_path("//admin/") == "/admin/"
    assert request_host("WWW.Example.com:8080") == "www.example.com"
    assert request_host("[::1]:80") == "[::1]"


@pytest.mark.parametrize("raw, message", [
    ({}, "id: expected an app id"),
    ({"id": "bad id"}, "id: expected an id"),
    ({"id": "a", "frontends": []}, "frontends: expected at least one frontend"),
    ({"id": "a", "frontends": [{"hostname": "*.*.x"}]}, "frontends[0].hostname: expected a hostname"),
    ({"id": "a", "frontends": [{"hostname": "a.x", "path_prefix": "nope"}]}, "frontends[0].path_prefix"),
    ({"id": "a", "frontends": [{"hostname": "a.x"}]}, "backend.kind: expected one of"),
    ({"id": "a", "frontends": [{"hostname": "a.x"}], "backend": {"kind": "edge_http", "edge_http_opts": {"target": "ui"}}},
     "backend.edge_http_opts: expected either edge_id"),
    ({"id": "a", "frontends": [{"hostname": "a.x"}], "backend": {"kind": "edge_http", "edge_http_opts": {"edge_id": 1}}},
     "backend.edge_http_opts.target"),
    ({"id": "a", "frontends": [{"hostname": "a.x"}], "backend": {"kind": "peer_set", "peer_set_opts": {"addrs": ["ftp://x"]}}},
     "backend.peer_set_opts.addrs[0]"),
    ({"id": "a", "frontends": [{"hostname": "a.x"}], "backend": {"kind": "redirect"}}, "backend.redirect_opts.to"),
    ({"id": "a", "frontends": [{"hostname": "a.x"}], "backend": {"kind": "redirect", "redirect_opts": {"to": "https://b"}},
      "auth": {"kind": "basic", "users": ["alice:plaintext"]}}, "auth.users[0]"),
    ({"id": "a", "frontends": [{"hostname": "a.x"}], "backend": {"kind": "redirect", "redirect_opts": {"to": "https://b"}},
      "auth": {"kind": "bearer"}}, "auth.tokens"),
    ({"id": "a", "frontends": [{"hostname": "a.x"}], "backend": {"kind": "redirect", "redirect_opts": {"to": "https://b"}},
      "colour": "red"}, "colour: unknown key"),
])
def test_invalid_apps_name_the_field(raw: dict, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_app(raw)
    assert str(info.value).startswith(message), str(info.value)
    assert "plaintext" not in str(info.value)


def test_config_section_as_pinned() -> None:
    config = Config.from_dict({"ingress": {
        "enable": True,
        "http": {"listen": {"addr": "0.0.0.0:30080"}},
        "https": {"listen": {"addr": "0.0.0.0:30443"}},
        "backend_timeout": 30, "max_body_size": 0,
        "acme": {"directory": "", "email": "", "ca_bundle": ""},
        "apps": [{"id": "device-ui", "frontends": [{"kind": "hostname", "hostname": "*.edges.example.com", "path_prefix": "/"}],
                  "backend": {"kind": "edge_http", "edge_http_opts": {"edge_from": "subdomain", "target": "ui"}},
                  "auth": {"kind": "bearer", "tokens": ["secret-1"]}}],
    }}, warn=lambda m: pytest.fail(m))
    assert config.ingress.apps[0].to_dict() == {
        "id": "device-ui", "frontends": [{"kind": "hostname", "hostname": "*.edges.example.com", "path_prefix": "/"}],
        "backend": {"kind": "edge_http", "edge_http_opts": {"edge_id": 0, "edge_from": "subdomain", "target": "ui"}},
        "auth": {"kind": "bearer", "tokens": ["secret-1"]},
    }
    with pytest.raises(ConfigError, match=r"^ingress.apps\[1\].id: 'x' is used by an earlier app"):
        Config.from_dict({"ingress": {"apps": [
            {"id": "x", "frontends": [{"hostname": "a.x"}], "backend": {"kind": "redirect", "redirect_opts": {"to": "https://b"}}},
        ] * 2}})
    with pytest.raises(ConfigError, match=r"^ingress.apps\[0\].backend.kind"):
        Config.from_dict({"ingress": {"apps": [{"id": "x", "frontends": [{"hostname": "a.x"}], "backend": {"kind": "docker"}}]}})


def test_relay_needs_service_auth_and_acme_needs_redis() -> None:
    with pytest.raises(ConfigError, match=r"^ingress.relay_frontlas_api: relaying needs servicebound.auth.enable"):
        Config.from_dict({"ingress": {"relay_frontlas_api": "127.0.0.1:40011"}})
    with pytest.raises(ConfigError, match=r"^ingress.acme.directory: ACME needs ingress.redis.addr"):
        Config.from_dict({"ingress": {"acme": {"directory": "https://acme.test/dir"}}})
