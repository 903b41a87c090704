"""Named errors of the workflow commands."""

from __future__ import annotations

from sconeflow.errors import SconeflowError


class WorkflowError(SconeflowError):
    """Base of the workflow commands' errors."""


class DefinitionMissing(WorkflowError):
    """The workflow's state machine definition (step-function.json) cannot be found."""


class InvalidDemoOption(WorkflowError):
    """A ``sconeflow demo`` option is out of range."""


class ExecutionsTimedOut(WorkflowError):
    """Step Functions executions of the demo did not finish in time."""
