"""Execution history events in AWS's HistoryEvent shape (ids, previousEventId, ``<x>EventDetails``)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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
    """Appends events with increasing ids; thread-safe (Map/Parallel may add concurrently).

    ``previousEventId`` is the previous event of the same chain: the run's previous event, except in a
    Map iteration or Parallel branch running on its own thread (:meth:`branch`), where it is the
    previous event of that iteration or branch, so concurrent iterations do not interleave their chains.
    """

    def __init__(
        self, now: Callable[[], datetime], listener: Any = None, max_events: int = MAX_HISTORY_EVENTS
    ) -> None:
        self._now = now
        self.max_events = max_events
        self._listener = listener
        self._lock = threading.Lock()
        self.events: list[dict] = []
        self._chain = threading.local()

    def tip(self) -> int:
        """The id a new event of this thread's chain would point back to."""
        tip = getattr(self._chain, "tip", None)
        return len(self.events) if tip is None else tip

    @contextmanager
    def branch(self, tip: int) -> Iterator[None]:
        """Run a concurrent iteration/branch on this thread as its own chain, starting after ``tip``."""
        saved = getattr(self._chain, "tip", None)
        self._chain.tip = tip
        try:
            yield
        finally:
            self._chain.tip = saved

    @property
    def last_id(self) -> int:
        return len(self.events)

    def add(self, event_type: str, details: dict | None = None, previous: int | None = None) -> int:
        with self._lock:
            if len(self.events) >= self.max_events - 1 and event_type not in _TERMINAL:
                raise HistoryLimitExceeded()  # one slot stays free for the terminal event
            event_id = len(self.events) + 1
            if previous is None:
                tip = getattr(self._chain, "tip", None)
                previous = event_id - 1 if tip is None else tip
            if getattr(self._chain, "tip", None) is not None:
                self._chain.tip = event_id
            event: dict[str, Any] = {
                "timestamp": self._now(),
                "type": event_type,
                "id": event_id,
                "previousEventId": previous,
            }
            if details is not None:
                event[details_key(event_type)] = details
            self.events.append(event)
            if self._listener is not None:  # under the lock, so a listener sees ids in order
                self._listener.on_event(event)
        return event_id
