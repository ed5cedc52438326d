"""``frontier.sdk`` exports every exception class of ``frontier.sdk.errors``."""

from __future__ import annotations

import frontier.sdk
from frontier.sdk import errors


def test_every_sdk_error_is_importable_from_the_package() -> None:
    """A user catches what the SDK raises by name from ``frontier.sdk`` (``NotExposed``
    and ``BackendUnreachable`` were once only in ``frontier.sdk.errors``)."""
    classes = [name for name in errors.__all__ if isinstance(getattr(errors, name), type)]
    assert "NotExposed" in classes and "BackendUnreachable" in classes
    missing = [name for name in classes if name not in frontier.sdk.__all__]
    assert missing == []
    for name in classes:
        assert getattr(frontier.sdk, name) is getattr(errors, name)
