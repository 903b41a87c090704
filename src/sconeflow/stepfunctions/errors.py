"""Named errors of the ASL engine, and the ``States.*`` error names of the language."""

from __future__ import annotations

from typing import Any

from sconeflow.errors import SconeflowError

# Predefined error names (ASL spec + AWS docs).
ALL = "States.ALL"
TASK_FAILED = "States.TaskFailed"
TIMEOUT = "States.Timeout"
HEARTBEAT_TIMEOUT = "States.HeartbeatTimeout"
DATA_LIMIT_EXCEEDED = "States.DataLimitExceeded"
RUNTIME = "States.Runtime"
PERMISSIONS = "States.Permissions"
RESULT_PATH_MATCH_FAILURE = "States.ResultPathMatchFailure"
PARAMETER_PATH_FAILURE = "States.ParameterPathFailure"
BRANCH_FAILED = "States.BranchFailed"
NO_CHOICE_MATCHED = "States.NoChoiceMatched"
INTRINSIC_FAILURE = "States.IntrinsicFailure"
EXCEED_TOLERATED_FAILURE_THRESHOLD = "States.ExceedToleratedFailureThreshold"
QUERY_EVALUATION_ERROR = "States.QueryEvaluationError"
ITEM_READER_FAILED = "States.ItemReaderFailed"
RESULT_WRITER_FAILED = "States.ResultWriterFailed"

PREDEFINED_ERRORS = frozenset(
    {
        ALL,
        TASK_FAILED,
        TIMEOUT,
        HEARTBEAT_TIMEOUT,
        DATA_LIMIT_EXCEEDED,
        RUNTIME,
        PERMISSIONS,
        RESULT_PATH_MATCH_FAILURE,
        PARAMETER_PATH_FAILURE,
        BRANCH_FAILED,
        NO_CHOICE_MATCHED,
        INTRINSIC_FAILURE,
        EXCEED_TOLERATED_FAILURE_THRESHOLD,
        QUERY_EVALUATION_ERROR,
        ITEM_READER_FAILED,
        RESULT_WRITER_FAILED,
        "States.Http.Socket",
    }
)


class InvalidDefinition(SconeflowError):
    """The state machine definition failed validation; ``.diagnostics`` lists why."""

    def __init__(self, message: str, diagnostics: list[Any] | None = None) -> None:
        super().__init__(message)
        self.diagnostics = list(diagnostics or [])


class LambdaFunctionNotFound(SconeflowError):
    """An Integrations implementation raises this for a Lambda function it does not know."""

    def __init__(self, function_name: str) -> None:
        super().__init__(f"Function not found: {function_name}")
        self.function_name = function_name


class ExecutionAborted(SconeflowError):
    """The execution was stopped (its cancel event was set)."""


class StatesError(Exception):
    """A runtime error inside an execution: ``error`` / ``cause`` as Step Functions reports them.

    Not a user-facing error (it never leaves the engine): the engine turns it into a caught error,
    a retry, or a FAILED execution.
    """

    def __init__(self, error: str | None, cause: str | None = None) -> None:
        super().__init__(f"{error}: {cause}")
        self.error = error
        self.cause = cause


class FatalStatesError(StatesError):
    """A runtime error no Retry or Catch may handle (States.Runtime, an oversized state input/output)."""


MAX_HISTORY_EVENTS = 25000


class HistoryLimitExceeded(FatalStatesError):
    """The execution reached AWS's limit of 25,000 history events (e.g. an endless loop)."""

    def __init__(self) -> None:
        super().__init__(
            RUNTIME,
            f"The execution reached the maximum number of history events ({MAX_HISTORY_EVENTS}).",
        )
