"""What the SDK accepts as data: bytes-like objects as they are, ``str`` as UTF-8.

One rule for every entry point (``Edge(meta=...)``, ``call``/``publish`` data, a
handler's answer, ``Stream.sendall``, credentials), so a ``str`` works everywhere or
nowhere, and anything else is refused with a ``TypeError`` naming the argument
(``bytes(42)`` would silently send 42 zero bytes).
"""

from __future__ import annotations

from typing import Any, Union

#: what the SDK's data arguments take
Data = Union[bytes, bytearray, memoryview, str]


def as_bytes(value: Any, what: str) -> bytes:
    """``value`` as bytes (a ``str`` encoded as UTF-8); ``TypeError`` naming ``what``
    for anything else."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"{what} must be bytes or str, not {type(value).__name__}")
