"""``frontier-gevent edges|services|apps ...``: the control plane from a shell.

Talks to a running gateway's REST API (``--addr``, default ``127.0.0.1:30010``) and
prints a table, or the API's JSON with ``--json``. The token comes from ``--token``
or the ``FRONTIER_CONTROLPLANE_TOKEN`` environment variable (which keeps it out of
``ps`` and shell history).

Exit codes: 0 success, 1 the API answered with an error (e.g. 404 for an unknown
id), 2 usage error, 3 the control plane could not be reached.

Standard library only: :func:`add_parsers` runs before the gateway monkey-patches.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Callable, Optional, Sequence

#: where the CLI looks for the gateway's control plane unless told
DEFAULT_ADDR = "127.0.0.1:30010"
#: environment variable holding the bearer token when --token is not given
TOKEN_ENV = "FRONTIER_CONTROLPLANE_TOKEN"

EXIT_OK = 0
EXIT_API_ERROR = 1
EXIT_UNREACHABLE = 3


class _Failure(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def add_parsers(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Add ``edges list|get|kick|rpcs|ban|unban|bans`` and ``services list|get|kick|rpcs|topics``.

    Each leaf parser sets ``func``: call ``args.func(args)`` and exit with its result.
    """
    common = argparse.ArgumentParser(add_help=False)
    conn = common.add_argument_group("connection")
    conn.add_argument("--addr", default=DEFAULT_ADDR, metavar="HOST:PORT",
                      help=f"control plane address or http(s):// URL (default {DEFAULT_ADDR})")
    conn.add_argument("--token", default=None, help=f"bearer token (default: ${TOKEN_ENV})")
    conn.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS", help="request timeout (default 10)")
    conn.add_argument("--json", action="store_true", help="print the API's JSON instead of a table")

    window = argparse.ArgumentParser(add_help=False)
    page = window.add_argument_group("paging and order")
    page.add_argument("--page", type=int, help="page number, from 1")
    page.add_argument("--page-size", type=int, help="items per page (default 10, at most 1000)")
    page.add_argument("--order", metavar="[-|+]FIELD",
                      help="sort field; write --order=-FIELD for descending (default -create_time)")
    page.add_argument("--start-time", type=int, metavar="UNIX", help="created at or after (unix seconds)")
    page.add_argument("--end-time", type=int, metavar="UNIX", help="created before (unix seconds)")

    def leaf(parent: Any, name: str, help: str, func: Callable[[argparse.Namespace], int],
             parents: Sequence[argparse.ArgumentParser]) -> argparse.ArgumentParser:
        p = parent.add_parser(name, help=help, description=help, parents=list(parents))
        p.set_defaults(func=func)
        return p

    edges = subparsers.add_parser("edges", help="list, show, kick and ban connected edges")
    edge_cmds = edges.add_subparsers(dest="edges_command", required=True, metavar="ACTION")
    p = leaf(edge_cmds, "list", "list online edges", _edges_list, [common, window])
    p.add_argument("--meta", help="meta starts with this")
    p.add_argument("--peer-addr", help="edge's remote address starts with this")
    p.add_argument("--rpc", help="edge registered exactly this RPC")
    p.add_argument("--edge-id", type=int, help="only this edge id")
    p = leaf(edge_cmds, "get", "show one edge", _edges_get, [common])
    p.add_argument("edge_id", type=int)
    p = leaf(edge_cmds, "kick", "force an edge offline (it reconnects after the gateway's "
             "limits.kick_reconnect_delay unless --no-reconnect)", _edges_kick, [common])
    p.add_argument("edge_id", type=int)
    p.add_argument("--no-reconnect", action="store_true", help="tell the edge not to come back by itself")
    p = leaf(edge_cmds, "ban", "refuse an edge id for a while (closing it if online)", _edges_ban, [common])
    p.add_argument("edge_id", type=int)
    p.add_argument("--duration", type=float, required=True, metavar="SECONDS", help="how long the ban lasts")
    p.add_argument("--reason", default=None, help="why (told to the edge and listed)")
    p = leaf(edge_cmds, "unban", "lift an edge's ban", _edges_unban, [common])
    p.add_argument("edge_id", type=int)
    leaf(edge_cmds, "bans", "list the bans in force", _edges_bans, [common])
    p = leaf(edge_cmds, "rpcs", "list RPCs registered by edges", _edges_rpcs, [common, window])
    p.add_argument("--meta", help="only edges whose meta starts with this")
    p.add_argument("--edge-id", type=int, help="only this edge")

    services = subparsers.add_parser("services", help="list, show and kick connected services")
    svc_cmds = services.add_subparsers(dest="services_command", required=True, metavar="ACTION")
    p = leaf(svc_cmds, "list", "list online services", _services_list, [common, window])
    p.add_argument("--service", help="service name starts with this")
    p.add_argument("--peer-addr", help="service's remote address starts with this")
    p.add_argument("--rpc", help="service registered exactly this RPC")
    p.add_argument("--topic", help="service declared exactly this topic")
    p.add_argument("--service-id", type=int, help="only this service id")
    p = leaf(svc_cmds, "get", "show one service connection", _services_get, [common])
    p.add_argument("service_id", type=int)
    p = leaf(svc_cmds, "kick", "force a service connection offline (it reconnects after the gateway's "
             "limits.kick_reconnect_delay unless --no-reconnect)", _services_kick, [common])
    p.add_argument("service_id", type=int)
    p.add_argument("--no-reconnect", action="store_true", help="tell the service not to come back by itself")
    for name, func in (("rpcs", _services_rpcs), ("topics", _services_topics)):
        p = leaf(svc_cmds, name, f"list {name.upper() if name == 'rpcs' else name} of services", func,
                 [common, window])
        p.add_argument("--service", help="only services whose name starts with this")
        p.add_argument("--service-id", type=int, help="only this service id")

    apps = subparsers.add_parser("apps", help="list, show, put and delete the HTTP ingress's apps")
    app_cmds = apps.add_subparsers(dest="apps_command", required=True, metavar="ACTION")
    leaf(app_cmds, "list", "list the ingress's apps", _apps_list, [common])
    p = leaf(app_cmds, "get", "show one app as JSON", _apps_get, [common])
    p.add_argument("app_id")
    p = leaf(app_cmds, "put", "create or replace the app(s) in a JSON or YAML file (one app, or a list)", _apps_put, [common])
    p.add_argument("file", help="the app(s), in the shape of ingress.apps[] (- reads stdin)")
    p = leaf(app_cmds, "delete", "delete an app", _apps_delete, [common])
    p.add_argument("app_id")


# -- HTTP -------------------------------------------------------------------------------


def _base_url(addr: str) -> str:
    if addr.startswith(("http://", "https://")):
        return addr.rstrip("/")
    return "http://" + addr


def _request(args: argparse.Namespace, method: str, path: str, query: Optional[dict[str, Any]] = None,
             body: Any = None) -> Any:
    url = _base_url(args.addr) + path
    if query:
        url += "?" + urllib.parse.urlencode({k: v for k, v in query.items() if v is not None})
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"Accept": "application/json"})
    if data is not None:
        req.add_header("Content-Type", "application/json")
    token = args.token if args.token is not None else os.environ.get(TOKEN_ENV)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=args.timeout) as resp:
            return json.load(resp)
    except urllib.error.HTTPError as err:
        try:
            body = json.load(err)
            message = f"{body.get('message', '')} ({err.code} {body.get('reason', '')})"
        except (ValueError, AttributeError):
            message = f"HTTP {err.code} {err.reason}"
        raise _Failure(EXIT_API_ERROR, message) from None
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise _Failure(EXIT_UNREACHABLE, f"cannot reach the control plane at {url}: {reason}") from None
    except ValueError as err:
        raise _Failure(EXIT_API_ERROR, f"{url} did not answer JSON: {err}") from None


def _window(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "page": args.page,
        "page_size": args.page_size,
        "order": args.order,
        "start_time": args.start_time,
        "end_time": args.end_time,
    }


# -- output ---------------------------------------------------------------------------------


def _clean(value: Any) -> str:
    """One table cell: lists joined by commas, control characters escaped."""
    if isinstance(value, list):
        value = ",".join(map(str, value))
    text = str(value)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _when(unix: int) -> str:
    try:
        return datetime.datetime.fromtimestamp(unix, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        return str(unix)


def _table(rows: list[dict[str, Any]], columns: Sequence[tuple[str, str]]) -> str:
    cells = [[title for _, title in columns]]
    for row in rows:
        cells.append([_when(row[key]) if key == "create_time" else _clean(row.get(key, "")) for key, _ in columns])
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells)


def _footer(body: dict[str, Any], shown: int, noun: str, args: argparse.Namespace) -> str:
    page = args.page or 1
    return f"page {page}: {shown} shown, {body.get('count', shown)} {noun} in all"


_EDGE_COLUMNS = (("edge_id", "EDGE_ID"), ("meta", "META"), ("addr", "ADDR"), ("create_time", "CREATED"),
                 ("rpcs", "RPCS"))
_SERVICE_COLUMNS = (("service_id", "SERVICE_ID"), ("service", "SERVICE"), ("addr", "ADDR"),
                    ("create_time", "CREATED"), ("rpcs", "RPCS"), ("topics", "TOPICS"))


def _run(func: Callable[[], Optional[str]], args: argparse.Namespace) -> int:
    try:
        text = func()
    except _Failure as fail:
        print(f"error: {fail}", file=sys.stderr)
        return fail.code
    if text is not None:
        print(text)
    return EXIT_OK


def _dump(body: Any) -> str:
    return json.dumps(body, indent=2, ensure_ascii=False)


def _list(args: argparse.Namespace, path: str, query: dict[str, Any], field: str,
          columns: Optional[Sequence[tuple[str, str]]], noun: str) -> int:
    def go() -> str:
        body = _request(args, "GET", path, {**query, **_window(args)})
        if args.json:
            return _dump(body)
        items = body.get(field, [])
        if columns is None:  # a list of names
            lines = [_clean(n) for n in items]
        else:
            lines = [_table(items, columns)] if items else []
        return "\n".join(lines + [_footer(body, len(items), noun, args)])

    return _run(go, args)


def _show(args: argparse.Namespace, path: str, columns: Sequence[tuple[str, str]]) -> int:
    def go() -> str:
        body = _request(args, "GET", path)
        if args.json:
            return _dump(body)
        width = max(len(title) for _, title in columns)
        return "\n".join(
            f"{title.ljust(width)}  {_when(body[key]) if key == 'create_time' else _clean(body.get(key, ''))}"
            for key, title in columns
        )

    return _run(go, args)


def _kick(args: argparse.Namespace, path: str, what: str) -> int:
    def go() -> str:
        body = _request(args, "DELETE", path, {"reconnect": "false"} if args.no_reconnect else None)
        return _dump(body) if args.json else f"kicked {what}" + (" for good" if args.no_reconnect else "")

    return _run(go, args)


_BAN_COLUMNS = (("edge_id", "EDGE_ID"), ("remaining", "SECONDS_LEFT"), ("reason", "REASON"))


def _edges_ban(args: argparse.Namespace) -> int:
    def go() -> str:
        body = _request(args, "PUT", f"/v1/bans/{args.edge_id}", {"duration": args.duration, "reason": args.reason})
        return _dump(body) if args.json else f"banned edge {args.edge_id} for {body['remaining']:.0f}s"

    return _run(go, args)


def _edges_unban(args: argparse.Namespace) -> int:
    def go() -> str:
        body = _request(args, "DELETE", f"/v1/bans/{args.edge_id}")
        if args.json:
            return _dump(body)
        return f"lifted the ban on edge {args.edge_id}" if body["lifted"] else f"edge {args.edge_id} had no ban"

    return _run(go, args)


def _edges_bans(args: argparse.Namespace) -> int:
    def go() -> str:
        body = _request(args, "GET", "/v1/bans")
        if args.json:
            return _dump(body)
        bans = [{**b, "remaining": f"{b['remaining']:.0f}"} for b in body["bans"]]
        return "\n".join(([_table(bans, _BAN_COLUMNS)] if bans else []) + [f"{body['count']} bans"])

    return _run(go, args)


def _edges_list(args: argparse.Namespace) -> int:
    query = {"meta": args.meta, "addr": args.peer_addr, "rpc": args.rpc, "edge_id": args.edge_id}
    return _list(args, "/v1/edges", query, "edges", _EDGE_COLUMNS, "edges")


def _edges_get(args: argparse.Namespace) -> int:
    return _show(args, f"/v1/edges/{args.edge_id}", _EDGE_COLUMNS)


def _edges_kick(args: argparse.Namespace) -> int:
    return _kick(args, f"/v1/edges/{args.edge_id}", f"edge {args.edge_id}")


def _edges_rpcs(args: argparse.Namespace) -> int:
    return _list(args, "/v1/edges/rpcs", {"meta": args.meta, "edge_id": args.edge_id}, "rpcs", None, "RPCs")


def _services_list(args: argparse.Namespace) -> int:
    query = {"service": args.service, "addr": args.peer_addr, "rpc": args.rpc, "topic": args.topic,
             "service_id": args.service_id}
    return _list(args, "/v1/services", query, "services", _SERVICE_COLUMNS, "services")


def _services_get(args: argparse.Namespace) -> int:
    return _show(args, f"/v1/services/{args.service_id}", _SERVICE_COLUMNS)


def _services_kick(args: argparse.Namespace) -> int:
    return _kick(args, f"/v1/services/{args.service_id}", f"service {args.service_id}")


def _services_rpcs(args: argparse.Namespace) -> int:
    query = {"service": args.service, "service_id": args.service_id}
    return _list(args, "/v1/services/rpcs", query, "rpcs", None, "RPCs")


def _services_topics(args: argparse.Namespace) -> int:
    query = {"service": args.service, "service_id": args.service_id}
    return _list(args, "/v1/services/topics", query, "topics", None, "topics")


def _app_row(app: dict[str, Any]) -> dict[str, Any]:
    backend = app.get("backend", {})
    opts = backend.get(f"{backend.get('kind', '')}_opts", {})
    where = ", ".join(f"{f.get('hostname', '')}{f.get('path_prefix', '/')}" for f in app.get("frontends", []))
    target = opts.get("target") or opts.get("to") or ",".join(opts.get("addrs", []))
    return {"id": app.get("id", ""), "frontends": where, "backend": f"{backend.get('kind', '')} {target}".strip(),
            "auth": app.get("auth", {}).get("kind", "none")}


_APP_COLUMNS = (("id", "ID"), ("frontends", "FRONTENDS"), ("backend", "BACKEND"), ("auth", "AUTH"))


def _apps_list(args: argparse.Namespace) -> int:
    def go() -> str:
        body = _request(args, "GET", "/v1/apps")
        if args.json:
            return _dump(body)
        rows = [_app_row(app) for app in body.get("apps", [])]
        return "\n".join(([_table(rows, _APP_COLUMNS)] if rows else []) + [f"{len(rows)} apps"])

    return _run(go, args)


def _apps_get(args: argparse.Namespace) -> int:
    return _run(lambda: _dump(_request(args, "GET", f"/v1/apps/{urllib.parse.quote(args.app_id, safe='')}")), args)


def _read_apps(name: str) -> list[Any]:
    try:
        text = sys.stdin.read() if name == "-" else open(name, encoding="utf-8").read()
    except OSError as exc:
        raise _Failure(2, f"cannot read {name}: {exc.strerror or exc}") from None
    import yaml  # JSON is YAML too

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise _Failure(2, f"{name} is neither JSON nor YAML: {exc}") from None
    if isinstance(data, dict) and isinstance(data.get("apps"), list):
        data = data["apps"]
    items = data if isinstance(data, list) else [data]
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            raise _Failure(2, f"{name}: every app must be a mapping with an id")
    return items


def _apps_put(args: argparse.Namespace) -> int:
    def go() -> str:
        done = []
        for app in _read_apps(args.file):
            done.append(_request(args, "PUT", f"/v1/apps/{urllib.parse.quote(app['id'], safe='')}", body=app))
        return _dump(done if len(done) != 1 else done[0]) if args.json else "\n".join(f"put app {a['id']}" for a in done)

    return _run(go, args)


def _apps_delete(args: argparse.Namespace) -> int:
    def go() -> str:
        body = _request(args, "DELETE", f"/v1/apps/{urllib.parse.quote(args.app_id, safe='')}")
        return _dump(body) if args.json else f"deleted app {args.app_id}"

    return _run(go, args)
