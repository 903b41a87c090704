"""A Docker-free AWS Lambda runtime: function registry, warm worker processes, AWS Invoke semantics.

Public API (imported lazily, so ``python -m sconeflow.lambda_runtime.worker`` stays light)::

    runtime = LambdaRuntime(settings)
    result = runtime.invoke("filter_inference", b'{"inferences": [0.99, 0.01]}')
    result.status_code, result.function_error, result.payload
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sconeflow.lambda_runtime.errors import (
        FunctionNotFound,
        InvalidParameterValue,
        InvalidRequestContent,
        LambdaError,
        RequestTooLarge,
        TooManyRequests,
        WorkerStartFailed,
    )
    from sconeflow.lambda_runtime.registry import FunctionConfig, FunctionRegistry
    from sconeflow.lambda_runtime.runtime import InvokeResult, LambdaRuntime

__all__ = [
    "FunctionConfig",
    "FunctionNotFound",
    "FunctionRegistry",
    "InvalidParameterValue",
    "InvalidRequestContent",
    "InvokeResult",
    "LambdaError",
    "LambdaRuntime",
    "RequestTooLarge",
    "TooManyRequests",
    "WorkerStartFailed",
]

_LOCATIONS = {
    "FunctionNotFound": "errors",
    "InvalidParameterValue": "errors",
    "InvalidRequestContent": "errors",
    "LambdaError": "errors",
    "RequestTooLarge": "errors",
    "TooManyRequests": "errors",
    "WorkerStartFailed": "errors",
    "FunctionConfig": "registry",
    "FunctionRegistry": "registry",
    "InvokeResult": "runtime",
    "LambdaRuntime": "runtime",
}


def __getattr__(name: str) -> Any:
    module = _LOCATIONS.get(name)
    if module is None:
        raise AttributeError(f"module 'sconeflow.lambda_runtime' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"sconeflow.lambda_runtime.{module}"), name)
