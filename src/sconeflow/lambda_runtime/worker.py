"""A Lambda worker process: imports the handler once (cold start), then serves invocations for ever.

Run as ``python -m sconeflow.lambda_runtime.worker READ_FD WRITE_FD LOG_FD`` by the runtime, with the
function's environment (``_HANDLER``, ``LAMBDA_TASK_ROOT``, ``AWS_LAMBDA_*``, the user's variables).
Standard library only. Marshalling and error payloads follow ``awslambdaric`` (the AWS Python runtime client).
"""

from __future__ import annotations

import decimal
import importlib
import io
import json
import logging
import os
import resource
import sys
import threading
import time
import traceback
from typing import Any

from sconeflow.lambda_runtime.context import LambdaContext
from sconeflow.lambda_runtime.protocol import WorkerGone, encode_response, read_request, write_all

_THIS_FILE = os.path.abspath(__file__)
# awslambdaric writes non-ASCII as is from python3.12 on, escaped before.
_ENSURE_ASCII = sys.version_info < (3, 12)
_LOG_FORMAT = "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s"


class Fault(Exception):
    """A runtime-level failure (errorType ``Runtime.*``)."""

    def __init__(self, error_type: str, message: str, trace: list[str] | None = None) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.trace = trace or []


def make_error(message: str, error_type: str, trace: list[str] | None, request_id: str | None) -> dict:
    """The error object of awslambdaric, key order as AWS sends it."""
    return {
        "errorMessage": message or "",
        "errorType": error_type or "",
        "requestId": request_id or "",
        "stackTrace": trace or [],
    }


def _user_trace(tb: Any) -> list[str]:
    frames = [f for f in traceback.extract_tb(tb) if os.path.abspath(f.filename) != _THIS_FILE]
    return traceback.format_list(frames)


def fault_from_exception(exc: BaseException, request_id: str | None) -> dict:
    return make_error(str(exc), type(exc).__name__, _user_trace(exc.__traceback__), request_id)


def _default(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def marshal(result: Any) -> bytes:
    """Top-level bytes pass through raw; anything else is JSON with Python's default separators."""
    if isinstance(result, bytes | bytearray):
        return bytes(result)
    try:
        return json.dumps(result, default=_default, ensure_ascii=_ENSURE_ASCII, allow_nan=True).encode(
            "utf-8"
        )
    except (TypeError, ValueError, OverflowError) as exc:
        raise Fault("Runtime.MarshalError", f"Unable to marshal response: {exc}") from None


def load_handler(spec: str) -> Any:
    """``module.function`` -> the callable, with awslambdaric's error types and messages."""
    try:
        module_name, function_name = spec.rsplit(".", 1)
    except ValueError as exc:
        raise Fault("Runtime.MalformedHandlerName", f"Bad handler '{spec}': {exc}") from None
    try:
        if module_name.split(".")[0] in sys.builtin_module_names:
            raise Fault(
                "Runtime.BuiltInModuleConflict",
                f"Cannot use built-in module {module_name} as a handler module",
            )
        module = importlib.import_module(module_name.replace("/", "."))
    except ImportError as exc:
        raise Fault("Runtime.ImportModuleError", f"Unable to import module '{module_name}': {exc}") from None
    except SyntaxError as exc:
        trace = [f'  File "{exc.filename}" Line {exc.lineno}\n    {exc.text}']
        raise Fault(
            "Runtime.UserCodeSyntaxError", f"Syntax error in module '{module_name}': {exc}", trace
        ) from None
    handler = getattr(module, function_name, None)
    if handler is None:
        message = f"Handler '{function_name}' missing on module '{module_name}'"

        def missing(event: Any, context: Any) -> Any:
            raise Fault("Runtime.HandlerNotFound", message)

        return missing
    return handler


class _RequestIdFilter(logging.Filter):
    request_id = ""

    def filter(self, record: logging.LogRecord) -> bool:
        record.aws_request_id = self.request_id
        return True


class _BytesSink(io.RawIOBase):
    """``sys.stdout.buffer`` of the handler: bytes land in the same invocation log."""

    def __init__(self, capture: _Capture) -> None:
        self.capture = capture

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        self.capture.write(bytes(data).decode("utf-8", "replace"))
        return len(data)


_PENDING_MAX = 1 << 16  # characters kept back waiting for a newline before they are written anyway


class _Capture(io.TextIOBase):
    """sys.stdout / sys.stderr of the handler: everything lands in the invocation's log.

    The text goes to the log file the runtime handed over (``log_fd``) line by line as it is written,
    not when the invocation ends: when the handler times out or kills its process, the runtime still
    finds what it printed up to then, as CloudWatch has it on AWS. The runtime reads the file after
    each answer; the worker empties it when the next invocation starts.
    """

    encoding = "utf-8"
    errors = "replace"

    def __init__(self, fd: int, log_fd: int) -> None:
        self.buffer = _BytesSink(self)
        self._fd = fd
        self._log_fd = log_fd
        self._pending: list[str] = []
        self._pending_len = 0
        self._written = 0  # bytes in the log file
        self._reported = 0  # of which the runtime was told (and has read)
        self._lock = threading.RLock()  # a signal handler that prints must not deadlock

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        with self._lock:
            self._pending.append(text)
            self._pending_len += len(text)
            if "\n" in text or self._pending_len > _PENDING_MAX:
                self._flush_locked()
        return len(text)

    def flush(self) -> None:
        with self._lock:
            self._flush_locked()

    def _flush_locked(self) -> None:
        if not self._pending:
            return
        data = "".join(self._pending).encode("utf-8", "replace")
        self._pending.clear()
        self._pending_len = 0
        try:
            write_all(self._log_fd, data)
        except OSError:  # a full disk must not fail the invocation; the text is lost as on a full disk
            return
        self._written += len(data)

    def fileno(self) -> int:  # C-level writers (subprocesses, faulthandler) reach the worker's raw log
        return self._fd

    def taken(self) -> int:
        """Flush and return how many bytes of log this invocation (or the init) wrote."""
        with self._lock:
            self._flush_locked()
            self._reported = self._written
            return self._written

    def start_invocation(self) -> None:
        """Empty the log file: the runtime has read the previous invocation's text by now. What a
        background thread wrote since is kept for this invocation (as a thawed sandbox logs it)."""
        with self._lock:
            self._flush_locked()
            if not self._written:
                return
            late = b""
            if self._written > self._reported:
                late = os.pread(self._log_fd, self._written - self._reported, self._reported)
            os.ftruncate(self._log_fd, 0)
            os.lseek(self._log_fd, 0, os.SEEK_SET)
            self._written = self._reported = 0
            if late:
                write_all(self._log_fd, late)
                self._written = len(late)


def _max_rss_kb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def main(argv: list[str]) -> int:
    read_fd, write_fd, log_fd = int(argv[1]), int(argv[2]), int(argv[3])
    capture = _Capture(1, log_fd)
    sys.stdout = capture  # type: ignore[assignment]
    sys.stderr = capture  # type: ignore[assignment]
    id_filter = _RequestIdFilter()
    handler_ = logging.StreamHandler(capture)
    formatter = logging.Formatter(_LOG_FORMAT, "%Y-%m-%dT%H:%M:%S")
    formatter.converter = time.gmtime
    handler_.setFormatter(formatter)
    handler_.addFilter(id_filter)
    root = logging.getLogger()
    root.handlers[:] = [handler_]
    root.setLevel(os.environ.get("AWS_LAMBDA_LOG_LEVEL", "WARNING").upper())

    task_root = os.environ.get("LAMBDA_TASK_ROOT", os.getcwd())
    if task_root not in sys.path:
        sys.path.insert(0, task_root)
    started = time.perf_counter()
    try:
        handler = load_handler(os.environ.get("_HANDLER", ""))
    except Fault as fault:
        error = make_error(fault.message, fault.error_type, fault.trace, None)
        return _init_failed(write_fd, error, capture, started)
    except BaseException as exc:  # an exception raised by the module's top-level code
        error = fault_from_exception(exc, None)
        return _init_failed(write_fd, error, capture, started)
    init_ms = (time.perf_counter() - started) * 1000
    head = {"ready": True, "init_ms": init_ms, "max_rss_kb": _max_rss_kb(), "log": capture.taken()}
    write_all(write_fd, encode_response(head, b"", b""))

    while True:
        try:
            header, payload = read_request(read_fd)
        except (WorkerGone, OSError):
            return 0
        capture.start_invocation()
        request_id = header["id"]
        id_filter.request_id = request_id
        context = LambdaContext(
            request_id,
            header["arn"],
            header["deadline_ms"],
            header.get("client_context"),
            header.get("tenant"),
        )
        started = time.perf_counter()
        error = False
        try:
            event = json.loads(payload) if payload else {}
        except ValueError as exc:
            body = make_error(f"Unable to unmarshal input: {exc}", "Runtime.UnmarshalError", None, request_id)
            error = True
        else:
            try:
                body = marshal(handler(event, context))
            except Fault as fault:
                body = make_error(fault.message, fault.error_type, fault.trace, request_id)
                error = True
            except Exception as exc:
                body = fault_from_exception(exc, request_id)
                error = True
                _log_error(capture, body, request_id)
        duration_ms = (time.perf_counter() - started) * 1000
        if error:
            body = json.dumps(body, ensure_ascii=_ENSURE_ASCII).encode("utf-8")
        head = {
            "error": error,
            "duration_ms": duration_ms,
            "max_rss_kb": _max_rss_kb(),
            "log": capture.taken(),
        }
        write_all(write_fd, encode_response(head, body, b""))


def _log_error(capture: _Capture, error: dict, request_id: str) -> None:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{int(time.time() * 1000) % 1000:03d}Z"
    lines = [f"[ERROR]\t{stamp}\t{request_id}\t{error['errorType']}: {error['errorMessage']}"]
    if error["stackTrace"]:
        lines.append("Traceback (most recent call last):")
        lines.extend(line.rstrip("\n") for line in error["stackTrace"])
    capture.write("\n".join(lines) + "\n")


def _init_failed(write_fd: int, error: dict, capture: _Capture, started: float) -> int:
    init_ms = (time.perf_counter() - started) * 1000
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
    capture.write(f"[ERROR] {error['errorType']}: {error['errorMessage']}\n")
    body = json.dumps(error, ensure_ascii=_ENSURE_ASCII).encode("utf-8")
    head = {
        "ready": False,
        "init_ms": init_ms,
        "max_rss_kb": _max_rss_kb(),
        "at": stamp,
        "log": capture.taken(),
    }
    write_all(write_fd, encode_response(head, body, b""))
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
