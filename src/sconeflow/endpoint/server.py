"""The endpoint server: one process per endpoint, like a SageMaker inference container.

A bare ASGI application on uvicorn (httptools + uvloop when installed) answering:

- ``GET /ping``: 200 once the model is loaded (the container contract's health check);
- ``POST /invocations`` (container contract) and ``POST /endpoints/{name}/invocations`` (the runtime
  API's REST form, so boto3 ``sagemaker-runtime`` with ``endpoint_url=<this server>`` works);
- ``GET /metrics``: Prometheus text (see :mod:`sconeflow.endpoint.metrics`);
- ``POST /-/reload``: load another endpoint config's model and swap it in without failing a request.

Errors use the runtime API's wire shape (``x-amzn-ErrorType`` + JSON ``message``), so boto3 raises the
modeled exceptions. Bad input is always a 4xx; a model failure is a 424 ModelError, as SageMaker reports a
container error; nothing a client sends can crash the process or produce a 5xx.

No torch here: the model runs on onnxruntime through :mod:`sconeflow.model.artifact`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import signal
import sys
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
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
    ThrottlingException,
    ValidationError,
)
from sconeflow.endpoint.metrics import EndpointMetrics
from sconeflow.endpoint.models import FAILED, VARIANT_NAME, DataCaptureConfig
from sconeflow.errors import SconeflowError

log = logging.getLogger(__name__)

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

INLINE_DECODE_BYTES = 64 * 1024  # larger bodies are decoded on a worker thread, off the event loop
MAX_INFERENCE_ID = 64
MAX_CUSTOM_ATTRIBUTES = 1024
JSON_TYPE = b"application/json"
_ids = random.Random()  # seeded from os.urandom; ids are not secrets, and no syscall (nor GIL hand-off)


def _new_id() -> str:
    """A lowercase UUID4 string (request ids, capture eventIds) without a system call per request."""
    return str(uuid.UUID(int=_ids.getrandbits(128), version=4))


_ACCEPTABLE = {"", "*/*", "application/*", "application/json"}


@dataclass(frozen=True)
class ServingOptions:
    max_batch: int = 64
    max_wait_ms: float = 0.0
    max_queue: int = 256
    threads: int = 0  # 0: one per CPU core, at most 4
    allow_spinning: bool = False  # ONNX Runtime intra-op spinning (off: frees the cores for the event loop)
    max_image_pixels: int = imaging.DEFAULT_MAX_PIXELS

    @property
    def intra_op_threads(self) -> int:
        return self.threads if self.threads > 0 else max(1, min(4, os.cpu_count() or 1))


@dataclass
class Deployment:
    """What one endpoint config puts in service: the model, its shape, and the capture writer."""

    config_name: str
    classifier: Any  # sconeflow.model.artifact.OnnxClassifier
    size: tuple[int, int]  # (width, height)
    resize: str
    classes_header: bytes
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
            resolved.data, intra_op_threads=options.intra_op_threads, allow_spinning=options.allow_spinning
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
        classes_header=json.dumps(list(classifier.classes)).encode("ascii"),
        capture=capture,
        capture_config=config.data_capture,
    )


def _warm_up(classifier: Any, max_batch: int) -> None:
    import numpy as np

    c, h, w = classifier.input_shape
    for n in (1, min(max_batch, 8), max_batch):
        classifier.predict_proba(np.zeros((n, h, w, c), dtype=np.uint8))


class EndpointApp:
    """The ASGI application of one endpoint."""

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
            on_batch=self.metrics.observe_batch,
        )
        self._decoder = ThreadPoolExecutor(max_workers=2, thread_name_prefix="decode")
        self._reload_lock = asyncio.Lock()
        self._retired: list[CaptureWriter] = []
        self._ready = True
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

    # -- ASGI -------------------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self._lifespan(receive, send)
            return
        if kind != "http":
            return
        method = scope["method"]
        path = scope["path"]
        if path == "/ping" and method in ("GET", "HEAD"):
            await _respond(send, 200 if self._ready else 503, b"", b"text/plain")
        elif method == "POST" and path == "/invocations":
            await self._invoke(scope, receive, send, None)
        elif method == "POST" and path.startswith("/endpoints/") and path.endswith("/invocations"):
            await self._invoke(scope, receive, send, path[len("/endpoints/") : -len("/invocations")])
        elif path == "/metrics" and method == "GET":
            await _respond(send, 200, self.metrics.render().encode(), b"text/plain; version=0.0.4")
        elif path == "/-/reload" and method == "POST":
            await self._reload(receive, send)
        elif path == "/-/info" and method == "GET":
            info = {
                "EndpointName": self.name,
                "EndpointConfigName": self.deployment.config_name,
                "Classes": list(self.deployment.classifier.classes),
                "Pid": os.getpid(),
                "TorchLoaded": "torch" in sys.modules,  # serving must never need PyTorch
                "OnnxRuntimeThreads": self.options.intra_op_threads,
            }
            await _respond(send, 200, json.dumps(info).encode(), JSON_TYPE)
        else:
            await _error(send, ValidationError(f"No route for {method} {path}"), _new_id(), status=404)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await asyncio.get_running_loop().run_in_executor(None, self.shutdown)
                await send({"type": "lifespan.shutdown.complete"})
                return

    def shutdown(self) -> None:
        """Finish queued inference, then write every accepted capture record."""
        self._ready = False
        self.batcher.close()
        for writer in self._writers():
            writer.close()
        self._decoder.shutdown(wait=False)

    # -- invocations ----------------------------------------------------------------------------
    async def _invoke(self, scope: Scope, receive: Receive, send: Send, path_name: str | None) -> None:
        started = time.perf_counter()
        request_id = _new_id()
        headers = _headers(scope)
        model_us: float | None = None
        status = 200
        try:
            if path_name is not None and path_name != self.name:
                raise ValidationError(f"Endpoint {path_name} of account {self.settings.account} not found.")
            content_type = headers.get("content-type")
            length_text = headers.get("content-length")
            length = int(length_text) if length_text and length_text.isdigit() else None
            imaging.check_request(content_type, length)
            inference_id = headers.get("x-amzn-sagemaker-inference-id")
            if inference_id is not None and not 1 <= len(inference_id) <= MAX_INFERENCE_ID:
                raise ValidationError(f"InferenceId must be 1 to {MAX_INFERENCE_ID} characters")
            custom = headers.get("x-amzn-sagemaker-custom-attributes")
            if custom is not None and len(custom) > MAX_CUSTOM_ATTRIBUTES:
                raise ValidationError(f"CustomAttributes must be at most {MAX_CUSTOM_ATTRIBUTES} characters")
            accept = headers.get("accept") or ""
            if not _acceptable(accept):
                raise ModelError(
                    f'Received client error (406) from primary with message "Accept {accept} is not '
                    'supported; the model answers application/json"',
                    original_status=406,
                    original_message=f"Accept {accept} is not supported; the model answers application/json",
                )
            if self.batcher.depth >= self.batcher.max_queue:
                raise ThrottlingException(
                    f"Rate exceeded: {self.batcher.max_queue} requests are already queued for this endpoint; "
                    "retry later"
                )
            body = await _read_body(receive, imaging.MAX_PAYLOAD_BYTES)
            deployment = self.deployment
            deployment.inflight += 1
            try:
                output, model_us = await self._predict(deployment, body)
                response_headers = [
                    (b"content-type", JSON_TYPE),
                    (b"x-amzn-invoked-production-variant", VARIANT_NAME.encode()),
                    (b"x-amzn-requestid", request_id.encode()),
                    (b"x-sconeflow-classes", deployment.classes_header),
                    (b"content-length", str(len(output)).encode()),
                ]
                if custom is not None:
                    response_headers.append((b"x-amzn-sagemaker-custom-attributes", custom.encode("latin-1")))
                await send({"type": "http.response.start", "status": 200, "headers": response_headers})
                await send({"type": "http.response.body", "body": output})
                self._capture(deployment, body, content_type or "", output, inference_id)
            finally:
                deployment.inflight -= 1  # after the capture call: a retired writer closes only then
        except InvocationError as exc:
            status = exc.status
            await _error(send, exc, request_id, endpoint=self.name, settings=self.settings)
        except Exception as exc:  # never a 5xx or a crash: report as the model's server error
            log.exception("invocation failed")
            status = 424
            error = ModelError(
                f'Received server error (500) from primary with message "{type(exc).__name__}"',
                original_status=500,
                original_message=type(exc).__name__,
            )
            await _error(send, error, request_id, endpoint=self.name, settings=self.settings)
        self.metrics.observe_request(status, model_us, (time.perf_counter() - started) * 1e6)

    async def _predict(self, deployment: Deployment, body: bytes) -> tuple[bytes, float]:
        """Decode (off the loop when large), queue for the model, format the built-in algorithm's JSON."""
        if len(body) <= INLINE_DECODE_BYTES:
            image = imaging.decode(
                body, deployment.size, resize=deployment.resize, max_pixels=self.options.max_image_pixels
            )
        else:
            image = await asyncio.get_running_loop().run_in_executor(
                self._decoder,
                lambda: imaging.decode(
                    body, deployment.size, resize=deployment.resize, max_pixels=self.options.max_image_pixels
                ),
            )
        prediction = await self.batcher.submit(deployment.classifier, image)
        return json.dumps(prediction.probabilities.tolist()).encode(), prediction.model_seconds * 1e6

    def _capture(
        self, deployment: Deployment, body: bytes, content_type: str, output: bytes, inference_id: str | None
    ) -> None:
        writer = deployment.capture
        if writer is None:
            return
        percent = deployment.capture_config.initial_sampling_percentage
        if percent < 100 and random.random() * 100 >= percent:
            return
        writer.offer(
            CaptureEvent(
                input_body=body,
                input_content_type=content_type,
                output_body=output,
                output_content_type="application/json",
                event_id=_new_id(),
                inference_time=time.time(),
                inference_id=inference_id,
            )
        )

    # -- model swap -------------------------------------------------------------------------------
    async def _reload(self, receive: Receive, send: Send) -> None:
        body = await _read_body(receive, 64 * 1024)
        try:
            config_name = str(json.loads(body or b"{}")["EndpointConfigName"])
        except (ValueError, KeyError, TypeError):
            await _respond(send, 400, b'{"message":"send {\\"EndpointConfigName\\": NAME}"}', JSON_TYPE)
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
                payload = json.dumps({"message": f"{exc.name}: {exc}"}).encode()
                await _respond(send, 409, payload, JSON_TYPE)
                return
            old = self.deployment
            self.deployment = fresh  # requests from now on use the new model
            if old.capture is not None and old.capture is not fresh.capture:
                self._retired.append(old.capture)
                threading.Thread(target=_retire, args=(old,), name="capture-retire", daemon=True).start()
        log.warning("endpoint %s now serves %s", self.name, config_name)
        await _respond(send, 200, json.dumps({"EndpointConfigName": config_name}).encode(), JSON_TYPE)


def _retire(old: Deployment, timeout: float = 120.0) -> None:
    """Close a replaced deployment's capture writer once its last request has been captured."""
    deadline = time.monotonic() + timeout
    while old.inflight > 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    if old.capture is not None:
        old.capture.close()


def _acceptable(accept: str) -> bool:
    """True when an Accept header (possibly a list with q-values) admits application/json."""
    kinds = [part.split(";", 1)[0].strip().lower() for part in accept.split(",")]
    return any(kind in _ACCEPTABLE for kind in kinds)


# -- HTTP helpers ---------------------------------------------------------------------------------


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}


async def _read_body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ValidationError("The client closed the connection before the body was complete")
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise ValidationError(
                    f"Request payload exceeds the maximum of {limit} bytes (6 MiB)"
                    if limit == imaging.MAX_PAYLOAD_BYTES
                    else f"Request body exceeds {limit} bytes"
                )
            chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def _respond(send: Send, status: int, body: bytes, content_type: bytes) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def error_body(
    exc: InvocationError, *, endpoint: str | None = None, settings: Settings | None = None
) -> dict[str, Any]:
    """The JSON body of a runtime API error (ModelError carries its modeled members)."""
    message = str(exc)
    if isinstance(exc, ModelError):
        region = settings.region if settings else "us-east-1"
        account = settings.account if settings else "123456789012"
        group = f"/aws/sagemaker/Endpoints/{endpoint}"
        error_code = "CLIENT_ERROR_FROM_MODEL" if exc.original_status < 500 else "SERVER_ERROR_FROM_MODEL"
        return {
            "ErrorCode": error_code,
            "LogStreamArn": f"arn:aws:logs:{region}:{account}:log-group:{group}",
            "Message": message,
            "OriginalMessage": exc.original_message,
            "OriginalStatusCode": exc.original_status,
        }
    return {"message": message}


async def _error(
    send: Send,
    exc: InvocationError,
    request_id: str,
    *,
    status: int | None = None,
    endpoint: str | None = None,
    settings: Settings | None = None,
) -> None:
    body = json.dumps(error_body(exc, endpoint=endpoint, settings=settings)).encode()
    headers = [
        (b"content-type", JSON_TYPE),
        (b"x-amzn-errortype", exc.code.encode()),
        (b"x-amzn-requestid", request_id.encode()),
        (b"content-length", str(len(body)).encode()),
    ]
    try:
        await send({"type": "http.response.start", "status": status or exc.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
    except Exception:  # the client went away; nothing to answer
        log.debug("could not send the error response", exc_info=True)


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
    import uvicorn

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
    try:
        import uvloop  # noqa: F401

        loop = "uvloop"
    except ImportError:
        loop = "asyncio"
    try:
        import httptools  # noqa: F401

        http = "httptools"
    except ImportError:
        http = "h11"
    config_ = uvicorn.Config(
        app,
        host=host,
        port=port,
        loop=loop,
        http=http,
        lifespan="on",
        access_log=False,
        log_level="warning",
        backlog=2048,
        timeout_keep_alive=75,
        timeout_graceful_shutdown=25,
    )
    server = uvicorn.Server(config_)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    # The event loop shares the GIL with the inference and capture threads: hand it over every 1 ms
    # (default 5 ms) so a busy capture writer never holds a request back for long.
    sys.setswitchinterval(0.001)
    server.run()


_OPTION_FIELDS = {"max_batch", "max_wait_ms", "max_queue", "threads", "max_image_pixels", "allow_spinning"}
