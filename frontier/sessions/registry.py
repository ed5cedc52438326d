"""Who is online: edges by id, services by id, name, method, topic and hook.

Plain in-process indexes, touched only from the gateway's hub (no locks needed).
"""

from __future__ import annotations

from typing import Generic, Iterable, Iterator, TypeVar

S = TypeVar("S")


class EdgeRegistry(Generic[S]):
    """Edge sessions by edge id; at most one session per id."""

    __slots__ = ("_by_id",)

    def __init__(self) -> None:
        self._by_id: dict[int, S] = {}

    def get(self, edge_id: int) -> S | None:
        """The session holding ``edge_id``, if online."""
        return self._by_id.get(edge_id)

    def put(self, edge_id: int, session: S) -> S | None:
        """Make ``session`` hold ``edge_id``; return the session it replaced, if any."""
        old = self._by_id.get(edge_id)
        self._by_id[edge_id] = session
        return old if old is not session else None

    def remove(self, edge_id: int, session: S) -> bool:
        """Forget ``edge_id`` only if ``session`` still holds it (a replaced, older
        connection's late close must not remove the newer one)."""
        if self._by_id.get(edge_id) is session:
            del self._by_id[edge_id]
            return True
        return False

    def __contains__(self, edge_id: int) -> bool:
        return edge_id in self._by_id

    def __len__(self) -> int:
        return len(self._by_id)

    def __iter__(self) -> Iterator[S]:
        return iter(list(self._by_id.values()))


class _Index(Generic[S]):
    """key -> sessions in registration order (oldest first, for stable hashing)."""

    __slots__ = ("_map",)

    def __init__(self) -> None:
        self._map: dict[str, list[S]] = {}

    def add(self, keys: Iterable[str], session: S) -> None:
        for key in keys:
            lst = self._map.setdefault(key, [])
            if session not in lst:
                lst.append(session)

    def discard(self, keys: Iterable[str], session: S) -> None:
        for key in keys:
            lst = self._map.get(key)
            if lst is not None and session in lst:
                lst.remove(session)
                if not lst:
                    del self._map[key]

    def get(self, key: str) -> list[S]:
        return self._map.get(key, [])


class ServiceRegistry(Generic[S]):
    """Service sessions by id, and indexes by name, method, topic and hook.

    Lists returned are in registration order and must not be mutated by callers.
    """

    __slots__ = ("_by_id", "by_name", "by_rpc", "by_topic", "by_hook")

    def __init__(self) -> None:
        self._by_id: dict[int, S] = {}
        self.by_name: _Index[S] = _Index()
        self.by_rpc: _Index[S] = _Index()
        self.by_topic: _Index[S] = _Index()
        self.by_hook: _Index[S] = _Index()

    def add(self, service_id: int, session: S, *, name: str, rpcs: Iterable[str], topics: Iterable[str], hooks: Iterable[str]) -> None:
        """Register a service connection and what it offers."""
        self._by_id[service_id] = session
        if name:
            self.by_name.add((name,), session)
        self.extend(session, rpcs=rpcs, topics=topics, hooks=hooks)

    def extend(self, session: S, *, rpcs: Iterable[str] = (), topics: Iterable[str] = (), hooks: Iterable[str] = ()) -> None:
        """Add methods, topics or hooks to a registered service."""
        self.by_rpc.add(rpcs, session)
        self.by_topic.add(topics, session)
        self.by_hook.add(hooks, session)

    def remove(self, service_id: int, session: S, *, name: str, rpcs: Iterable[str], topics: Iterable[str], hooks: Iterable[str]) -> None:
        """Forget a service connection everywhere."""
        if self._by_id.get(service_id) is session:
            del self._by_id[service_id]
        self.by_name.discard((name,), session)
        self.by_rpc.discard(rpcs, session)
        self.by_topic.discard(topics, session)
        self.by_hook.discard(hooks, session)

    def get(self, service_id: int) -> S | None:
        """The service session with that id, if online."""
        return self._by_id.get(service_id)

    def __len__(self) -> int:
        return len(self._by_id)

    def __iter__(self) -> Iterator[S]:
        return iter(list(self._by_id.values()))
