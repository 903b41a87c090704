"""The local Lambda runtime: warm worker processes per function and AWS Invoke semantics.

``LambdaRuntime(settings).invoke(name, payload)`` behaves like the Lambda Invoke API: a handler
exception is StatusCode 200 with FunctionError ``Unhandled`` and awslambdaric's error object; a timeout
kills the worker and answers ``Sandbox.Timedout``; a worker that dies answers ``Runtime.ExitError``; the
next invocation gets a fresh worker. Runtimes of the same home in one process share their warm workers.
"""

from __future__ import annotations

import atexit
import base64
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from sconeflow.config import Settings
from sconeflow.lambda_runtime import logs as logfmt
from sconeflow.lambda_runtime.errors import (
    FunctionNotFound,
    InvalidParameterValue,
    InvalidRequestContent,
    RequestTooLarge,
    TooManyRequests,
    WorkerStartFailed,
)
from sconeflow.lambda_runtime.protocol import (
    WorkerGone,
    WorkerTimeout,
    encode_request,
    read_response,
    write_all,
)
from sconeflow.lambda_runtime.registry import (
    DEFAULT_MAX_EVENT_AGE_S,
    DEFAULT_RETRY_ATTEMPTS,
    LATEST,
    FunctionConfig,
    FunctionRegistry,
    parse_function_name,
)

log = logging.getLogger(__name__)

MAX_SYNC_PAYLOAD = 6 * 1024 * 1024  # 6,291,456 bytes, request and response
MAX_ASYNC_PAYLOAD = 1024 * 1024
MAX_RESPONSE_PAYLOAD = MAX_SYNC_PAYLOAD + 100  # the figure AWS's error message quotes
INIT_TIMEOUT_S = 30.0  # AWS allows 10 s; a loaded laptop importing boto3 needs more headroom
INVOCATION_TYPES = ("RequestResponse", "Event", "DryRun")
ENDPOINT_TTL_S = 1.0
IDLE_TTL_S = 600.0  # a warm worker idle this long is stopped, as Lambda reclaims idle sandboxes
REAP_EVERY_S = 30.0
# Waits before the retries of a failed asynchronous invocation: Lambda's one and two minutes. The local
# setting SCONEFLOW_LAMBDA_ASYNC_RETRY_DELAYS (or Settings.extra["lambda_async_retry_delays"]) shortens
# them for tests and local use: seconds, comma-separated ("1,2"; one number is used for every retry).
ASYNC_RETRY_DELAYS_S = (60.0, 120.0)
ASYNC_RETRY_DELAYS_ENV = "SCONEFLOW_LAMBDA_ASYNC_RETRY_DELAYS"
_PASS_THROUGH_ENV = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_CA_BUNDLE",
)


@dataclass(frozen=True)
class InvokeResult:
    status_code: int
    payload: bytes
    function_error: str | None
    log_result: str | None
    executed_version: str
    request_id: str
    duration_ms: float = 0.0

    def json(self) -> Any:
        return json.loads(self.payload) if self.payload else None


def async_retry_delays(settings: Settings) -> tuple[float, ...]:
    """The waits before the 1st and 2nd retry of a failed asynchronous invocation, in seconds."""
    raw = settings.extra.get("lambda_async_retry_delays") or os.environ.get(ASYNC_RETRY_DELAYS_ENV, "")
    if not raw.strip():
        return ASYNC_RETRY_DELAYS_S
    try:
        delays = tuple(float(part) for part in raw.split(",") if part.strip())
    except ValueError:
        delays = ()
    if not delays or any(not 0 <= d < 86400 for d in delays):
        log.warning(
            "%s=%r is not a list of seconds (e.g. 1,2): using %s",
            ASYNC_RETRY_DELAYS_ENV,
            raw,
            ASYNC_RETRY_DELAYS_S,
        )
        return ASYNC_RETRY_DELAYS_S
    return delays


@dataclass
class _Event:
    """An asynchronous invocation in Lambda's queue: the same request id on every attempt."""

    name: str
    qualifier: str | None
    payload: bytes
    request_id: str
    invoked_arn: str
    enqueued: float  # time.monotonic() when accepted
    attempts: int = 0  # attempts made so far


def _compact(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _utc_stamp() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class _Worker:
    """One warm worker process, its two pipes and its log file.

    The worker writes what the handler prints to the log file as it goes (an unlinked temporary file
    shared through a file descriptor), so the text printed before a timeout or a crash is still there
    for the invocation's log. It runs in a process group of its own: stopping it stops every process
    the handler started, as Lambda does when it retires a sandbox.
    """

    def __init__(self, config: FunctionConfig, env: dict[str, str], stdout: IO[bytes]) -> None:
        self.log_stream = env["AWS_LAMBDA_LOG_STREAM_NAME"]
        self.max_memory_mb = 0
        self.last_used = time.monotonic()
        log_fd, log_path = tempfile.mkstemp(prefix="sconeflow-lambda-", suffix=".log")
        os.unlink(log_path)
        self.log_fd = log_fd
        req_read, self.req_write = os.pipe()
        self.resp_read, resp_write = os.pipe()
        try:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "sconeflow.lambda_runtime.worker",
                    str(req_read),
                    str(resp_write),
                    str(log_fd),
                ],
                pass_fds=(req_read, resp_write, log_fd),
                env=env,
                cwd=str(config.code_path),
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError:
            for fd in (self.req_write, self.resp_read, self.log_fd):
                os.close(fd)
            raise
        finally:
            os.close(req_read)
            os.close(resp_write)

    def read_log(self, size: int | None = None) -> bytes:
        """``size`` bytes of the log file (None: all of it, e.g. after a timeout or a crash)."""
        if self.log_fd < 0:
            return b""
        try:
            if size is None:
                size = os.fstat(self.log_fd).st_size
            chunks: list[bytes] = []
            offset = 0
            while offset < size:
                chunk = os.pread(self.log_fd, size - offset, offset)
                if not chunk:
                    break
                chunks.append(chunk)
                offset += len(chunk)
        except OSError:
            return b""
        return b"".join(chunks)

    def wait_ready(self, deadline: float) -> tuple[dict[str, Any], bytes, bytes]:
        head, body, _ = read_response(self.resp_read, deadline)
        return head, body, self.read_log(int(head.get("log", 0)))

    def call(
        self, header: dict[str, Any], payload: bytes, deadline: float
    ) -> tuple[dict[str, Any], bytes, bytes]:
        try:
            write_all(self.req_write, encode_request(header, payload))
        except (BrokenPipeError, OSError) as exc:
            raise WorkerGone() from exc
        head, body, _ = read_response(self.resp_read, deadline)
        self.max_memory_mb = max(self.max_memory_mb, int(head.get("max_rss_kb", 0)) // 1024)
        return head, body, self.read_log(int(head.get("log", 0)))

    def exit_reason(self) -> str:
        # The worker closed its pipe: it is exiting, or has exited and is not yet reaped, so its exit
        # status is settled and its pid (its group's id) cannot have been reused: stop the group first.
        self._kill_group()
        try:
            code = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.kill()
            code = self.proc.returncode
        if code is None or code == 0:
            return "Runtime exited without providing a reason"
        if code < 0:
            name = signal.strsignal(-code) or f"signal {-code}"
            return f"Runtime exited with error: signal: {name.lower()}"
        return f"Runtime exited with error: exit status {code}"

    def _kill_group(self) -> None:
        if self.proc.returncode is not None:  # reaped: the group id may belong to someone else now
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def stop(self) -> None:
        """Kill the worker and every process it started; the log file stays readable."""
        self._kill_group()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            log.warning("worker %s did not exit after SIGKILL", self.proc.pid)

    def kill(self) -> None:
        self.stop()
        for fd in (self.req_write, self.resp_read, self.log_fd):
            if fd < 0:
                continue
            try:
                os.close(fd)
            except OSError:
                pass
        self.req_write = self.resp_read = self.log_fd = -1


class _Pool:
    """The warm workers of one function version (a config change starts a new pool)."""

    def __init__(self, config: FunctionConfig, key: tuple) -> None:
        self.config = config
        self.key = key
        self.idle: list[_Worker] = []
        self.total = 0
        self.closed = False
        self.cond = threading.Condition()

    def reserve(self, timeout: float) -> _Worker | None:
        """An idle worker, or None after reserving a slot for a new one (the caller spawns it)."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                if self.idle:
                    return self.idle.pop()
                if self.total < self.config.concurrency:
                    self.total += 1
                    return None
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TooManyRequests(
                        f"Rate Exceeded. All {self.config.concurrency} workers of {self.config.name} "
                        f"stayed busy for {timeout:.0f}s (see `sconeflow lambda update --concurrency`)"
                    )
                self.cond.wait(remaining)

    def release(self, worker: _Worker) -> None:
        worker.last_used = time.monotonic()
        with self.cond:
            if not self.closed:
                self.idle.append(worker)
                self.cond.notify()
                return
            self.total -= 1
        worker.kill()

    def discard(self, worker: _Worker | None) -> None:
        with self.cond:
            self.total -= 1
            self.cond.notify()
        if worker is not None:
            worker.kill()

    def reap(self, idle_for: float) -> int:
        """Stop the workers idle for more than ``idle_for`` seconds; return how many."""
        cutoff = time.monotonic() - idle_for
        with self.cond:
            stale = [w for w in self.idle if w.last_used < cutoff]
            self.idle = [w for w in self.idle if w.last_used >= cutoff]
            self.total -= len(stale)
            self.cond.notify_all()
        for worker in stale:
            worker.kill()
        return len(stale)

    def close(self) -> None:
        with self.cond:
            self.closed = True
            idle, self.idle = self.idle, []
            self.total -= len(idle)
            self.cond.notify_all()
        for worker in idle:
            worker.kill()


class _Engine:
    """Everything a process keeps per home: pools of warm workers, the registry, the log store."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.registry = FunctionRegistry(settings)
        self.logs = logfmt.LogStore(settings)
        self.lock = threading.Lock()
        self.pools: dict[str, _Pool] = {}  # by function name ($LATEST) or "name:version"
        self.fixed_endpoint: str | None = None
        self._endpoint_cache: tuple[float, str | None] = (0.0, None)
        self._in_process_gateway: Any = None
        self._executor: ThreadPoolExecutor | None = None
        self._raw_logs: dict[str, IO[bytes]] = {}
        self._reaper: threading.Thread | None = None
        self._closed = threading.Event()
        self._timers: set[threading.Timer] = set()  # asynchronous invocations waiting to be retried
        self.closing = False  # set while close() runs: queued Event invocations stop waiting for workers

    # -- endpoint for the handlers' boto3 clients ------------------------------------------------
    def endpoint_url(self) -> str | None:
        if self.fixed_endpoint:
            return self.fixed_endpoint
        if os.environ.get("AWS_ENDPOINT_URL"):
            return os.environ["AWS_ENDPOINT_URL"]
        stamp, cached = self._endpoint_cache
        if cached and time.monotonic() - stamp < ENDPOINT_TTL_S:
            return cached
        from sconeflow.gateway.client import gateway_url

        url = gateway_url(self.settings)
        if url is None:
            with self.lock:
                if self._in_process_gateway is None:
                    from sconeflow.gateway.server import start_in_process

                    self._in_process_gateway = start_in_process(self.settings)
                    log.info(
                        "started an in-process gateway at %s for the Lambda workers",
                        self._in_process_gateway.url,
                    )
                url = self._in_process_gateway.url
        self._endpoint_cache = (time.monotonic(), url)
        return url

    def worker_env(self, config: FunctionConfig, endpoint: str | None) -> dict[str, str]:
        from sconeflow.services import package_pythonpath

        region = self.settings.region
        now = datetime.now(UTC)
        env = {
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            "LANG": os.environ.get("LANG", "C.UTF-8"),
            "HOME": os.environ.get("HOME", "/tmp"),
            "TZ": ":UTC",
            "PYTHONPATH": package_pythonpath(),
            "PYTHONUNBUFFERED": "1",
            "SCONEFLOW_HOME": str(self.settings.home),
            "LAMBDA_TASK_ROOT": str(config.code_path),
            "LAMBDA_RUNTIME_DIR": str(Path(__file__).resolve().parent),
            "_HANDLER": config.handler,
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{config.runtime}",
            "AWS_LAMBDA_FUNCTION_NAME": config.name,
            "AWS_LAMBDA_FUNCTION_VERSION": config.version,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(config.memory_size),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{config.name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": f"{now:%Y/%m/%d}/[{config.version}]{uuid.uuid4().hex}",
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
        }
        for name in _PASS_THROUGH_ENV:
            if os.environ.get(name):
                env[name] = os.environ[name]
        for name, value in os.environ.items():
            if name.startswith("AWS_ENDPOINT_URL") and value:
                env[name] = value
        if endpoint:
            env.setdefault("AWS_ENDPOINT_URL", endpoint)
            env.setdefault("AWS_ACCESS_KEY_ID", "sconeflow")
            env.setdefault("AWS_SECRET_ACCESS_KEY", "sconeflow")
        env.update(config.environment)
        return env

    # -- pools -----------------------------------------------------------------------------------
    def pool_for(self, config: FunctionConfig, endpoint: str | None = None) -> _Pool:
        """The pool of the function version; workers started for another configuration or gateway are
        replaced. Each published version has a pool of its own (its code and configuration differ)."""
        key = (*config.fingerprint, endpoint)
        pool_name = config.name if config.version == LATEST else f"{config.name}:{config.version}"
        with self.lock:
            pool = self.pools.get(pool_name)
            if pool is not None and pool.key == key:
                pool.config = config  # timeout/concurrency changes need no new workers
                return pool
            if pool is not None:
                pool.close()
            pool = self.pools[pool_name] = _Pool(config, key)
            if self._reaper is None or not self._reaper.is_alive():
                self._closed.clear()
                self._reaper = threading.Thread(target=self._reap_idle, name="lambda-reaper", daemon=True)
                self._reaper.start()
            return pool

    def _reap_idle(self) -> None:
        while not self._closed.wait(REAP_EVERY_S):
            with self.lock:
                pools = list(self.pools.values())
            for pool in pools:
                stopped = pool.reap(IDLE_TTL_S)
                if stopped:
                    log.info("stopped %d idle worker(s) of %s", stopped, pool.config.name)

    def raw_log(self, name: str) -> IO[bytes]:
        with self.lock:
            handle = self._raw_logs.get(name)
            if handle is None:
                directory = self.settings.logs_dir / "lambda"
                directory.mkdir(parents=True, exist_ok=True)
                handle = self._raw_logs[name] = (directory / f"{name}.worker.log").open("ab")
            return handle

    def executor(self) -> ThreadPoolExecutor:
        with self.lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="lambda-event")
            return self._executor

    def schedule(self, delay: float, fn: Any, *args: Any) -> None:
        """Run ``fn(*args)`` on the event pool after ``delay`` seconds (dropped if the engine closes)."""

        def fire() -> None:
            with self.lock:
                self._timers.discard(timer)
            if not self.closing:
                self.executor().submit(fn, *args)

        timer = threading.Timer(delay, fire)
        timer.daemon = True
        with self.lock:
            self._timers.add(timer)
        timer.start()

    def close(self) -> None:
        self.closing = True
        try:
            self._close()
        finally:
            self.closing = False

    def _close(self) -> None:
        with self.lock:
            pools, self.pools = list(self.pools.values()), {}
            executor, self._executor = self._executor, None
            gateway, self._in_process_gateway = self._in_process_gateway, None
            raw, self._raw_logs = list(self._raw_logs.values()), {}
            timers, self._timers = list(self._timers), set()
        for timer in timers:
            timer.cancel()
        if timers:
            log.warning("%d asynchronous invocation(s) waiting for a retry dropped at close", len(timers))
        self.fixed_endpoint = None
        self._closed.set()
        if executor is not None:
            executor.shutdown(wait=True)
        for pool in pools:
            pool.close()
        if gateway is not None:
            gateway.close()
        for handle in raw:
            handle.close()
        self._endpoint_cache = (0.0, None)


_ENGINES: dict[Path, _Engine] = {}
_ENGINES_LOCK = threading.Lock()


def _engine_for(settings: Settings) -> _Engine:
    with _ENGINES_LOCK:
        engine = _ENGINES.get(settings.home)
        if engine is None:
            engine = _ENGINES[settings.home] = _Engine(settings)
        return engine


@atexit.register
def _close_all() -> None:
    with _ENGINES_LOCK:
        engines = list(_ENGINES.values())
    for engine in engines:
        try:
            engine.close()
        except Exception:  # pragma: no cover - best effort at interpreter exit
            log.debug("closing a Lambda engine failed", exc_info=True)


class LambdaRuntime:
    """Invoke registered functions with AWS Lambda's semantics. Thread-safe."""

    def __init__(self, settings: Settings, *, endpoint_url: str | None = None) -> None:
        self.settings = settings
        self._engine = _engine_for(settings)
        if endpoint_url:
            self._engine.fixed_endpoint = endpoint_url
        self.registry = self._engine.registry
        self.logs = self._engine.logs

    def invoke(
        self,
        function_name: str,
        payload: bytes = b"",
        invocation_type: str = "RequestResponse",
        *,
        qualifier: str | None = None,
        log_type: str | None = None,
        client_context: str | None = None,
    ) -> InvokeResult:
        name, qual = parse_function_name(function_name, qualifier, settings=self.settings)
        config = self.registry.get(name, qual)  # $LATEST, a published version, or an alias's version
        if invocation_type not in INVOCATION_TYPES:
            raise InvalidParameterValue(
                f"invalid InvocationType {invocation_type!r}: use one of {', '.join(INVOCATION_TYPES)}"
            )
        if log_type not in (None, "None", "Tail"):
            raise InvalidParameterValue(f"invalid LogType {log_type!r}: use None or Tail")
        payload = bytes(payload or b"")
        if not payload.strip():
            # Lambda gives the handler {} for an empty payload; whitespace alone is treated the same
            # (it carries no JSON value, and the worker would otherwise fail it as Runtime.UnmarshalError)
            payload = b""
        limit = MAX_ASYNC_PAYLOAD if invocation_type == "Event" else MAX_SYNC_PAYLOAD
        if len(payload) > limit:
            raise RequestTooLarge(
                f"Request must be smaller than {limit} bytes for the InvokeFunction operation"
            )
        if payload:
            try:
                json.loads(payload)
            except ValueError as exc:
                raise InvalidRequestContent(f"Could not parse request body into json: {exc}") from None
        context = _decode_client_context(client_context)
        request_id = str(uuid.uuid4())
        invoked_arn = config.arn(self.settings, qual)
        if invocation_type == "DryRun":
            return InvokeResult(204, b"", None, None, config.version, request_id)
        if invocation_type == "Event":
            # Lambda passes the ClientContext to synchronous invocations only
            event = _Event(config.name, qual, payload, request_id, invoked_arn, time.monotonic())
            self._engine.executor().submit(self._run_event, event)
            return InvokeResult(202, b"", None, None, config.version, request_id)
        result = self._run(config, payload, request_id, invoked_arn, context, log_type == "Tail")
        return result

    def _run_event(self, event: _Event) -> None:
        """One attempt of an Event invocation, from the queue.

        A throttled event (every worker busy) waits for a worker, up to the event's maximum age, as
        Lambda keeps retrying throttled events. A function error (the handler raised, timed out or
        crashed) is retried MaximumRetryAttempts times (default 2) after Lambda's waits (see
        :func:`async_retry_delays`), each attempt logged as its own START/END/REPORT with the same
        request id. The configuration is the one the function has when the attempt runs, as on AWS.
        """
        name = event.name
        settings = self.registry.find_event_config(name, event.qualifier)
        max_retries = settings.retry_attempts if settings else DEFAULT_RETRY_ATTEMPTS
        max_age = settings.event_age if settings else DEFAULT_MAX_EVENT_AGE_S
        while True:
            try:
                config = self.registry.get(name, event.qualifier)
                result = self._run(config, event.payload, event.request_id, event.invoked_arn, None, False)
                break
            except TooManyRequests:
                if self._engine.closing:
                    log.warning("asynchronous invocation %s of %s dropped at close", event.request_id, name)
                    return
                if time.monotonic() - event.enqueued >= max_age:
                    log.warning(
                        "asynchronous invocation %s of %s discarded: throttled for longer than its maximum "
                        "event age (%ss)",
                        event.request_id,
                        name,
                        max_age,
                    )
                    self._deliver(event, settings, None, "EventAgeExceeded")
                    return
            except FunctionNotFound:
                log.warning("asynchronous invocation %s: %s no longer exists", event.request_id, name)
                return
            except Exception:
                log.exception("asynchronous invocation %s failed", event.request_id)
                return
        event.attempts += 1
        if result.function_error is None:
            self._deliver(event, settings, result, "Success")
            return
        if event.attempts > max_retries:
            log.warning(
                "asynchronous invocation %s of %s failed %d time(s): discarded",
                event.request_id,
                name,
                event.attempts,
            )
            self._deliver(event, settings, result, "RetriesExhausted")
            return
        delays = async_retry_delays(self.settings)
        delay = delays[min(event.attempts - 1, len(delays) - 1)]
        if time.monotonic() - event.enqueued + delay > max_age:
            log.warning(
                "asynchronous invocation %s of %s discarded: its retry would exceed its maximum event age "
                "(%ss)",
                event.request_id,
                name,
                max_age,
            )
            self._deliver(event, settings, result, "EventAgeExceeded")
            return
        self._engine.schedule(delay, self._run_event, event)

    def _deliver(self, event: _Event, settings: Any, result: InvokeResult | None, condition: str) -> None:
        """Send the invocation record to the OnSuccess/OnFailure destination (a local Lambda function,
        invoked asynchronously), in Lambda's destination record format."""
        key = "OnSuccess" if condition == "Success" else "OnFailure"
        target = ((settings.destinations if settings else {}).get(key) or {}).get("Destination")
        if not target:
            return
        try:
            request_payload = json.loads(event.payload) if event.payload else {}
        except ValueError:
            request_payload = None
        record: dict[str, Any] = {
            "version": "1.0",
            "timestamp": _utc_stamp(),
            "requestContext": {
                "requestId": event.request_id,
                "functionArn": event.invoked_arn,
                "condition": condition,
                "approximateInvokeCount": max(event.attempts, 1),
            },
            "requestPayload": request_payload,
        }
        if result is not None:
            response: dict[str, Any] = {"statusCode": 200, "executedVersion": result.executed_version}
            if result.function_error:
                response["functionError"] = result.function_error
            record["responseContext"] = response
            try:
                record["responsePayload"] = result.json()
            except ValueError:
                record["responsePayload"] = result.payload.decode("utf-8", "replace")
        try:
            self.invoke(target, json.dumps(record).encode(), "Event")
        except Exception:
            log.exception("cannot deliver asynchronous invocation %s to %s", event.request_id, target)

    def _run(
        self,
        config: FunctionConfig,
        payload: bytes,
        request_id: str,
        invoked_arn: str,
        client_context: dict[str, Any] | None,
        tail: bool,
    ) -> InvokeResult:
        engine = self._engine
        endpoint = engine.endpoint_url()
        pool = engine.pool_for(config, endpoint)
        worker = pool.reserve(timeout=float(config.timeout))
        init_text = ""
        init_ms: float | None = None
        if worker is None:
            worker, init_text, init_ms, init_error = self._spawn(pool, config, endpoint)
            if init_error is not None:
                return self._finish(
                    config, request_id, init_error, True, init_text, "", 0.0, init_ms, worker, "error", tail
                )
        started = time.monotonic()
        deadline = started + config.timeout
        header = {
            "id": request_id,
            "arn": invoked_arn,
            "deadline_ms": int(time.time() * 1000 + config.timeout * 1000),
            "client_context": client_context,
        }
        status: str | None = None
        try:
            head, body, text_bytes = worker.call(header, payload, deadline)
        except WorkerTimeout:
            elapsed_ms = (time.monotonic() - started) * 1000
            worker.stop()
            printed = _log_text(worker.read_log())  # what the handler printed before the timeout
            pool.discard(worker)
            message = f"Task timed out after {config.timeout:.2f} seconds"
            body = _compact(
                {"errorType": "Sandbox.Timedout", "errorMessage": f"RequestId: {request_id} Error: {message}"}
            )
            text = f"{printed}{_utc_stamp()} {request_id} {message}\n"
            return self._finish(
                config, request_id, body, True, init_text, text, elapsed_ms, init_ms, worker, "timeout", tail
            )
        except WorkerGone:
            elapsed_ms = (time.monotonic() - started) * 1000
            reason = worker.exit_reason()
            printed = _log_text(worker.read_log())  # what the handler printed before the crash
            pool.discard(worker)
            body = _compact(
                {"errorType": "Runtime.ExitError", "errorMessage": f"RequestId: {request_id} Error: {reason}"}
            )
            text = f"{printed}RequestId: {request_id} Error: {reason}\nRuntime.ExitError\n"
            return self._finish(
                config, request_id, body, True, init_text, text, elapsed_ms, init_ms, worker, "error", tail
            )
        except BaseException:  # e.g. KeyboardInterrupt mid-call: the worker's state is unknown
            pool.discard(worker)
            raise
        pool.release(worker)
        error = bool(head.get("error"))
        if len(body) > MAX_RESPONSE_PAYLOAD:
            body = _compact(
                {
                    "errorMessage": "Response payload size exceeded maximum allowed payload size "
                    f"({MAX_RESPONSE_PAYLOAD} bytes).",
                    "errorType": "Function.ResponseSizeTooLarge",
                }
            )
            error, status = True, "error"
        text = text_bytes.decode("utf-8", "replace")
        return self._finish(
            config,
            request_id,
            body,
            error,
            init_text,
            text,
            float(head.get("duration_ms", 0.0)),
            init_ms,
            worker,
            status,
            tail,
        )

    def _spawn(
        self, pool: _Pool, config: FunctionConfig, endpoint: str | None
    ) -> tuple[_Worker, str, float, bytes | None]:
        """A new worker for a reserved slot: (worker, init log, init ms, init error payload or None)."""
        engine = self._engine
        try:
            if not config.code_path.is_dir():
                raise WorkerStartFailed(f"the code folder {config.code_path} of {config.name} does not exist")
            env = engine.worker_env(config, endpoint)
            worker = _Worker(config, env, engine.raw_log(config.name))
        except OSError as exc:
            pool.discard(None)
            raise WorkerStartFailed(f"cannot start a worker for {config.name}: {exc}") from exc
        except BaseException:
            pool.discard(None)
            raise
        started = time.monotonic()
        try:
            head, body, text = worker.wait_ready(started + INIT_TIMEOUT_S)
        except WorkerTimeout:
            worker.stop()
            printed = _log_text(worker.read_log())
            pool.discard(worker)
            init_ms = (time.monotonic() - started) * 1000
            message = f"RequestId:  Error: Task timed out after {INIT_TIMEOUT_S:.2f} seconds (init)"
            return (
                worker,
                printed,
                init_ms,
                _compact({"errorType": "Sandbox.Timedout", "errorMessage": message}),
            )
        except WorkerGone:
            reason = worker.exit_reason()
            printed = _log_text(worker.read_log())
            pool.discard(worker)
            init_ms = (time.monotonic() - started) * 1000
            return (
                worker,
                printed,
                init_ms,
                _compact({"errorType": "Runtime.ExitError", "errorMessage": f"Error: {reason}"}),
            )
        init_text = text.decode("utf-8", "replace")
        init_ms = float(head.get("init_ms", 0.0))
        worker.max_memory_mb = int(head.get("max_rss_kb", 0)) // 1024
        if not head.get("ready"):
            pool.discard(worker)
            return worker, init_text, init_ms, body
        return worker, init_text, init_ms, None

    def _finish(
        self,
        config: FunctionConfig,
        request_id: str,
        body: bytes,
        error: bool,
        init_text: str,
        text: str,
        duration_ms: float,
        init_ms: float | None,
        worker: _Worker,
        status: str | None,
        tail: bool,
    ) -> InvokeResult:
        full = (
            init_text
            + logfmt.start_line(request_id, config.version)
            + text
            + logfmt.end_line(request_id)
            + logfmt.report_line(
                request_id, duration_ms, config.memory_size, worker.max_memory_mb, init_ms, status
            )
        )
        try:
            self.logs.append(config.name, request_id, worker.log_stream, full)
        except OSError:
            log.warning("cannot write the log of %s for %s", request_id, config.name, exc_info=True)
        log_result = base64.b64encode(logfmt.tail(full).encode("utf-8")).decode("ascii") if tail else None
        return InvokeResult(
            200, body, "Unhandled" if error else None, log_result, config.version, request_id, duration_ms
        )

    def close(self) -> None:
        """Stop every warm worker of this home in this process (the next invoke starts fresh ones)."""
        self._engine.close()

    def __enter__(self) -> LambdaRuntime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _log_text(data: bytes) -> str:
    """Log bytes as text ending with a newline (a line cut short by a crash still ends its line)."""
    text = data.decode("utf-8", "replace")
    return text if not text or text.endswith("\n") else text + "\n"


def _decode_client_context(value: str | None) -> dict[str, Any] | None:
    if not value:
        return None
    try:
        decoded = json.loads(base64.b64decode(value))
    except ValueError as exc:
        raise InvalidRequestContent(f"Client context must be base64-encoded JSON: {exc}") from None
    if len(value) > 3583:
        raise InvalidRequestContent("Client context must be at most 3583 bytes once base64-encoded")
    return decoded if isinstance(decoded, dict) else None
