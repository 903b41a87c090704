"""Typed components of a parsed state machine: one class per state type and per shared field.

Built by :mod:`sconeflow.stepfunctions.parser` from a validated definition; the engine reads only
these (never the raw JSON), so each rule of the language lives in one place.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

JSONPATH = "JSONPath"
JSONATA = "JSONata"


@dataclass(frozen=True)
class Retrier:
    error_equals: tuple[str, ...]
    interval_seconds: Any = 1  # int, or a JSONata expression string
    max_attempts: Any = 3
    backoff_rate: Any = 2.0
    max_delay_seconds: Any = None
    jitter_strategy: str = "NONE"


@dataclass(frozen=True)
class Catcher:
    error_equals: tuple[str, ...]
    next: str
    result_path: str | None = "$"  # JSONPath; None discards the error output
    output: Any = None  # JSONata Output (None = absent)
    has_output: bool = False
    assign: dict | None = None


@dataclass
class State:
    name: str
    type: str
    query_language: str = JSONPATH
    next: str | None = None
    end: bool = False
    comment: str | None = None
    # JSONPath I/O (absent -> "$"; explicit null -> None)
    input_path: str | None = "$"
    output_path: str | None = "$"
    result_path: str | None = "$"
    parameters: Any = None
    has_parameters: bool = False
    result_selector: dict | None = None
    # JSONata I/O
    arguments: Any = None
    has_arguments: bool = False
    output: Any = None
    has_output: bool = False
    assign: dict | None = None
    retry: tuple[Retrier, ...] = ()
    catch: tuple[Catcher, ...] = ()
    raw: dict = field(default_factory=dict, repr=False)

    @property
    def is_jsonata(self) -> bool:
        return self.query_language == JSONATA


@dataclass
class PassState(State):
    result: Any = None
    has_result: bool = False


@dataclass
class TaskState(State):
    resource: str = ""
    timeout_seconds: Any = None
    timeout_seconds_path: str | None = None
    heartbeat_seconds: Any = None
    heartbeat_seconds_path: str | None = None
    credentials: Any = None


@dataclass
class ChoiceState(State):
    choices: tuple[Any, ...] = ()  # tuple[choice.ChoiceRule, ...]
    default: str | None = None


@dataclass
class WaitState(State):
    seconds: Any = None
    timestamp: Any = None
    seconds_path: str | None = None
    timestamp_path: str | None = None


@dataclass
class SucceedState(State):
    pass


@dataclass
class FailState(State):
    error: Any = None
    cause: Any = None
    error_path: str | None = None
    cause_path: str | None = None


@dataclass
class ParallelState(State):
    branches: tuple[StateMachine, ...] = ()


@dataclass
class MapState(State):
    processor: StateMachine | None = None
    items_path: str = "$"
    items: Any = None
    has_items: bool = False
    item_selector: Any = None
    has_item_selector: bool = False
    max_concurrency: Any = 0
    max_concurrency_path: str | None = None
    tolerated_failure_percentage: Any = None
    tolerated_failure_percentage_path: str | None = None
    tolerated_failure_count: Any = None
    tolerated_failure_count_path: str | None = None
    distributed: bool = False
    label: str | None = None


@dataclass
class StateMachine:
    start_at: str
    states: dict[str, State]
    query_language: str = JSONPATH
    timeout_seconds: int | None = None
    comment: str | None = None
    raw: dict = field(default_factory=dict, repr=False)

    def all_states(self) -> list[State]:
        """Every state, nested branches and Map processors included (depth first)."""
        out: list[State] = []
        for state in self.states.values():
            out.append(state)
            if isinstance(state, ParallelState):
                for branch in state.branches:
                    out.extend(branch.all_states())
            elif isinstance(state, MapState) and state.processor is not None:
                out.extend(state.processor.all_states())
        return out
