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

from typing import Any, Callable, Optional, Sequence

from gevent.hub import Waiter

from frontier.wire.errors import ErrorCode

#: ``exchange.edge_hooks`` values
ONE, ALL = "one", "all"


class HookAnswer:
    """The answer to one hook request, :meth:`set` once by the hook deadline, in
    whichever greenlet it arrives: the service's ``code``, ``message`` and ``data``
    (the fields of its ``Response``; no event object is built). Either one greenlet
    waits for it with :meth:`get`, or ``callback`` is called with it at once. Every
    edge's ``edge_online`` waits on one: a gevent ``Waiter`` woken through the hub's
    callback queue costs a connect about 1.4 us less than an ``AsyncResult`` and its
    links."""

    def __init__(self, callback: Optional[Callable[["HookAnswer"], None]] = None) -> None:
        self.code = -1  #: the answer's error code (``OK``: the service agreed); -1 until set
        self.message = ""
        self.data = b""
        self._callback = callback
        self._waiter: Any = Waiter() if callback is None else None

    def set(self, code: int, message: str, data: bytes = b"") -> None:
        """The answer arrived (or the gateway answered for the service)."""
        self.code = code
        self.message = message
        self.data = data
        if self._callback is not None:
            self._callback(self)
        else:
            # a Waiter is switched to from the hub; one not waiting yet remembers it was
            self._waiter.hub.loop.run_callback(self._waiter.switch, None)

    def get(self) -> "HookAnswer":
        """Wait for the answer (once, from one greenlet); returns this, set."""
        self._waiter.get()
        return self


def _none_online() -> HookAnswer:
    answer = HookAnswer(_ignore)
    answer.set(ErrorCode.SERVICE_NOT_ONLINE, "no service with this hook is online")
    return answer


def _ignore(answer: HookAnswer) -> None:
    pass


#: sends one hook request to a service, its answer for ``callback`` if given; the
#: answer always arrives by the hook deadline
HookCall = Callable[[Any, str, bytes, Optional[Callable[[HookAnswer], None]]], HookAnswer]
Picker = Callable[[Sequence[Any], int, str], Any]


def call_one(candidates: Callable[[], Sequence[Any]], pick: Picker, call: HookCall, method: str, payload: bytes,
             edge_id: int, ip: str) -> tuple[Any, HookAnswer]:
    """Ask the service ``pick`` chooses among ``candidates()`` and wait for its answer;
    if it is gone (``SERVICE_NOT_ONLINE``), ask the next one picked among those left.
    Returns ``(service, answer)``; ``(None, SERVICE_NOT_ONLINE)`` when none is left."""
    tried: set[int] = set()
    answer = None  # (the last one gone's)
    while True:
        left = [s for s in candidates() if id(s) not in tried and not s.closed]
        if not left:
            return None, answer or _none_online()
        target = pick(left, edge_id, ip)
        tried.add(id(target))
        answer = call(target, method, payload, None).get()
        if answer.code != ErrorCode.SERVICE_NOT_ONLINE:
            return target, answer


def notify_one(candidates: Callable[[], Sequence[Any]], pick: Picker, call: HookCall, method: str, payload: bytes,
               edge_id: int, ip: str, tried: frozenset[int] = frozenset()) -> None:
    """:func:`call_one` without waiting (``edge_offline``, from the edge's closing
    reader): the answer is looked at where it arrives, and only to try another service
    when the picked one is gone."""
    left = [s for s in candidates() if id(s) not in tried and not s.closed]
    if not left:
        return
    target = pick(left, edge_id, ip)
    tried = tried | {id(target)}

    def on_answer(answer: HookAnswer) -> None:
        if answer.code == ErrorCode.SERVICE_NOT_ONLINE:
            notify_one(candidates, pick, call, method, payload, edge_id, ip, tried)

    call(target, method, payload, on_answer)
