"""Shared internals of the interpreter: clocks, frames and scopes, internal signals, JSON helpers."""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sconeflow.stepfunctions import choice as choice_mod
from sconeflow.stepfunctions.definition import (
    State,
)
from sconeflow.stepfunctions.errors import FatalStatesError, StatesError

MAX_PAYLOAD_BYTES = 262144
MAX_INLINE_CONCURRENCY = 40  # AWS runs at most about 40 inline Map iterations at once


class Clock(Protocol):
    def now(self) -> datetime: ...

    def sleep(self, seconds: float, cancel: threading.Event | None = None) -> bool:
        """Wait; return False if ``cancel`` was set meanwhile."""
        ...


class RealClock:
    """Wall-clock time; ``sleep`` wakes early when the cancel event is set."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def sleep(self, seconds: float, cancel: threading.Event | None = None) -> bool:
        if seconds <= 0:
            return not (cancel and cancel.is_set())
        if cancel is None:
            time.sleep(seconds)
            return True
        return not cancel.wait(seconds)


class VirtualClock:
    """Simulated time: ``sleep`` advances the clock instantly (for tests and conformance)."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime.now(UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def sleep(self, seconds: float, cancel: threading.Event | None = None) -> bool:
        with self._lock:
            if seconds > 0:
                self._now += timedelta(seconds=seconds)
        return not (cancel and cancel.is_set())


def compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def iso_millis(moment: datetime) -> str:
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class Aborted(Exception):
    pass


class TimedOut(Exception):
    pass


Fatal = FatalStatesError  # an error that no Retry/Catch may handle


class FailStateError(StatesError):
    """Raised by a Fail state."""


class TaskTimeout(Exception):
    pass


class Stopped(Exception):
    """A sibling branch/iteration failed: unwind this one quietly."""


MISSING = choice_mod.MISSING


VAR_RE = re.compile(r"^\$([A-Za-z_][A-Za-z0-9_]*)(.*)$", re.DOTALL)


class Scope:
    """Workflow variables: each Map iteration / Parallel branch reads outer scopes, writes its own."""

    __slots__ = ("parent", "vars")

    def __init__(self, parent: Scope | None = None) -> None:
        self.parent = parent
        self.vars: dict[str, Any] = {}

    def get(self, name: str) -> Any:
        scope: Scope | None = self
        while scope is not None:
            if name in scope.vars:
                return scope.vars[name]
            scope = scope.parent
        return MISSING

    def all(self) -> dict[str, Any]:
        chain = []
        scope: Scope | None = self
        while scope is not None:
            chain.append(scope.vars)
            scope = scope.parent
        out: dict[str, Any] = {}
        for layer in reversed(chain):
            out.update(layer)
        return out


@dataclass
class Frame:
    """Where a program runs: its variables, the Map item, and the stop signals of enclosing branches."""

    scope: Scope
    map_item: dict | None = None
    stops: tuple[threading.Event, ...] = ()

    def child(self, map_item: dict | None, stop: threading.Event | None = None) -> Frame:
        return Frame(Scope(self.scope), map_item, self.stops + ((stop,) if stop is not None else ()))

    def stopped(self) -> bool:
        return any(stop.is_set() for stop in self.stops)


@dataclass
class StateCtx:
    """Per-visit data of one state: its context object, entered event id and retry count."""

    state: State
    frame: Frame
    entered_id: int
    entered_time: datetime
    retry_count: int = 0
    extra: dict = field(default_factory=dict)


def error_details(err: StatesError) -> dict:
    details = {}
    if err.error is not None:
        details["error"] = err.error
    if err.cause is not None:
        details["cause"] = err.cause
    return details


def to_text(value: Any) -> str:
    return value if isinstance(value, str) else compact(value)


def plain(value: Any) -> str:
    return value if isinstance(value, str) else compact(value)


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"
