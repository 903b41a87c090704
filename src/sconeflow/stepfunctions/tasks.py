"""Task states: the Lambda integrations (optimized, legacy ARN, aws-sdk), SNS publish, task timeouts."""

from __future__ import annotations

import base64
import json
import logging
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from sconeflow.stepfunctions import errors as E
from sconeflow.stepfunctions.definition import (
    TaskState,
)
from sconeflow.stepfunctions.errors import LambdaFunctionNotFound, StatesError
from sconeflow.stepfunctions.intrinsics import finite_float
from sconeflow.stepfunctions.runtime import (
    MAX_PAYLOAD_BYTES,
    Aborted,
    RealClock,
    StateCtx,
    TaskTimeout,
    TimedOut,
    compact,
)

log = logging.getLogger(__name__)


class TaskStates:
    """Task states and their integrations; mixed into :class:`sconeflow.stepfunctions.engine._Run`."""

    def state_task(self, sctx: StateCtx, data: Any) -> tuple[Any, str | None, dict | None]:
        state: TaskState = sctx.state  # type: ignore[assignment]
        if state.is_jsonata:
            states = self.states_binding(sctx, data)
            if state.has_arguments:
                args = self.jsonata(sctx, state.arguments, states, "Arguments")
            else:
                args = data
            timeout = self.jsonata_int(sctx, state.timeout_seconds, states, "TimeoutSeconds")
            heartbeat = self.jsonata_int(sctx, state.heartbeat_seconds, states, "HeartbeatSeconds")
            result = self.with_retry(sctx, lambda: self.invoke(sctx, args, timeout, heartbeat))
            states = self.states_binding(sctx, data, result=result)
            assigned = self.assign(sctx, state.assign, data, states)
            output = self.jsonata(sctx, state.output, states, "Output") if state.has_output else result
            return output, state.next, assigned
        effective = self.apply_path(sctx, state.input_path, data)
        timeout = state.timeout_seconds
        if state.timeout_seconds_path:
            timeout = self.path_int(sctx, state.timeout_seconds_path, effective, "TimeoutSecondsPath")
        heartbeat = state.heartbeat_seconds
        if state.heartbeat_seconds_path:
            heartbeat = self.path_int(sctx, state.heartbeat_seconds_path, effective, "HeartbeatSecondsPath")

        def attempt() -> Any:
            params = self.template(sctx, state.parameters, effective) if state.has_parameters else effective
            return self.invoke(sctx, params, timeout, heartbeat)

        result = self.with_retry(sctx, attempt)
        if state.result_selector is not None:
            result = self.template(sctx, state.result_selector, result)
        assigned = self.assign(sctx, state.assign, result, None)
        output = self.result_path(sctx, state.result_path, data, result)
        output = self.apply_path(sctx, state.output_path, output)
        return output, state.next, assigned

    def invoke(self, sctx: StateCtx, params: Any, timeout: Any, heartbeat: Any) -> Any:
        resource = sctx.state.resource  # type: ignore[attr-defined]
        if resource.startswith("arn:aws:lambda:") or (":lambda:" in resource and ":function:" in resource):
            return self.invoke_legacy_lambda(sctx, resource, params, timeout)
        base = resource.split(":::", 1)[1] if ":::" in resource else resource
        if base == "lambda:invoke":
            return self.invoke_lambda_task(sctx, params, timeout, heartbeat, sdk=False)
        if base == "aws-sdk:lambda:invoke":
            return self.invoke_lambda_task(sctx, params, timeout, heartbeat, sdk=True)
        if base == "sns:publish":
            return self.publish_sns(sctx, params, timeout, heartbeat)
        raise StatesError(E.RUNTIME, f"The resource '{resource}' is not supported locally")

    def call_with_timeout(self, fn: Callable[[], Any], timeout: Any) -> Any:
        """Run ``fn``; raise TaskTimeout when it takes longer than ``timeout`` seconds."""
        if not timeout:
            return fn()
        if isinstance(self.clock, RealClock):
            box: dict[str, Any] = {}

            def target() -> None:
                try:
                    box["value"] = fn()
                except BaseException as exc:  # re-raised in the caller's thread
                    box["error"] = exc

            worker = threading.Thread(target=target, daemon=True, name="sfn-task")
            worker.start()
            worker.join(float(timeout))
            if worker.is_alive():
                raise TaskTimeout()
            if "error" in box:
                raise box["error"]
            return box["value"]
        started = self.clock.now()
        value = fn()
        if (self.clock.now() - started).total_seconds() >= float(timeout):
            raise TaskTimeout()
        return value

    def task_scheduled(
        self, resource_type: str, resource: str, params: Any, timeout: Any, heartbeat: Any
    ) -> None:
        details: dict[str, Any] = {
            "resourceType": resource_type,
            "resource": resource,
            "region": self.region,
            "parameters": compact(params),
        }
        if timeout:
            details["timeoutInSeconds"] = timeout
        if heartbeat:
            details["heartbeatInSeconds"] = heartbeat
        self.history.add("TaskScheduled", details)
        self.history.add("TaskStarted", {"resourceType": resource_type, "resource": resource})

    def task_failed(self, resource_type: str, resource: str, error: str | None, cause: str | None) -> None:
        details: dict[str, Any] = {"resourceType": resource_type, "resource": resource}
        if error is not None:
            details["error"] = error
        if cause is not None:
            details["cause"] = cause
        self.history.add("TaskFailed", details)

    def task_result(self, sctx: StateCtx, resource_type: str, resource: str, result: Any) -> Any:
        text = compact(result)
        if len(text.encode()) > MAX_PAYLOAD_BYTES:
            cause = self._limit_cause(resource_type)
            self.task_failed(resource_type, resource, E.DATA_LIMIT_EXCEEDED, cause)
            raise StatesError(E.DATA_LIMIT_EXCEEDED, cause)
        self.history.add(
            "TaskSucceeded",
            {
                "resourceType": resource_type,
                "resource": resource,
                "output": text,
                "outputDetails": {"truncated": False},
            },
        )
        return result

    def invoke_lambda_task(
        self, sctx: StateCtx, params: Any, timeout: Any, heartbeat: Any, *, sdk: bool
    ) -> Any:
        resource_type = "aws-sdk:lambda" if sdk else "lambda"
        if not isinstance(params, dict) or "FunctionName" not in params:
            raise self.runtime_error(sctx, "The field 'FunctionName' is required for lambda:invoke")
        function = str(params["FunctionName"])
        name, qualifier, region, account = _parse_function(function, self.region, self.account)
        qualifier = params.get("Qualifier") or qualifier
        payload = params.get("Payload")
        if isinstance(payload, str) and (sdk or _is_json_text(payload)):
            payload_bytes = payload.encode()
        else:
            payload_bytes = compact({} if payload is None else payload).encode()
        self.task_scheduled(resource_type, "invoke", params, timeout, heartbeat)
        invocation_type = params.get("InvocationType", "RequestResponse")
        try:
            response = self.call_with_timeout(
                lambda: self.integrations.invoke_lambda(
                    name, payload_bytes, qualifier=qualifier, invocation_type=invocation_type
                ),
                timeout,
            )
        except TaskTimeout:
            self.history.add(
                "TaskTimedOut", {"resourceType": resource_type, "resource": "invoke", "error": E.TIMEOUT}
            )
            raise StatesError(E.TIMEOUT, None) from None
        except LambdaFunctionNotFound:
            request_id = str(uuid.uuid4())
            arn = f"arn:aws:lambda:{region}:{account}:function:{name}:{qualifier or '$LATEST'}"
            error = "Lambda.ResourceNotFoundException"
            cause = (
                f"Function not found: {arn} (Service: AWSLambda; Status Code: 404; Error Code: "
                f"ResourceNotFoundException; Request ID: {request_id}; Proxy: null)"
            )
            self.task_failed(resource_type, "invoke", error, cause)
            raise StatesError(error, cause) from None
        except (Aborted, TimedOut):
            raise
        except Exception as exc:  # the integration itself broke: AWS's service-exception shape
            log.warning("lambda invoke of %s failed: %s", name, exc)
            error, cause = "Lambda.ServiceException", f"{exc} (Service: AWSLambda; Status Code: 500)"
            self.task_failed(resource_type, "invoke", error, cause)
            raise StatesError(error, cause) from None
        text = response.payload.decode("utf-8", errors="replace")
        if sdk:
            result: dict[str, Any] = {"ExecutedVersion": response.executed_version}
            if response.function_error:
                result["FunctionError"] = response.function_error
            result["Payload"] = text
            result["StatusCode"] = response.status_code
            return self.task_result(sctx, resource_type, "invoke", result)
        if response.function_error:
            error, cause = _function_error(text, compact_cause=True)
            self.task_failed(resource_type, "invoke", error, cause)
            raise StatesError(error, cause)
        request_id = response.request_id or str(uuid.uuid4())
        log_result = None
        if params.get("LogType") == "Tail":
            log_result = (
                response.log_result
                or base64.b64encode(
                    f"START RequestId: {request_id} Version: {response.executed_version}\n"
                    f"END RequestId: {request_id}\n".encode()
                ).decode()
            )
        payload_value = self._lambda_result(sctx, text)
        result = {"ExecutedVersion": response.executed_version}
        if log_result is not None:
            result["LogResult"] = log_result
        result.update(
            {
                "Payload": payload_value,
                "SdkHttpMetadata": _http_metadata(
                    request_id, response.executed_version, len(response.payload), self.clock.now(), log_result
                ),
                "SdkResponseMetadata": {"RequestId": request_id},
                "StatusCode": response.status_code,
            }
        )
        return self.task_result(sctx, resource_type, "invoke", result)

    def _lambda_result(self, sctx: StateCtx, text: str) -> Any:
        """The function's result; one holding a number a float cannot hold fails the execution
        with States.Runtime, as such execution input does (never written out as ``Infinity``)."""
        try:
            return _parse_payload(text)
        except UnrepresentableNumber as exc:
            raise self.runtime_error(
                sctx, f"The Lambda function returned a result that is not valid JSON here: {exc}"
            ) from None

    def invoke_legacy_lambda(self, sctx: StateCtx, resource: str, params: Any, timeout: Any) -> Any:
        name, qualifier, region, account = _parse_function(resource, self.region, self.account)
        input_text = compact(params)
        details: dict[str, Any] = {
            "resource": resource,
            "input": input_text,
            "inputDetails": {"truncated": False},
        }
        if timeout:
            details["timeoutInSeconds"] = timeout
        self.history.add("LambdaFunctionScheduled", details)
        self.history.add("LambdaFunctionStarted", None)
        try:
            response = self.call_with_timeout(
                lambda: self.integrations.invoke_lambda(name, input_text.encode(), qualifier=qualifier),
                timeout,
            )
        except TaskTimeout:
            self.history.add("LambdaFunctionTimedOut", {"error": E.TIMEOUT})
            raise StatesError(E.TIMEOUT, None) from None
        except LambdaFunctionNotFound:
            arn = f"arn:aws:lambda:{region}:{account}:function:{name}:{qualifier or '$LATEST'}"
            error = "Lambda.ResourceNotFoundException"
            cause = (
                f"Function not found: {arn} (Service: AWSLambda; Status Code: 404; Error Code: "
                f"ResourceNotFoundException; Request ID: {uuid.uuid4()}; Proxy: null)"
            )
            self.history.add("LambdaFunctionFailed", {"error": error, "cause": cause})
            raise StatesError(error, cause) from None
        except (Aborted, TimedOut):
            raise
        except Exception as exc:
            log.warning("lambda invoke of %s failed: %s", name, exc)
            error, cause = "Lambda.ServiceException", str(exc)
            self.history.add("LambdaFunctionFailed", {"error": error, "cause": cause})
            raise StatesError(error, cause) from None
        text = response.payload.decode("utf-8", errors="replace")
        if response.function_error:
            error, cause = _function_error(text, compact_cause=False)
            details = {}
            if error is not None:
                details["error"] = error
            if cause is not None:
                details["cause"] = cause
            self.history.add("LambdaFunctionFailed", details)
            raise StatesError(error, cause)
        result = self._lambda_result(sctx, text)
        out_text = compact(result)
        if len(out_text.encode()) > MAX_PAYLOAD_BYTES:
            cause = self._limit_cause(resource)
            self.history.add("LambdaFunctionFailed", {"error": E.DATA_LIMIT_EXCEEDED, "cause": cause})
            raise StatesError(E.DATA_LIMIT_EXCEEDED, cause)
        self.history.add(
            "LambdaFunctionSucceeded", {"output": out_text, "outputDetails": {"truncated": False}}
        )
        return result

    def publish_sns(self, sctx: StateCtx, params: Any, timeout: Any, heartbeat: Any) -> Any:
        if not isinstance(params, dict) or "TopicArn" not in params or "Message" not in params:
            raise self.runtime_error(sctx, "The fields 'TopicArn' and 'Message' are required for sns:publish")
        message = params["Message"]
        text = message if isinstance(message, str) else compact(message)
        self.task_scheduled("sns", "publish", params, timeout, heartbeat)
        try:
            message_id = self.call_with_timeout(
                lambda: self.integrations.publish_sns(
                    str(params["TopicArn"]),
                    text,
                    subject=params.get("Subject"),
                    message_attributes=params.get("MessageAttributes"),
                ),
                timeout,
            )
        except TaskTimeout:
            self.history.add(
                "TaskTimedOut", {"resourceType": "sns", "resource": "publish", "error": E.TIMEOUT}
            )
            raise StatesError(E.TIMEOUT, None) from None
        except (Aborted, TimedOut):
            raise
        except Exception as exc:
            error, cause = "SNS.NotFoundException", f"{exc} (Service: Sns; Status Code: 404)"
            self.task_failed("sns", "publish", error, cause)
            raise StatesError(error, cause) from None
        request_id = str(uuid.uuid4())
        result = {
            "MessageId": message_id,
            "SdkHttpMetadata": {
                "AllHttpHeaders": {
                    "x-amzn-RequestId": [request_id],
                    "Content-Length": ["294"],
                    "Date": [format_datetime(self.clock.now().astimezone(UTC), usegmt=True)],
                    "Content-Type": ["text/xml"],
                },
                "HttpHeaders": {
                    "Content-Length": "294",
                    "Content-Type": "text/xml",
                    "Date": format_datetime(self.clock.now().astimezone(UTC), usegmt=True),
                    "x-amzn-RequestId": request_id,
                },
                "HttpStatusCode": 200,
            },
            "SdkResponseMetadata": {"RequestId": request_id},
        }
        return self.task_result(sctx, "sns", "publish", result)


def _parse_function(function: str, region: str, account: str) -> tuple[str, str | None, str, str]:
    """(name, qualifier, region, account) from a name, ``name:qualifier``, or a (partial) ARN."""
    parts = function.split(":")
    if function.startswith("arn:") and len(parts) >= 7:
        return parts[6], (parts[7] if len(parts) > 7 else None), parts[3] or region, parts[4] or account
    if len(parts) >= 3 and parts[1] == "function":  # 123456789012:function:name[:qual]
        return parts[2], (parts[3] if len(parts) > 3 else None), region, parts[0]
    if len(parts) == 2:
        return parts[0], parts[1], region, account
    return function, None, region, account


def _is_json_text(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


class UnrepresentableNumber(ValueError):
    """A Lambda result holds a number a 64-bit float cannot hold (``1e999``) or NaN/Infinity."""


def _finite(token: str) -> float:
    try:
        return finite_float(token)
    except ValueError as exc:
        raise UnrepresentableNumber(str(exc)) from None


def _no_constant(token: str) -> Any:
    raise UnrepresentableNumber(f"'{token}' is not a JSON number")


def _parse_payload(text: str) -> Any:
    """A Lambda result as JSON, or the text itself when it is not JSON. A number a float cannot
    hold raises UnrepresentableNumber: read as ``inf`` it would be written back as ``Infinity``,
    which is not JSON (the engine refuses such numbers everywhere they enter)."""
    if not text:
        return None
    try:
        return json.loads(text, parse_float=_finite, parse_constant=_no_constant)
    except UnrepresentableNumber:
        raise
    except ValueError:
        return text


def _function_error(text: str, *, compact_cause: bool) -> tuple[str | None, str | None]:
    exact = True
    try:
        obj = json.loads(text, parse_float=_finite, parse_constant=_no_constant)
    except UnrepresentableNumber:  # the error body as written: compacted it would hold Infinity
        obj, exact = json.loads(text), False
    except ValueError:
        return "Lambda.Unknown", text
    error = obj.get("errorType") if isinstance(obj, dict) else None
    if error is None:
        error = "Lambda.Unknown"
    cause = compact(obj) if compact_cause and exact else text
    return error, cause


def _http_metadata(request_id: str, version: str, length: int, now: datetime, log_result: str | None) -> dict:
    date = format_datetime(now.astimezone(UTC), usegmt=True)
    trace = f"Root=1-{uuid.uuid4().hex[:8]}-{uuid.uuid4().hex[:24]};Sampled=0"
    headers = {"X-Amz-Log-Result": log_result} if log_result is not None else {}
    headers |= {
        "X-Amz-Executed-Version": version,
        "x-amzn-Remapped-Content-Length": "0",
        "Connection": "keep-alive",
        "x-amzn-RequestId": request_id,
        "Content-Length": str(length),
        "Date": date,
        "X-Amzn-Trace-Id": trace,
        "Content-Type": "application/json",
    }
    return {
        "AllHttpHeaders": {k: [v] for k, v in headers.items()},
        "HttpHeaders": dict(sorted(headers.items())),
        "HttpStatusCode": 200,
    }
