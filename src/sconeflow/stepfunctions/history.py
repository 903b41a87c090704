"""Execution history events in AWS's HistoryEvent shape (ids, previousEventId, ``<x>EventDetails``)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from functools import lru_cache
from typing import Any

from sconeflow.stepfunctions.errors import MAX_HISTORY_EVENTS, HistoryLimitExceeded

_TERMINAL = frozenset({"ExecutionSucceeded", "ExecutionFailed", "ExecutionAborted", "ExecutionTimedOut"})

# Event type -> details key, for the types whose key is not simply camelCase(type) + "EventDetails".
_DETAILS_KEY_OVERRIDES = {
    "PassStateEntered": "stateEnteredEventDetails",
    "TaskStateEntered": "stateEnteredEventDetails",
    "ChoiceStateEntered": "stateEnteredEventDetails",
    "WaitStateEntered": "stateEnteredEventDetails",
    "SucceedStateEntered": "stateEnteredEventDetails",
    "FailStateEntered": "stateEnteredEventDetails",
    "MapStateEntered": "stateEnteredEventDetails",
    "ParallelStateEntered": "stateEnteredEventDetails",
    "PassStateExited": "stateExitedEventDetails",
    "TaskStateExited": "stateExitedEventDetails",
    "ChoiceStateExited": "stateExitedEventDetails",
    "WaitStateExited": "stateExitedEventDetails",
    "SucceedStateExited": "stateExitedEventDetails",
    "MapStateExited": "stateExitedEventDetails",
    "ParallelStateExited": "stateExitedEventDetails",
    "MapIterationStarted": "mapIterationStartedEventDetails",
    "MapIterationSucceeded": "mapIterationSucceededEventDetails",
    "MapIterationFailed": "mapIterationFailedEventDetails",
    "MapIterationAborted": "mapIterationAbortedEventDetails",
}


@lru_cache(maxsize=256)
def details_key(event_type: str) -> str:
    key = _DETAILS_KEY_OVERRIDES.get(event_type)
    if key:
        return key
    return event_type[0].lower() + event_type[1:] + "EventDetails"


class History:
    """Appends events with increasing ids; thread-safe (Map/Parallel may add concurrently)."""

    def __init__(
        self, now: Callable[[], datetime], listener: Any = None, max_events: int = MAX_HISTORY_EVENTS
    ) -> None:
        self._now = now
        self.max_events = max_events
        self._listener = listener
        self._lock = threading.Lock()
        self.events: list[dict] = []

    @property
    def last_id(self) -> int:
        return len(self.events)

    def add(self, event_type: str, details: dict | None = None, previous: int | None = None) -> int:
        with self._lock:
            if len(self.events) >= self.max_events - 1 and event_type not in _TERMINAL:
                raise HistoryLimitExceeded()  # one slot stays free for the terminal event
            event_id = len(self.events) + 1
            event: dict[str, Any] = {
                "timestamp": self._now(),
                "type": event_type,
                "id": event_id,
                "previousEventId": event_id - 1 if previous is None else previous,
            }
            if details is not None:
                event[details_key(event_type)] = details
            self.events.append(event)
            if self._listener is not None:  # under the lock, so a listener sees ids in order
                self._listener.on_event(event)
        return event_id
