"""Typed components of a parsed state machine."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class StateMachine:
    start_at: str
    states: dict[str, Any]
    query_language: str = "JSONPath"
    timeout_seconds: int | None = None
    comment: str | None = None
    raw: dict = field(default_factory=dict)
