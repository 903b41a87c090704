"""AWS Step Functions locally: an Amazon States Language engine (parse, validate, run).

The engine half (this package's ``definition``/``parser``/``validate``/``engine`` modules) is pure:
it knows nothing of persistence. The service half (``service``, ``executions``, ``responses``)
stores state machines and executions and runs them through :func:`run_execution`.
"""

from __future__ import annotations

from sconeflow.stepfunctions.errors import InvalidDefinition, LambdaFunctionNotFound

__all__ = ["InvalidDefinition", "LambdaFunctionNotFound"]
