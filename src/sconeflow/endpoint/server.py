"""The endpoint server: one process per endpoint, like a SageMaker inference container.

:class:`EndpointApp` (this module) is the endpoint's request handling; the HTTP/1.1 wire is
:mod:`sconeflow.endpoint.httpserver` (asyncio + httptools). Routes:

- ``GET /ping``: 200 once the model is loaded (the container contract's health check);
- ``POST /invocations`` (container contract) and ``POST /endpoints/{name}/invocations`` (the runtime
  API's REST form, so boto3 ``sagemaker-runtime`` with ``endpoint_url=<this server>`` works);
- ``GET /metrics``: Prometheus text (see :mod:`sconeflow.endpoint.metrics`);
- ``POST /-/reload``: load another endpoint config's model and swap it in without failing a request.

Errors use the runtime API's wire shape (``x-amzn-ErrorType`` + JSON ``message``), so boto3 raises the
modeled exceptions. What the runtime API itself refuses (unknown endpoint, a header or body over its
limit) is a 400 ValidationError; what the model container refuses (content type, a body that is no image,
Accept) or fails on is a 424 ModelError carrying the container's status, as SageMaker reports it. Nothing a
client sends can crash the process or produce a 5xx.

No torch here: the model runs on onnxruntime through :mod:`sconeflow.model.artifact`.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import json
import logging
import os
import random
import signal
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from sconeflow.config import Settings
from sconeflow.endpoint import imaging
from sconeflow.endpoint.batching import MicroBatcher
from sconeflow.endpoint.capture import CaptureEvent, CaptureWriter
from sconeflow.endpoint.errors import (
    InvocationError,
    ModelError,
    ModelLoadError,
    NotAcceptable,
    ThrottlingException,
    ValidationError,
)
from sconeflow.endpoint.httpserver import HttpServer, Request, Respond, Response
from sconeflow.endpoint.ids import new_uuid4
from sconeflow.endpoint.metrics import EndpointMetrics
from sconeflow.endpoint.models import FAILED, VARIANT_NAME, DataCaptureConfig
from sconeflow.errors import SconeflowError

log = logging.getLogger(__name__)

INLINE_DECODE_BYTES = 64 * 1024  # larger bodies are decoded on a worker thread, off the event loop
MAX_INFERENCE_ID = 64
MAX_CUSTOM_ATTRIBUTES = 1024
JSON_TYPE = "application/json"
TEXT_TYPE = "text/plain"
_ACCEPTABLE = {"", "*/*", "application/*", "application/json"}


@dataclass(frozen=True)
class ServingOptions:
    max_batch: int = 64
    max_wait_ms: float = 0.0
    max_queue: int = 256
    threads: int = 0  # 0: one per CPU core, at most 4
    # Inference threads taking batches from the queue (0: one per CPU core, at most 4); with more than one,
    # large batches run single-threaded side by side (see endpoint/batching.py and endpoint/runtime.py).
    workers: int = 0
    allow_spinning: bool = False  # ONNX Runtime intra-op spinning for every batch (frees no core: off)
    # Batches of at most this many images run on a second session whose threads spin (0: never): a lightly
    # loaded endpoint then never waits for a sleeping worker thread to wake (see endpoint/runtime.py).
    spin_max_batch: int = 2
    refill_ms: float = 4.0  # after a batch, wait up to this long for its callers to come back (0: off)
    max_image_pixels: int = imaging.DEFAULT_MAX_PIXELS

    @property
    def intra_op_threads(self) -> int:
        return _per_core(self.threads)

    @property
    def inference_workers(self) -> int:
        return _per_core(self.workers)


def _per_core(setting: int) -> int:
    """A thread count option: itself when set, else one per CPU core, at most 4."""
    return setting if setting > 0 else max(1, min(4, os.cpu_count() or 1))


@dataclass
class Deployment:
    """What one endpoint config puts in service: the model, its shape, and the capture writer."""

    config_name: str
    classifier: Any  # sconeflow.model.artifact.OnnxClassifier
    size: tuple[int, int]  # (width, height)
    resize: str
    classes_header: str
    capture: CaptureWriter | None
    capture_config: DataCaptureConfig
    inflight: int = 0  # requests using this deployment (event-loop thread only)


def load_deployment(
    settings: Settings,
    endpoint: str,
    config_name: str,
    options: ServingOptions,
    current: Deployment | None = None,
) -> Deployment:
    """Load the config's model (and open its capture writer); raises ModelLoadError with the reason."""
    from sconeflow.endpoint.registry import EndpointRegistry
    from sconeflow.endpoint.runtime import load_serving_classifier
    from sconeflow.model.artifact import resolve_model
    from sconeflow.store import open_store

    registry = EndpointRegistry(settings)
    config = registry.config(config_name)
    model = registry.model(config.model_name)
    try:
        resolved = resolve_model(settings, model.model_data_url)
        classifier = load_serving_classifier(
            resolved.data,
            intra_op_threads=options.intra_op_threads,
            allow_spinning=options.allow_spinning,
            spin_max_batch=options.spin_max_batch,
            workers=options.inference_workers,
        )
        _warm_up(classifier, options.max_batch)
    except SconeflowError as exc:
        raise ModelLoadError(f"model {model.name} ({model.source_ref}) cannot be loaded: {exc}") from exc
    except Exception as exc:  # onnxruntime and numpy raise untyped errors on a broken graph
        raise ModelLoadError(f"model {model.name} ({model.source_ref}) cannot be loaded: {exc!r}") from exc
    _, height, width = classifier.input_shape
    capture = None
    if current is not None and current.capture is not None and current.capture_config == config.data_capture:
        capture = current.capture  # same capture settings: keep writing the same files
    elif config.data_capture.enable_capture:
        capture = CaptureWriter(
            open_store(settings.resolved_store_uri),
            endpoint,
            config.data_capture,
            default_bucket=settings.bucket,
        )
    return Deployment(
        config_name=config.name,
        classifier=classifier,
        size=(width, height),
        resize=getattr(classifier, "resize_method", "bilinear"),
        classes_header=json.dumps(list(classifier.classes)),
        capture=capture,
        capture_config=config.data_capture,
    )


def _warm_up(classifier: Any, max_batch: int) -> None:
    import numpy as np

    c, h, w = classifier.input_shape
    for n in sorted({1, min(max_batch, 2), min(max_batch, 8), max_batch}):  # both sessions
        classifier.predict_proba(np.zeros((n, h, w, c), dtype=np.uint8))


class _Invocation:
    """What ``early`` learned from an invocation's headers (carried to ``handle`` on the request)."""

    __slots__ = ("container", "content_type", "custom", "inference_id", "request_id", "started")

    def __init__(
        self,
        started: float,
        request_id: str,
        content_type: str,
        inference_id: str | None,
        custom: str | None,
        container: bool,
    ) -> None:
        self.started = started
        self.container = container  # POST /invocations: answer errors as the container, not the runtime API
        self.request_id = request_id
        self.content_type = content_type
        self.inference_id = inference_id
        self.custom = custom


class EndpointApp:
    """The endpoint's request handling (routes, checks, decode, batching, capture, metrics).

    Speaks :class:`~sconeflow.endpoint.httpserver.Request` / ``Response`` values and never parses HTTP:
    :mod:`sconeflow.endpoint.httpserver` does that and holds no endpoint state.
    """

    max_body = imaging.MAX_PAYLOAD_BYTES  # request bytes kept; a larger body is refused, never buffered

    def __init__(
        self, settings: Settings, name: str, deployment: Deployment, options: ServingOptions
    ) -> None:
        self.settings = settings
        self.name = name
        self.deployment = deployment
        self.options = options
        self.metrics = EndpointMetrics(name, VARIANT_NAME)
        self.batcher = MicroBatcher(
            max_batch=options.max_batch,
            max_wait=options.max_wait_ms / 1000.0,
            max_queue=options.max_queue,
            refill_wait=options.refill_ms / 1000.0,
            workers=options.inference_workers,
            on_batch=self.metrics.observe_batch,
        )
        self._decoder = ThreadPoolExecutor(max_workers=2, thread_name_prefix="decode")
        self._reload_lock = asyncio.Lock()
        self._retired: list[CaptureWriter] = []
        self._ready = True
        self._invocations_path = f"/endpoints/{name}/invocations"
        self.metrics.add_gauge(
            "sconeflow_queue_depth", "Requests queued or in the running batch.", self._depth
        )
        self.metrics.add_gauge(
            "sconeflow_capture_queue_depth", "Capture records waiting.", self._capture_queued
        )
        self.metrics.add_counter(
            "sconeflow_capture_records_written",
            "Capture records written to the store.",
            self._capture_written,
        )
        self.metrics.add_counter(
            "sconeflow_capture_records_dropped",
            "Capture records dropped (writer queue full).",
            self._capture_dropped,
        )
        self.metrics.add_counter(
            "sconeflow_capture_write_errors",
            "Capture file writes the store refused (the records are kept and retried).",
            self._capture_errors,
        )

    # -- metrics readers ------------------------------------------------------------------------
    def _writers(self) -> list[CaptureWriter]:
        current = self.deployment.capture
        return [*self._retired, *([current] if current is not None else [])]

    def _depth(self) -> float:
        return self.batcher.depth

    def _capture_queued(self) -> float:
        return sum(w.queued for w in self._writers())

    def _capture_written(self) -> float:
        return sum(w.written for w in self._writers())

    def _capture_dropped(self) -> float:
        return sum(w.dropped for w in self._writers())

    def _capture_errors(self) -> float:
        return sum(w.errors for w in self._writers())

    # -- routing ----------------------------------------------------------------------------------
    def _invocation_target(self, method: str, path: str) -> str | None:
        """The endpoint name an invocation addresses ("" for the container's /invocations), else None."""
        if method != "POST":
            return None
        if path == "/invocations" or path == self._invocations_path:
            return ""
        if path.startswith("/endpoints/") and path.endswith("/invocations"):
            return path[len("/endpoints/") : -len("/invocations")]
        return None

    def early(self, request: Request) -> Response | None:
        """Header-only checks of an invocation, before its body is read (throttling costs microseconds)."""
        target = self._invocation_target(request.method, request.path)
        if target is None:
            return None
        started = time.perf_counter()
        request_id = new_uuid4()
        headers = request.headers
        try:
            if target and target != self.name:
                raise ValidationError(f"Endpoint {target} of account {self.settings.account} not found.")
            if "x-amzn-sagemaker-target-model" in headers:  # every local endpoint serves one model
                raise ValidationError(
                    f"Endpoint {self.name} is not a multi-model endpoint and does not support target model "
                    "header."
                )
            variant = headers.get("x-amzn-sagemaker-target-variant")
            if variant is not None and variant != VARIANT_NAME:  # one production variant per local endpoint
                raise ValidationError(
                    f"Variant {variant} is not a production variant of endpoint {self.name}: "
                    f"its only variant is {VARIANT_NAME}."
                )
            # The runtime API's own checks first: SageMaker refuses these before any container sees them.
            _check_header_lengths(headers)
            content_type = headers.get("content-type")
            length_text = headers.get("content-length")
            length = int(length_text) if length_text and length_text.isdigit() else None
            imaging.check_length(length)
            inference_id = headers.get("x-amzn-sagemaker-inference-id")
            if inference_id is not None and not 1 <= len(inference_id) <= MAX_INFERENCE_ID:
                raise ValidationError(f"InferenceId must be 1 to {MAX_INFERENCE_ID} characters")
            custom = headers.get("x-amzn-sagemaker-custom-attributes")
            if custom is not None and len(custom) > MAX_CUSTOM_ATTRIBUTES:
                raise ValidationError(f"CustomAttributes must be at most {MAX_CUSTOM_ATTRIBUTES} characters")
            if self.batcher.depth >= self.batcher.max_queue:
                raise ThrottlingException(
                    f"Rate exceeded: {self.batcher.max_queue} requests are already queued for this endpoint; "
                    "retry later"
                )
            # Then the container's: what it refuses reaches the client as a 424 ModelError.
            imaging.check_content_type(content_type)
            accept = headers.get("accept")
            if accept and accept not in _ACCEPTABLE and not _acceptable(accept):
                raise NotAcceptable(f"Accept {accept} is not supported; the model answers application/json")
        except InvocationError as exc:
            return self._failed(exc, request_id, started, container=request.path == "/invocations")
        request.state = _Invocation(
            started, request_id, content_type or "", inference_id, custom, request.path == "/invocations"
        )
        return None

    def handle(self, request: Request, respond: Respond) -> None:
        method = request.method
        path = request.path
        if isinstance(request.state, _Invocation):
            self._invoke(request, respond)
        elif path == "/ping" and method in ("GET", "HEAD"):
            respond(Response(200 if self._ready else 503, b"", TEXT_TYPE))
        elif path == "/metrics" and method == "GET":
            respond(Response(200, self.metrics.render().encode(), "text/plain; version=0.0.4"))
        elif path == "/-/reload" and method == "POST":
            asyncio.get_running_loop().create_task(self._reload(request, respond))
        elif path == "/-/info" and method == "GET":
            info = {
                "EndpointName": self.name,
                "EndpointConfigName": self.deployment.config_name,
                "Classes": list(self.deployment.classifier.classes),
                "Pid": os.getpid(),
                "TorchLoaded": "torch" in sys.modules,  # serving must never need PyTorch
                "OnnxRuntimeThreads": self.options.intra_op_threads,
                "InferenceWorkers": self.options.inference_workers,
                "HttpServer": "sconeflow.endpoint.httpserver",
                "EventLoop": type(asyncio.get_running_loop()).__module__,
            }
            respond(Response(200, json.dumps(info).encode()))
        else:
            respond(error_response(ValidationError(f"No route for {method} {path}"), new_uuid4(), status=404))

    def shutdown(self) -> None:
        """Finish queued inference, then write every accepted capture record."""
        self._ready = False
        self.batcher.close()
        for writer in self._writers():
            writer.close()
        self._decoder.shutdown(wait=False)

    # -- invocations ----------------------------------------------------------------------------
    def _failed(
        self, exc: InvocationError, request_id: str, started: float, *, container: bool = False
    ) -> Response:
        self.metrics.observe_request(exc.status, None, (time.perf_counter() - started) * 1e6)
        if container and isinstance(exc, ModelError):
            return container_error_response(exc, request_id)
        return error_response(exc, request_id, endpoint=self.name, settings=self.settings)

    def _invoke(self, request: Request, respond: Respond) -> None:
        call: _Invocation = request.state
        body = request.body
        if request.body_size > self.max_body:  # a chunked body (no Content-Length) over the limit
            respond(
                self._failed(
                    ValidationError(
                        f"Request payload of {request.body_size} bytes exceeds the maximum of "
                        f"{imaging.MAX_PAYLOAD_BYTES} bytes (6 MiB)"
                    ),
                    call.request_id,
                    call.started,
                    container=call.container,
                )
            )
            return
        deployment = self.deployment
        deployment.inflight += 1
        if len(body) <= INLINE_DECODE_BYTES:
            try:
                image = imaging.decode(
                    body, deployment.size, resize=deployment.resize, max_pixels=self.options.max_image_pixels
                )
            except Exception as exc:
                self._finish_error(exc, call, deployment, respond)
                return
            self._submit(request, respond, deployment, image)
            return
        future = asyncio.get_running_loop().run_in_executor(
            self._decoder,
            functools.partial(
                imaging.decode,
                body,
                deployment.size,
                resize=deployment.resize,
                max_pixels=self.options.max_image_pixels,
            ),
        )

        def decoded(done: asyncio.Future[Any]) -> None:
            exc = done.exception()
            if exc is not None:
                self._finish_error(exc, call, deployment, respond)
            else:
                self._submit(request, respond, deployment, done.result())

        future.add_done_callback(decoded)

    def _submit(self, request: Request, respond: Respond, deployment: Deployment, image: Any) -> None:
        call: _Invocation = request.state

        def done(value: Any, ok: bool) -> None:
            if not ok:
                self._finish_error(value, call, deployment, respond)
                return
            try:
                output = json.dumps(value.probabilities.tolist()).encode()
                headers = [
                    ("x-Amzn-Invoked-Production-Variant", VARIANT_NAME),
                    ("x-amzn-RequestId", call.request_id),
                    ("X-Sconeflow-Classes", deployment.classes_header),
                ]
                if call.custom is not None:
                    headers.append(("X-Amzn-SageMaker-Custom-Attributes", call.custom))
            except Exception as exc:
                self._finish_error(exc, call, deployment, respond)
                return
            try:
                respond(Response(200, output, JSON_TYPE, headers))
                self._capture(deployment, request.body, call.content_type, output, call.inference_id)
                model_us = value.model_seconds * 1e6
                self.metrics.observe_request(200, model_us, (time.perf_counter() - call.started) * 1e6)
            except Exception:  # the 200 is already answered; only the log can tell
                log.exception("after answering an invocation")
            finally:
                deployment.inflight -= 1  # after the capture call: a retired writer closes only then

        try:
            self.batcher.enqueue(deployment.classifier, image, done)
        except Exception as exc:
            self._finish_error(exc, call, deployment, respond)

    def _finish_error(
        self, exc: BaseException, call: _Invocation, deployment: Deployment, respond: Respond
    ) -> None:
        """Answer a failed invocation: its own error if it is one, else a ModelError (never a 5xx)."""
        deployment.inflight -= 1
        if not isinstance(exc, InvocationError):
            log.error("invocation failed", exc_info=exc)
            exc = ModelError(
                f'Received server error (500) from primary with message "{type(exc).__name__}"',
                original_status=500,
                original_message=type(exc).__name__,
            )
        respond(self._failed(exc, call.request_id, call.started, container=call.container))

    def _capture(
        self, deployment: Deployment, body: bytes, content_type: str, output: bytes, inference_id: str | None
    ) -> None:
        writer = deployment.capture
        if writer is None:
            return
        percent = deployment.capture_config.initial_sampling_percentage
        if percent < 100 and random.random() * 100 >= percent:
            return
        # Positional and without an eventId: the writer thread assigns it (the event loop stays lean).
        writer.offer(CaptureEvent(body, content_type, output, JSON_TYPE, None, time.time(), inference_id))

    # -- model swap -------------------------------------------------------------------------------
    async def _reload(self, request: Request, respond: Respond) -> None:
        try:
            config_name = str(json.loads(request.body or b"{}")["EndpointConfigName"])
        except (ValueError, KeyError, TypeError):
            respond(Response(400, b'{"message":"send {\\"EndpointConfigName\\": NAME}"}'))
            return
        async with self._reload_lock:
            loop = asyncio.get_running_loop()
            try:
                fresh = await loop.run_in_executor(
                    None,
                    load_deployment,
                    self.settings,
                    self.name,
                    config_name,
                    self.options,
                    self.deployment,
                )
            except SconeflowError as exc:
                respond(Response(409, json.dumps({"message": f"{exc.name}: {exc}"}).encode()))
                return
            except Exception as exc:
                log.exception("reload failed")
                respond(Response(409, json.dumps({"message": f"reload failed: {exc!r}"}).encode()))
                return
            old = self.deployment
            self.deployment = fresh  # requests from now on use the new model
            if old.capture is not None and old.capture is not fresh.capture:
                self._retired.append(old.capture)
                threading.Thread(target=_retire, args=(old,), name="capture-retire", daemon=True).start()
        log.warning("endpoint %s now serves %s", self.name, config_name)
        respond(Response(200, json.dumps({"EndpointConfigName": config_name}).encode()))


def _retire(old: Deployment, timeout: float = 120.0) -> None:
    """Close a replaced deployment's capture writer once its last request has been captured."""
    deadline = time.monotonic() + timeout
    while old.inflight > 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    if old.capture is not None:
        old.capture.close()


# InvokeEndpoint's modeled limits (botocore sagemaker-runtime: ContentType and Accept max 1024)
_HEADER_LIMITS = (("content-type", "contentType", 1024), ("accept", "accept", 1024))


def _check_header_lengths(headers: dict[str, str]) -> None:
    """ValidationError (AWS's constraint wording) for a ContentType or Accept over its modeled length."""
    for header, member, limit in _HEADER_LIMITS:
        value = headers.get(header)
        if value is not None and len(value) > limit:
            raise ValidationError(
                f"1 validation error detected: Value at '{member}' failed to satisfy constraint: "
                f"Member must have length less than or equal to {limit}"
            )


def _acceptable(accept: str) -> bool:
    """True when an Accept header (possibly a list with q-values) admits application/json.

    The most specific range that matches decides (RFC 9110 12.5.1), and ``q=0`` means "not
    acceptable": ``application/json;q=0, */*`` refuses JSON. Empty list elements are ignored.
    """
    quality: dict[str, float] = {}
    for part in accept.split(","):
        kind, *params = (item.strip().lower() for item in part.split(";"))
        if kind:
            quality.setdefault(kind, _quality(params))
    for kind in ("application/json", "application/*", "*/*"):
        if kind in quality:
            return quality[kind] > 0
    return False


def _quality(params: list[str]) -> float:
    """The ``q`` of a media range's parameters (1 when absent or unreadable)."""
    for param in params:
        name, _, value = param.partition("=")
        if name.strip() == "q":
            try:
                return float(value)
            except ValueError:
                return 1.0
    return 1.0


def error_body(
    exc: InvocationError, *, endpoint: str | None = None, settings: Settings | None = None
) -> dict[str, Any]:
    """The JSON body of a runtime API error (ModelError carries its modeled members)."""
    message = str(exc)
    if isinstance(exc, ModelError):
        region = settings.region if settings else "us-east-1"
        account = settings.account if settings else "123456789012"
        group = f"/aws/sagemaker/Endpoints/{endpoint}"
        client_side = 400 <= exc.original_status < 500  # 0: the container never answered (a server error)
        error_code = "CLIENT_ERROR_FROM_MODEL" if client_side else "SERVER_ERROR_FROM_MODEL"
        if exc.original_status:  # the container answered: SageMaker points at its CloudWatch log group
            message += (
                f". See https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}"
                f"#logEventViewer:group={group} in account {account} for more information."
            )
        return {
            "ErrorCode": error_code,
            "LogStreamArn": f"arn:aws:logs:{region}:{account}:log-group:{group}",
            "Message": message,
            "OriginalMessage": exc.original_message,
            "OriginalStatusCode": exc.original_status,
        }
    return {"message": message}


def error_response(
    exc: InvocationError,
    request_id: str,
    *,
    status: int | None = None,
    endpoint: str | None = None,
    settings: Settings | None = None,
) -> Response:
    """The runtime API's error wire shape: ``x-amzn-ErrorType`` (boto3 raises the modeled exception)."""
    body = json.dumps(error_body(exc, endpoint=endpoint, settings=settings)).encode()
    headers = (("x-amzn-ErrorType", exc.code), ("x-amzn-RequestId", request_id))
    return Response(status or exc.status, body, JSON_TYPE, headers)


def container_error_response(exc: ModelError, request_id: str) -> Response:
    """An error as the inference container answers ``POST /invocations``: its own status and message.

    SageMaker wraps exactly this into the runtime API's 424 ModelError (``OriginalStatusCode``,
    ``OriginalMessage``); a caller of the container contract sees it unwrapped.
    """
    body = json.dumps({"message": exc.original_message}).encode()
    return Response(exc.original_status or 500, body, JSON_TYPE, (("x-amzn-RequestId", request_id),))


# -- process entry ----------------------------------------------------------------------------------


def serve(
    settings: Settings,
    name: str,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    options: ServingOptions | None = None,
) -> None:
    """Load the endpoint's current config and serve it until SIGTERM/SIGINT (then flush capture)."""
    from sconeflow.endpoint.registry import EndpointRegistry

    registry = EndpointRegistry(settings)
    endpoint = registry.get(name)
    config = registry.config(endpoint.config_name)
    options = options or ServingOptions(**{k: v for k, v in config.serving.items() if k in _OPTION_FIELDS})
    try:
        deployment = load_deployment(settings, name, config.name, options)
    except ModelLoadError as exc:
        registry.set_status(name, FAILED, str(exc))
        raise
    app = EndpointApp(settings, name, deployment, options)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    # The event loop shares the GIL with the inference and capture threads: hand it over every 1 ms
    # (default 5 ms) so a busy capture writer never holds a request back for long.
    sys.setswitchinterval(0.001)
    # Everything loaded so far (model, numpy, PIL, boto-free stdlib) lives for the whole process: keep it
    # out of the cyclic collector's sweeps, which would otherwise pause the loop in the middle of a batch.
    gc.collect()
    gc.freeze()
    # The standard asyncio loop, not uvloop: under 10x overload uvloop accepted new connections only a few
    # at a time while it answered the old ones (some clients' first request waited 1-5 s in the accept
    # queue), and it served the same load slower (docs/endpoint.md, session 6).
    runner = asyncio.Runner()
    with runner:
        runner.run(_serve_until_signalled(app, host, port))


async def _serve_until_signalled(app: EndpointApp, host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    server = HttpServer(app, keep_alive_timeout=75.0)
    await server.start(host, port)
    log.info("endpoint %s serving on http://%s:%d", app.name, host, port)
    await stop.wait()
    await server.shutdown(timeout=25.0)  # answer every request in flight first ...
    await loop.run_in_executor(None, app.shutdown)  # ... then finish the queue and flush capture


_OPTION_FIELDS = {
    "max_batch",
    "max_wait_ms",
    "max_queue",
    "threads",
    "workers",
    "max_image_pixels",
    "allow_spinning",
    "spin_max_batch",
    "refill_ms",
}
