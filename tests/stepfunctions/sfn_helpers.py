"""Shared pieces of the Step Functions service tests: small definitions and a plain-Python Integrations.

``PythonIntegrations`` is only for unit tests of the service layer (persistence, threads, stop); the
API, CLI and workflow tests use the real Lambda runtime.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from sconeflow.config import Settings
from sconeflow.services import child_env
from sconeflow.stepfunctions.engine import LambdaResponse
from sconeflow.stepfunctions.errors import LambdaFunctionNotFound

REPO_ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = REPO_ROOT / "workflow" / "step-function.json"

PASS_CHAIN = {
    "Comment": "two Pass states",
    "StartAt": "First",
    "States": {
        "First": {"Type": "Pass", "Result": {"step": 1}, "ResultPath": "$.first", "Next": "Second"},
        "Second": {"Type": "Pass", "End": True},
    },
}

WAIT_LONG = {
    "StartAt": "Hold",
    "States": {"Hold": {"Type": "Wait", "Seconds": 120, "Next": "Done"}, "Done": {"Type": "Succeed"}},
}

LAMBDA_TASK = {
    "StartAt": "Call",
    "States": {
        "Call": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {
                "FunctionName": "arn:aws:lambda:us-east-1:123456789012:function:echo:$LATEST",
                "Payload.$": "$",
            },
            "OutputPath": "$.Payload",
            "End": True,
        }
    },
}

FILTER_TASK = {
    "StartAt": "Filter",
    "States": {
        "Filter": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {
                "FunctionName": "arn:aws:lambda:us-east-1:123456789012:function:filter_inference:$LATEST",
                "Payload.$": "$",
            },
            "OutputPath": "$.Payload",
            "Catch": [
                {"ErrorEquals": ["ThresholdConfidenceNotMet"], "ResultPath": "$.error", "Next": "Unsure"}
            ],
            "End": True,
        },
        "Unsure": {"Type": "Fail", "Error": "ThresholdConfidenceNotMet", "Cause": "not confident"},
    },
}


def dumps(definition: dict[str, Any]) -> str:
    return json.dumps(definition)


class PythonIntegrations:
    """Lambda functions as plain Python callables (name -> fn(event) -> result)."""

    def __init__(self, functions: dict[str, Callable[[Any], Any]]) -> None:
        self.functions = functions
        self.published: list[tuple[str, str]] = []

    def invoke_lambda(
        self,
        function_name: str,
        payload: bytes,
        *,
        qualifier: str | None = None,
        invocation_type: str = "RequestResponse",
    ) -> LambdaResponse:
        name = function_name.split(":function:")[-1].split(":")[0]
        if name not in self.functions:
            raise LambdaFunctionNotFound(function_name)
        try:
            result = self.functions[name](json.loads(payload or b"{}"))
        except Exception as exc:
            error = {"errorMessage": str(exc), "errorType": type(exc).__name__, "stackTrace": []}
            return LambdaResponse(json.dumps(error).encode(), function_error="Unhandled")
        return LambdaResponse(json.dumps(result).encode())

    def publish_sns(
        self,
        topic_arn: str,
        message: str,
        *,
        subject: str | None = None,
        message_attributes: dict | None = None,
    ) -> str:
        self.published.append((topic_arn, message))
        return f"msg-{len(self.published)}"


def sconeflow_cli(settings: Settings, *args: str) -> subprocess.Popen:
    """``python -m sconeflow ARGS`` as a real child process of this home."""
    return subprocess.Popen(
        [sys.executable, "-m", "sconeflow", *args],
        env=child_env(settings),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_for(predicate: Callable[[], Any], timeout: float = 30.0, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")


def pixel(path: Path, box: tuple[int, int, int, int]) -> tuple[int, int, int]:
    """The colour just inside the left edge of a rendered box, at half height."""
    import numpy as np
    from PIL import Image

    left, top, _right, bottom = box
    with Image.open(path) as image:
        rgb = np.asarray(image.convert("RGB"))
    return tuple(int(v) for v in rgb[(top + bottom) // 2, left + 6])


def hex_rgb(colour: str) -> tuple[int, int, int]:
    return tuple(int(colour[i : i + 2], 16) for i in (1, 3, 5))


def close(a: tuple[int, ...], b: tuple[int, ...], tolerance: int = 12) -> bool:
    return all(abs(x - y) <= tolerance for x, y in zip(a, b, strict=True))


class Hook(BaseHTTPRequestHandler):
    """A local webhook: records each POST (headers lower-cased, body); answers 503 ``failures_left`` times."""

    received: list[tuple[dict, bytes]] = []
    failures_left = 0

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if Hook.failures_left > 0:
            Hook.failures_left -= 1
            self.send_response(503)
            self.end_headers()
            return
        Hook.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@contextlib.contextmanager
def serve_hook() -> Iterator[str]:
    """Run a local webhook server (:class:`Hook`) and yield its URL."""
    Hook.received = []
    Hook.failures_left = 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    finally:
        server.shutdown()
        server.server_close()
