"""The engine's Integrations over local services: the sconeflow Lambda runtime and the SNS topic log.

Lambda function names in definitions are ARNs
(``arn:aws:lambda:<region>:<account>:function:NAME[:qualifier]``), partial ARNs or bare names;
they map to local functions by NAME (region, account and qualifier are
ignored), after the state machine's ``--function-map`` renames (``old=new``).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from sconeflow.config import Settings
from sconeflow.stepfunctions.engine import LambdaResponse
from sconeflow.stepfunctions.errors import LambdaFunctionNotFound
from sconeflow.stepfunctions.topic_log import TopicLog

log = logging.getLogger(__name__)

_RUNTIMES: dict[str, Any] = {}
_RUNTIMES_LOCK = threading.Lock()


def function_name_of(ref: str) -> str:
    """``arn:aws:lambda:r:a:function:NAME:qual`` / ``a:function:NAME`` / ``NAME:qual`` / ``NAME`` -> NAME."""
    text = ref.strip()
    if ":function:" in text:
        text = text.split(":function:", 1)[1]
    return text.split(":", 1)[0]


def _runtime(settings: Settings) -> Any:
    key = str(settings.home)
    with _RUNTIMES_LOCK:
        runtime = _RUNTIMES.get(key)
        if runtime is None:
            from sconeflow.lambda_runtime import LambdaRuntime

            runtime = LambdaRuntime(settings)
            _RUNTIMES[key] = runtime
        return runtime


class LocalIntegrations:
    """Integrations for :func:`sconeflow.stepfunctions.engine.run_execution` on this machine."""

    def __init__(self, settings: Settings, *, function_map: dict[str, str] | None = None) -> None:
        self.settings = settings
        self.function_map = dict(function_map or {})
        self._topics: TopicLog | None = None

    def resolve(self, function_name: str) -> str:
        name = function_name_of(function_name)
        return self.function_map.get(name, self.function_map.get(function_name, name))

    def invoke_lambda(
        self,
        function_name: str,
        payload: bytes,
        *,
        qualifier: str | None = None,
        invocation_type: str = "RequestResponse",
    ) -> LambdaResponse:
        from sconeflow.lambda_runtime import FunctionNotFound

        name = self.resolve(function_name)
        try:
            # the qualifier (a version or alias) is kept; a foreign region/account in the ARN is not:
            # a state machine exported from AWS names the functions by its own account's ARNs
            result = _runtime(self.settings).invoke(
                name, payload, invocation_type=invocation_type, qualifier=qualifier
            )
        except FunctionNotFound as exc:
            raise LambdaFunctionNotFound(function_name) from exc
        return LambdaResponse(
            payload=result.payload,
            function_error=result.function_error,
            status_code=result.status_code,
            executed_version=result.executed_version or "$LATEST",
            request_id=result.request_id,
        )

    def publish_sns(
        self,
        topic_arn: str,
        message: str,
        *,
        subject: str | None = None,
        message_attributes: dict | None = None,
    ) -> str:
        if self._topics is None:
            self._topics = TopicLog(self.settings)
        return self._topics.publish(
            topic_arn, message, subject=subject, message_attributes=message_attributes
        )
