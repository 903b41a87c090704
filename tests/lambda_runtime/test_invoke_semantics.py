"""AWS Invoke semantics of the local runtime: results, errors, timeouts, crashes, limits, logs, context."""

from __future__ import annotations

import base64
import json
import threading
from pathlib import Path

import pytest

from sconeflow.config import Settings
from sconeflow.lambda_runtime.errors import (
    FunctionNotFound,
    InvalidParameterValue,
    InvalidRequestContent,
    RequestTooLarge,
)
from sconeflow.lambda_runtime.registry import FunctionRegistry
from sconeflow.lambda_runtime.runtime import LambdaRuntime
from tests.gateway.support import register_code

ECHO = "def handler(event, context):\n    return event\n"

CONTEXT = """
import os
def handler(event, context):
    return {
        "function_name": context.function_name,
        "function_version": context.function_version,
        "aws_request_id": context.aws_request_id,
        "invoked_function_arn": context.invoked_function_arn,
        "memory_limit_in_mb": context.memory_limit_in_mb,
        "remaining": context.get_remaining_time_in_millis(),
        "log_group_name": context.log_group_name,
        "log_stream_name": context.log_stream_name,
        "region": os.environ["AWS_REGION"],
        "endpoint": os.environ.get("AWS_ENDPOINT_URL"),
        "custom": os.environ.get("CUSTOM"),
    }
"""

MISBEHAVE = """
import logging, os, sys, time
log = logging.getLogger()
log.setLevel(logging.INFO)
def handler(event, context):
    action = event.get("action")
    print("about to", action)
    log.info("logged %s", action)
    if action == "raise":
        raise ValueError("bad input: " + str(event.get("x")))
    if action == "sleep":
        time.sleep(event["seconds"])
    if action == "exit":
        sys.stdout.flush()
        os._exit(3)
    if action == "bytes":
        return {"body": b"raw"}
    if action == "top-bytes":
        return b"not json"
    if action == "big":
        return "x" * (6 * 1024 * 1024 + 200)
    if action == "unicode":
        return {"text": "caf\\u00e9"}
    if action == "none":
        return None
    return {"ok": action, "pid": os.getpid()}
"""


@pytest.fixture
def misbehave(settings: Settings, tmp_path: Path) -> str:
    register_code(settings, tmp_path, "misbehave", MISBEHAVE, timeout=1)
    return "misbehave"


def _call(runtime: LambdaRuntime, name: str, event: object, **kwargs: object):  # type: ignore[no-untyped-def]
    return runtime.invoke(name, json.dumps(event).encode(), **kwargs)


def test_result_is_json_with_python_separators(
    runtime: LambdaRuntime, settings: Settings, tmp_path: Path
) -> None:
    register_code(settings, tmp_path, "echo", ECHO)
    result = _call(runtime, "echo", {"a": [1, 2], "b": "c"})
    assert (result.status_code, result.function_error, result.executed_version) == (200, None, "$LATEST")
    assert result.payload == b'{"a": [1, 2], "b": "c"}'
    assert len(result.request_id) == 36
    assert runtime.invoke("echo", b"").payload == b"{}"


def test_context_object_has_lambdas_attributes(
    runtime: LambdaRuntime, settings: Settings, tmp_path: Path
) -> None:
    register_code(
        settings, tmp_path, "ctx", CONTEXT, timeout=7, memory_size=256, environment={"CUSTOM": "yes"}
    )
    result = _call(runtime, "ctx", {})
    ctx = json.loads(result.payload)
    assert ctx["function_name"] == "ctx"
    assert ctx["function_version"] == "$LATEST"
    assert ctx["aws_request_id"] == result.request_id
    assert ctx["invoked_function_arn"] == "arn:aws:lambda:us-east-1:123456789012:function:ctx"
    assert ctx["memory_limit_in_mb"] == "256"  # a str, as in awslambdaric
    assert 5000 < ctx["remaining"] <= 7000
    assert ctx["log_group_name"] == "/aws/lambda/ctx"
    assert ctx["log_stream_name"].endswith(ctx["log_stream_name"][-32:])
    assert "/[$LATEST]" in ctx["log_stream_name"]
    assert ctx["region"] == "us-east-1"
    assert ctx["endpoint"] == runtime._engine.fixed_endpoint
    assert ctx["custom"] == "yes"
    qualified = _call(runtime, "arn:aws:lambda:us-east-1:123456789012:function:ctx:$LATEST", {})
    assert json.loads(qualified.payload)["invoked_function_arn"].endswith("function:ctx:$LATEST")


def test_handler_exception_is_unhandled_with_awslambdaric_payload(
    runtime: LambdaRuntime, misbehave: str
) -> None:
    result = _call(runtime, misbehave, {"action": "raise", "x": 7})
    assert (result.status_code, result.function_error) == (200, "Unhandled")
    error = json.loads(result.payload)
    assert list(error) == ["errorMessage", "errorType", "requestId", "stackTrace"]
    assert error["errorMessage"] == "bad input: 7"
    assert error["errorType"] == "ValueError"
    assert error["requestId"] == result.request_id
    assert error["stackTrace"][0].startswith('  File "')
    assert "misbehave_fn.py" in error["stackTrace"][0] and "worker.py" not in "".join(error["stackTrace"])
    assert result.payload.startswith(b'{"errorMessage": "bad input: 7", "errorType": "ValueError"')
    assert _call(runtime, misbehave, {"action": "fine"}).function_error is None


def test_timeout_kills_the_worker_and_the_next_call_works(runtime: LambdaRuntime, misbehave: str) -> None:
    first = json.loads(_call(runtime, misbehave, {"action": "fine"}).payload)["pid"]
    result = _call(runtime, misbehave, {"action": "sleep", "seconds": 30})
    assert (result.status_code, result.function_error) == (200, "Unhandled")
    expected = (
        '{"errorType":"Sandbox.Timedout","errorMessage":"RequestId: '
        + result.request_id
        + ' Error: Task timed out after 1.00 seconds"}'
    )
    assert result.payload.decode() == expected
    after = _call(runtime, misbehave, {"action": "fine"})
    assert after.function_error is None
    assert json.loads(after.payload)["pid"] != first
    log = runtime.logs.read(misbehave, request_id=result.request_id)[0].text
    assert "Task timed out after 1.00 seconds" in log and "Status: timeout" in log


def test_worker_crash_is_runtime_exit_error_and_the_next_call_works(
    runtime: LambdaRuntime, misbehave: str
) -> None:
    result = _call(runtime, misbehave, {"action": "exit"})
    assert result.function_error == "Unhandled"
    assert json.loads(result.payload) == {
        "errorType": "Runtime.ExitError",
        "errorMessage": f"RequestId: {result.request_id} Error: Runtime exited with error: exit status 3",
    }
    assert _call(runtime, misbehave, {"action": "fine"}).function_error is None


def test_oversized_request_is_refused_and_the_next_call_works(runtime: LambdaRuntime, misbehave: str) -> None:
    payload = json.dumps({"action": "fine", "pad": "x" * (6 * 1024 * 1024)}).encode()
    with pytest.raises(RequestTooLarge, match="smaller than 6291456 bytes"):
        runtime.invoke(misbehave, payload)
    with pytest.raises(RequestTooLarge, match="smaller than 1048576 bytes"):
        runtime.invoke(misbehave, json.dumps({"pad": "x" * (1024 * 1024)}).encode(), "Event")
    assert _call(runtime, misbehave, {"action": "fine"}).function_error is None


def test_oversized_response_is_function_response_size_too_large(
    runtime: LambdaRuntime, misbehave: str
) -> None:
    result = _call(runtime, misbehave, {"action": "big"})
    assert result.function_error == "Unhandled"
    assert result.payload == (
        b'{"errorMessage":"Response payload size exceeded maximum allowed payload size (6291556 bytes).",'
        b'"errorType":"Function.ResponseSizeTooLarge"}'
    )


def test_unserializable_result_is_marshal_error(runtime: LambdaRuntime, misbehave: str) -> None:
    result = _call(runtime, misbehave, {"action": "bytes"})
    error = json.loads(result.payload)
    assert result.function_error == "Unhandled"
    assert error["errorType"] == "Runtime.MarshalError"
    assert (
        error["errorMessage"] == "Unable to marshal response: Object of type bytes is not JSON serializable"
    )
    assert error["requestId"] == result.request_id and error["stackTrace"] == []
    raw = _call(runtime, misbehave, {"action": "top-bytes"})
    assert (raw.function_error, raw.payload) == (None, b"not json")  # top-level bytes pass through raw
    assert _call(runtime, misbehave, {"action": "none"}).payload == b"null"


def test_import_failures_are_runtime_errors(
    runtime: LambdaRuntime, settings: Settings, tmp_path: Path
) -> None:
    register_code(settings, tmp_path, "noimport", "import no_such_module_here\n")
    error = json.loads(_call(runtime, "noimport", {}).payload)
    assert error["errorType"] == "Runtime.ImportModuleError"
    assert error["errorMessage"] == (
        "Unable to import module 'noimport_fn': No module named 'no_such_module_here'"
    )
    assert error["requestId"] == ""

    register_code(settings, tmp_path, "nohandler", ECHO, handler="nohandler_fn.missing")
    error = json.loads(_call(runtime, "nohandler", {}).payload)
    assert error["errorType"] == "Runtime.HandlerNotFound"
    assert error["errorMessage"] == "Handler 'missing' missing on module 'nohandler_fn'"

    register_code(settings, tmp_path, "initfail", "raise RuntimeError('no config')\n")
    result = _call(runtime, "initfail", {})
    error = json.loads(result.payload)
    assert (result.function_error, error["errorType"], error["errorMessage"]) == (
        "Unhandled",
        "RuntimeError",
        "no config",
    )
    assert error["requestId"] == ""
    register_code(settings, tmp_path, "syntax", "def handler(:\n")
    assert json.loads(_call(runtime, "syntax", {}).payload)["errorType"] == "Runtime.UserCodeSyntaxError"


def test_logs_have_start_end_report_and_the_functions_output(runtime: LambdaRuntime, misbehave: str) -> None:
    result = _call(runtime, misbehave, {"action": "raise", "x": 1}, log_type="Tail")
    tail = base64.b64decode(result.log_result or "").decode()
    assert f"START RequestId: {result.request_id} Version: $LATEST" in tail
    assert "about to raise" in tail
    assert "[INFO]\t" in tail and f"\t{result.request_id}\tlogged raise" in tail
    assert "[ERROR]" in tail and "ValueError: bad input: 1" in tail
    assert f"END RequestId: {result.request_id}" in tail
    report = next(line for line in tail.splitlines() if line.startswith("REPORT"))
    assert "Duration: " in report and "Billed Duration: " in report and "Memory Size: 128 MB" in report
    assert "Max Memory Used: " in report
    stored = runtime.logs.read(misbehave, request_id=result.request_id)
    assert len(stored) == 1 and stored[0].text.endswith(tail)
    assert _call(runtime, misbehave, {"action": "fine"}).log_result is None


def test_unknown_function_and_bad_names(runtime: LambdaRuntime) -> None:
    with pytest.raises(FunctionNotFound) as info:
        runtime.invoke("nope", b"{}")
    assert (
        str(info.value) == "Function not found: arn:aws:lambda:us-east-1:123456789012:function:nope:$LATEST"
    )
    with pytest.raises(FunctionNotFound, match="filter_inference:7"):
        runtime.invoke("filter_inference:7", b"{}")
    with pytest.raises(InvalidParameterValue):
        runtime.invoke("bad name!", b"{}")
    with pytest.raises(InvalidRequestContent, match="Could not parse request body into json"):
        runtime.invoke("filter_inference", b"{not json")
    with pytest.raises(InvalidParameterValue, match="InvocationType"):
        runtime.invoke("filter_inference", b"{}", "Sometimes")


def test_name_forms_reach_the_same_function(runtime: LambdaRuntime) -> None:
    event = b'{"inferences": [0.99, 0.01]}'
    for name in (
        "filter_inference",
        "filter_inference:$LATEST",
        "arn:aws:lambda:us-east-1:123456789012:function:filter_inference",
        "123456789012:function:filter_inference",
    ):
        assert runtime.invoke(name, event).function_error is None, name


def test_event_and_dry_run_invocations(runtime: LambdaRuntime, misbehave: str) -> None:
    dry = runtime.invoke(misbehave, b"{}", "DryRun")
    assert (dry.status_code, dry.payload) == (204, b"")
    event = _call(runtime, misbehave, {"action": "async"}, invocation_type="Event")
    assert (event.status_code, event.payload) == (202, b"")
    runtime._engine.executor().shutdown(wait=True)
    runtime._engine._executor = None
    assert "about to async" in runtime.logs.read(misbehave, request_id=event.request_id)[0].text


def test_concurrent_invocations_use_several_warm_workers(
    runtime: LambdaRuntime, settings: Settings, tmp_path: Path
) -> None:
    register_code(settings, tmp_path, "slow", MISBEHAVE, timeout=10, concurrency=2)
    pids: list[int] = []

    def call() -> None:
        pids.append(json.loads(_call(runtime, "slow", {"action": "sleep", "seconds": 0.5}).payload)["pid"])

    threads = [threading.Thread(target=call) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(pids) == 4
    assert len(set(pids)) == 2  # two workers (the concurrency limit), each reused
    assert runtime._engine.pools["slow"].total == 2


def test_a_configuration_change_recycles_the_workers(
    runtime: LambdaRuntime, settings: Settings, tmp_path: Path
) -> None:
    register_code(settings, tmp_path, "ctx", CONTEXT)
    assert json.loads(_call(runtime, "ctx", {}).payload)["custom"] is None
    FunctionRegistry(settings).update("ctx", environment={"CUSTOM": "changed"})
    assert json.loads(_call(runtime, "ctx", {}).payload)["custom"] == "changed"


def test_non_ascii_results_are_escaped_like_python311(runtime: LambdaRuntime, misbehave: str) -> None:
    assert _call(runtime, misbehave, {"action": "unicode"}).payload == b'{"text": "caf\\u00e9"}'


def test_a_vanished_code_folder_is_a_named_error(
    runtime: LambdaRuntime, settings: Settings, tmp_path: Path
) -> None:
    import shutil

    from sconeflow.lambda_runtime.errors import WorkerStartFailed

    config = register_code(settings, tmp_path, "gone", ECHO)
    shutil.rmtree(config.code_path)
    with pytest.raises(WorkerStartFailed, match="does not exist"):
        runtime.invoke("gone", b"{}")
    assert runtime._engine.pools["gone"].total == 0  # the reserved slot was given back


def test_idle_workers_are_reaped(runtime: LambdaRuntime, settings: Settings, tmp_path: Path) -> None:
    register_code(settings, tmp_path, "echo", ECHO)
    assert runtime.invoke("echo", b"{}").function_error is None
    pool = runtime._engine.pools["echo"]
    assert (pool.total, len(pool.idle)) == (1, 1)
    assert pool.reap(idle_for=3600) == 0
    assert pool.reap(idle_for=0) == 1
    assert (pool.total, pool.idle) == (0, [])
    assert runtime.invoke("echo", b'{"again": 1}').payload == b'{"again": 1}'  # a fresh worker


STREAMS = """
import sys
def handler(event, context):
    sys.stdout.buffer.write(b"raw bytes\\n")
    print("encoding", sys.stdout.encoding, file=sys.stderr)
    sys.stdout.flush()
    return {"isatty": sys.stdout.isatty(), "fileno": sys.stdout.fileno()}
"""


def test_handlers_see_file_like_stdout(runtime: LambdaRuntime, settings: Settings, tmp_path: Path) -> None:
    register_code(settings, tmp_path, "streams", STREAMS)
    result = runtime.invoke("streams", b"{}", log_type="Tail")
    assert json.loads(result.payload) == {"isatty": False, "fileno": 1}
    log = base64.b64decode(result.log_result or "").decode()
    assert "raw bytes" in log and "encoding utf-8" in log
