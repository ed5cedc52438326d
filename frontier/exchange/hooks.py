"""Which services hear an edge's life: ``get_edge_id``, ``edge_online``, ``edge_offline``.

As in Go, each hook goes to **one** service that registered it, picked by
``exchange.hashby`` among those online (oldest first), within ``limits.hook_timeout``
(30 s, Go's limit). If the picked service is gone before it answers (its connection
closed, or it closed while the hook was on its way), the next one is picked among
those left, so a replica going down does not refuse edges. Only an answer of the
picked service counts: a refusal or a timeout of a live one is final.

``exchange.edge_hooks: all`` (ours) keeps the other behaviour: ``edge_online`` and
``edge_offline`` go to every service that registered them, and any refusal refuses
the edge (one slow replica then delays every login).
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from gevent.event import AsyncResult

from frontier.wire.errors import ErrorCode
from frontier.wire.events import Response

#: ``exchange.edge_hooks`` values
ONE, ALL = "one", "all"

#: sends one hook request to a service; the result (a ``Response``) always arrives
#: by the hook deadline
HookCall = Callable[[Any, str, bytes], AsyncResult]
Picker = Callable[[Sequence[Any], int, str], Any]


def call_one(candidates: Callable[[], Sequence[Any]], pick: Picker, call: HookCall, method: str, payload: bytes,
             edge_id: int, ip: str) -> tuple[Any, Response]:
    """Ask the service ``pick`` chooses among ``candidates()`` and wait for its answer;
    if it is gone (``SERVICE_NOT_ONLINE``), ask the next one picked among those left.
    Returns ``(service, answer)``; ``(None, SERVICE_NOT_ONLINE)`` when none is left."""
    tried: set[int] = set()
    answer = None  # (the last one gone's; built only when needed: events cost a connect)
    while True:
        left = [s for s in candidates() if id(s) not in tried and not s.closed]
        if not left:
            return None, answer or Response(0, ErrorCode.SERVICE_NOT_ONLINE, b"", "no service with this hook is online")
        target = pick(left, edge_id, ip)
        tried.add(id(target))
        answer = call(target, method, payload).get()
        if answer.code != ErrorCode.SERVICE_NOT_ONLINE:
            return target, answer


def notify_one(candidates: Callable[[], Sequence[Any]], pick: Picker, call: HookCall, method: str, payload: bytes,
               edge_id: int, ip: str, tried: frozenset[int] = frozenset()) -> None:
    """:func:`call_one` without waiting (``edge_offline``, from the edge's closing
    reader): the answer is looked at in the hub, and only to try another service when
    the picked one is gone."""
    left = [s for s in candidates() if id(s) not in tried and not s.closed]
    if not left:
        return
    target = pick(left, edge_id, ip)
    tried = tried | {id(target)}

    def on_answer(result: AsyncResult) -> None:
        if result.value is not None and result.value.code == ErrorCode.SERVICE_NOT_ONLINE:
            notify_one(candidates, pick, call, method, payload, edge_id, ip, tried)

    call(target, method, payload).rawlink(on_answer)
