"""PLACEHOLDER owned by the MQ-sinks work: parses the Go ``mqm`` YAML section.

Contract: ``parse_mqm(raw: dict | None, warn: Callable[[str], None]) -> MQMConfig``;
raises ``frontier.wire.errors.ConfigError`` on a wrong value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable


@dataclass(frozen=True, slots=True)
class MQMConfig:
    """The ``mqm`` section (placeholder: keeps the raw mapping)."""

    raw: dict[str, Any] = field(default_factory=dict)


def parse_mqm(raw: dict[str, Any] | None, warn: Callable[[str], None]) -> MQMConfig:
    """Validate and freeze the ``mqm`` section (placeholder)."""
    return MQMConfig(dict(raw or {}))
