"""``sconeflow demo``: the classic Scones Unlimited workflow end to end, on the stages' Python APIs.

Steps: prepare the data -> train -> evaluate -> deploy the endpoint (100% capture) -> start the gateway
-> register the Lambdas -> create/update the state machine -> run N executions on random test images ->
draw one succeeded and one threshold-failed execution -> build the monitor baseline and report.

Every step reuses what exists: the prepared dataset, a Completed training job with the same settings that
is newer than the dataset, an InService endpoint serving that model, the running gateway, the state
machine (updated only when the definition changed). A :class:`Reporter` receives step and progress events
(the CLI draws them with Rich); the library itself only logs.
"""

from __future__ import annotations

import json
import logging
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from sconeflow.config import Settings
from sconeflow.workflow.errors import ExecutionsTimedOut, InvalidDemoOption

log = logging.getLogger(__name__)

DEFAULT_ENDPOINT = "scones-unlimited-endpoint"
DEFAULT_STATE_MACHINE = "scones-unlimited-workflow"
DEFAULT_EXECUTIONS = 30
DEFAULT_THRESHOLD = 0.93
DEFAULT_PORT = 4566
THRESHOLD_ERROR = "ThresholdConfidenceNotMet"
DOWNLOAD_SOURCE_NAME = "cifar-100-python.tar.gz"
EXECUTION_TIMEOUT_S = 180.0
CAPTURE_WAIT_S = 20.0

STEPS = (
    ("prepare", "Prepare the data"),
    ("train", "Train the model"),
    ("evaluate", "Evaluate on the test split"),
    ("deploy", "Deploy the endpoint with 100% data capture"),
    ("services", "Start the local services (gateway)"),
    ("lambdas", "Register the three Lambdas"),
    ("state_machine", "Create the state machine"),
    ("executions", "Run the executions on random test images"),
    ("render", "Draw a succeeded and a threshold-failed execution"),
    ("monitor", "Build the monitor baseline and report"),
)


@dataclass(frozen=True)
class DemoOptions:
    source: str | None = None  # tarball or folder; None downloads CIFAR-100
    fast: bool = False
    executions: int = DEFAULT_EXECUTIONS
    threshold: float = DEFAULT_THRESHOLD
    epochs: int | None = None  # overrides the recipe's epochs
    output_dir: Path | None = None  # default <home>/demo
    endpoint_name: str = DEFAULT_ENDPOINT
    state_machine_name: str = DEFAULT_STATE_MACHINE
    port: int = DEFAULT_PORT
    seed: int = 0
    concurrency: int = 4  # executions in flight at once

    def __post_init__(self) -> None:
        if self.executions < 1:
            raise InvalidDemoOption(f"--executions must be at least 1, got {self.executions}")
        if not 0.0 < self.threshold <= 1.0:
            raise InvalidDemoOption(f"--threshold must be in (0, 1], got {self.threshold}")
        if self.epochs is not None and self.epochs < 1:
            raise InvalidDemoOption(f"--epochs must be at least 1, got {self.epochs}")
        if self.concurrency < 1:
            raise InvalidDemoOption(f"--concurrency must be at least 1, got {self.concurrency}")
        if not 0 <= self.port <= 65535:
            raise InvalidDemoOption(f"--port must be 0 to 65535, got {self.port}")


class Reporter:
    """Receives the demo's events; the base class ignores them (the CLI draws them)."""

    def step_started(self, index: int, total: int, key: str, title: str) -> None:
        """A step begins."""

    def step_finished(
        self, index: int, total: int, key: str, title: str, detail: str, seconds: float
    ) -> None:
        """A step ended; ``detail`` says what it did or reused."""

    def progress(self, label: str, done: int, total: int | None) -> None:
        """Progress inside the current step (bytes, images, epochs, executions)."""


@dataclass
class ExecutionOutcome:
    name: str
    arn: str
    key: str
    status: str
    error: str | None = None
    cause: str | None = None
    seconds: float = 0.0
    extra: bool = False  # run after the N random ones to get the missing picture


@dataclass
class DemoSummary:
    home: str
    output_dir: str
    bucket: str
    classes: list[str] = field(default_factory=list)
    images: dict[str, int] = field(default_factory=dict)  # split -> count
    training_job: str = ""
    training_reused: bool = False
    training_seconds: float | None = None
    test_accuracy: float | None = None
    test_images: int = 0
    endpoint: str = ""
    endpoint_url: str = ""
    gateway_url: str = ""
    state_machine_arn: str = ""
    threshold: float = DEFAULT_THRESHOLD
    executions: int = 0
    succeeded: int = 0
    failed_threshold: int = 0
    failed_other: int = 0
    extra_executions: int = 0
    pictures: dict[str, str] = field(default_factory=dict)  # "succeeded"/"failed" -> png path
    missing_pictures: dict[str, str] = field(default_factory=dict)  # kind -> why
    evaluation_png: str = ""
    report_html: str = ""
    report_plots: list[str] = field(default_factory=list)
    captured_records: int = 0
    monitoring_status: str = ""
    violations: int = 0
    baseline_uri: str = ""
    reused: list[str] = field(default_factory=list)
    step_seconds: dict[str, float] = field(default_factory=dict)
    total_seconds: float = 0.0
    files: list[str] = field(default_factory=list)  # every file the demo wrote into output_dir
    failed_step: str = ""  # when the run failed: the step, and the error
    error: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Context:
    """What the steps share."""

    def __init__(self, settings: Settings, options: DemoOptions, reporter: Reporter) -> None:
        from sconeflow.store import open_store

        self.settings = settings
        self.options = options
        self.reporter = reporter
        self.store = open_store(settings.resolved_store_uri)
        self.bucket = settings.bucket
        self.output_dir = (options.output_dir or settings.home / "demo").expanduser().resolve()
        self.summary = DemoSummary(
            home=str(settings.home), output_dir=str(self.output_dir), bucket=self.bucket
        )
        self.summary.threshold = options.threshold
        self.job: Any = None
        self.test_keys: list[str] = []
        self.test_confidence: np.ndarray = np.zeros(0)
        self.machine_arn = ""
        self.outcomes: list[ExecutionOutcome] = []
        self.started = datetime.now(UTC)

    def write(self, name: str, data: bytes | str) -> Path:
        path = self.output_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, str):
            path.write_text(data, encoding="utf-8")
        else:
            path.write_bytes(data)
        self.remember(path)
        return path

    def remember(self, path: Path) -> None:
        text = str(path)
        if text not in self.summary.files:
            self.summary.files.append(text)


def run_demo(settings: Settings, options: DemoOptions, reporter: Reporter | None = None) -> DemoSummary:
    """Run (or re-use) every stage of the workflow; return the summary (also written as summary.json)."""
    from sconeflow.workflow.runs import DemoRuns

    settings.ensure_dirs()
    reporter = reporter or Reporter()
    ctx = _Context(settings, options, reporter)
    ctx.output_dir.mkdir(parents=True, exist_ok=True)
    runs = DemoRuns(settings)
    run_id = runs.start(str(ctx.output_dir))
    steps: dict[str, Callable[[_Context], str]] = {
        "prepare": _prepare,
        "train": _train,
        "evaluate": _evaluate,
        "deploy": _deploy,
        "services": _services,
        "lambdas": _lambdas,
        "state_machine": _state_machine,
        "executions": _executions,
        "render": _render,
        "monitor": _monitor,
    }
    started = time.perf_counter()
    key = ""
    try:
        for index, (key, title) in enumerate(STEPS, start=1):
            reporter.step_started(index, len(STEPS), key, title)
            runs.step(run_id, key)
            t0 = time.perf_counter()
            detail = steps[key](ctx)
            seconds = time.perf_counter() - t0
            ctx.summary.step_seconds[key] = round(seconds, 2)
            reporter.step_finished(index, len(STEPS), key, title, detail, seconds)
            log.info("demo step %s done in %.1f s: %s", key, seconds, detail)
    except BaseException as exc:
        ctx.summary.failed_step = key
        ctx.summary.error = f"{type(exc).__name__}: {exc}"
        ctx.summary.total_seconds = round(time.perf_counter() - started, 2)
        runs.finish(run_id, "Failed", ctx.summary.as_dict())
        raise
    ctx.summary.total_seconds = round(time.perf_counter() - started, 2)
    summary_path = ctx.output_dir / "summary.json"
    ctx.remember(summary_path)
    summary_path.write_text(json.dumps(ctx.summary.as_dict(), indent=2) + "\n", encoding="utf-8")
    runs.finish(run_id, "Completed", ctx.summary.as_dict())
    return ctx.summary


# -- 1. data ------------------------------------------------------------------------------------


def _read_classes_doc(ctx: _Context) -> dict[str, Any] | None:
    from sconeflow.data.dataset import CLASSES_KEY
    from sconeflow.store import NoSuchBucket, NoSuchKey

    try:
        return json.loads(ctx.store.get_object(ctx.bucket, CLASSES_KEY))
    except (NoSuchKey, NoSuchBucket, ValueError):
        return None


def _prepare(ctx: _Context) -> str:
    from sconeflow.data.prepare import DEFAULT_CLASSES, prepare_dataset

    classes = list(DEFAULT_CLASSES)
    existing = _read_classes_doc(ctx)
    if (
        ctx.options.source is None
        and existing is not None
        and existing.get("source") == DOWNLOAD_SOURCE_NAME
        and existing.get("classes") == classes
    ):
        counts = existing.get("counts", {})
        ctx.summary.classes = classes
        ctx.summary.images = {split: sum(c.values()) for split, c in counts.items()}
        ctx.summary.reused.append("dataset")
        return f"reused s3://{ctx.bucket}/ ({_count_text(ctx.summary.images)})"

    def on_progress(phase: str, done: int, total: int | None) -> None:
        ctx.reporter.progress(phase, done, total)

    report = prepare_dataset(ctx.settings, source=ctx.options.source, classes=classes, progress=on_progress)
    ctx.summary.classes = report.classes
    ctx.summary.images = {split: sum(c.values()) for split, c in report.counts.items()}
    what = f"{report.written} written, {report.unchanged} unchanged"
    if report.written == 0:
        ctx.summary.reused.append("dataset")
    return f"s3://{ctx.bucket}/ from {Path(report.source).name}: {_count_text(ctx.summary.images)} ({what})"


def _count_text(images: dict[str, int]) -> str:
    return ", ".join(f"{n} {split}" for split, n in images.items()) + " images"


# -- 2. training --------------------------------------------------------------------------------


def train_config(options: DemoOptions) -> Any:
    """The default recipe, or the short schedule with ``--fast``; ``--epochs`` overrides either."""
    from sconeflow.model.recipe import TrainConfig

    changes: dict[str, Any] = {"bucket": None}
    if options.epochs is not None:
        changes["epochs"] = options.epochs
    return TrainConfig.fast(**changes) if options.fast else TrainConfig(**changes)


def _dataset_modified(ctx: _Context) -> datetime | None:
    from sconeflow.data.dataset import CLASSES_KEY, SPLITS, manifest_key
    from sconeflow.store import StoreError

    stamps = []
    for key in (CLASSES_KEY, *(manifest_key(s) for s in SPLITS)):
        try:
            stamps.append(ctx.store.head_object(ctx.bucket, key).last_modified)
        except StoreError:
            return None
    return max(stamps)


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def find_reusable_job(settings: Settings, bucket: str, config: Any, newer_than: datetime | None) -> Any:
    """The newest Completed job with these hyperparameters on this bucket, trained after the data changed."""
    from sconeflow.errors import SconeflowError
    from sconeflow.model.artifact import resolve_model
    from sconeflow.model.jobs import TrainingJobs

    wanted = config.hyperparameters()
    for job in TrainingJobs(settings).list(status="Completed"):
        if job.bucket != bucket or job.hyperparameters != wanted or not job.model_artifacts:
            continue
        created = _parse_time(job.created_at)
        if newer_than is not None and (created is None or created < newer_than):
            continue
        try:
            resolve_model(settings, job.name)
        except SconeflowError:
            continue
        return job
    return None


def _train(ctx: _Context) -> str:
    config = train_config(ctx.options)
    job = find_reusable_job(ctx.settings, ctx.bucket, config, _dataset_modified(ctx))
    if job is not None:
        ctx.job = job
        ctx.summary.training_job = job.name
        ctx.summary.training_reused = True
        ctx.summary.training_seconds = job.training_seconds
        ctx.summary.reused.append("training job")
        return f"reused training job {job.name} (same settings, newer than the dataset)"
    from sconeflow.model.train import total_epochs, train

    total = total_epochs(config)
    done = 0

    def on_epoch(report: Any) -> None:
        nonlocal done
        done += 1
        ctx.reporter.progress("epochs", done, total)

    ctx.reporter.progress("epochs", 0, total)
    job = train(ctx.settings, config, on_epoch=on_epoch)
    ctx.job = job
    ctx.summary.training_job = job.name
    ctx.summary.training_seconds = job.training_seconds
    recipe = "short schedule (--fast)" if ctx.options.fast else "default recipe"
    seconds = job.training_seconds or 0.0
    return f"training job {job.name}: {recipe}, {total} epochs in {seconds:.0f} s"


# -- 3. evaluation ------------------------------------------------------------------------------


def _evaluate(ctx: _Context) -> str:
    from sconeflow.model.artifact import load_classifier, resolve_model
    from sconeflow.model.dataload import load_split_data
    from sconeflow.model.evaluate import evaluate, render_png

    classifier = load_classifier(resolve_model(ctx.settings, ctx.job.name).data)
    split = load_split_data(ctx.store, ctx.bucket, "test")
    report = evaluate(classifier, split)
    probabilities = classifier.predict_proba(split.images)
    ctx.test_keys = list(split.keys)
    ctx.test_confidence = probabilities.max(axis=1)
    ctx.summary.test_accuracy = float(report.accuracy)
    ctx.summary.test_images = int(report.n)
    ctx.write("evaluation.json", json.dumps(report.as_dict(), indent=2) + "\n")
    png = ctx.write("evaluation.png", render_png(report, title=f"{ctx.job.name} on the test split"))
    ctx.summary.evaluation_png = str(png)
    below = int(np.count_nonzero(ctx.test_confidence < ctx.options.threshold))
    return (
        f"test accuracy {report.accuracy:.2%} on {report.n} images; "
        f"{below} below the {ctx.options.threshold:g} confidence threshold"
    )


# -- 4. endpoint --------------------------------------------------------------------------------


def _deploy(ctx: _Context) -> str:
    from sconeflow.endpoint import registry as endpoints
    from sconeflow.endpoint.models import FAILED, IN_SERVICE

    name = ctx.options.endpoint_name
    reg = endpoints.EndpointRegistry(ctx.settings)
    artifact = ctx.job.model_artifacts
    ctx.summary.endpoint = name
    if reg.find(name) is None:
        view = endpoints.deploy(ctx.settings, ctx.job.name, name=name, capture_percent=100)
        ctx.summary.endpoint_url = view.url or ""
        return f"endpoint {name} InService at {view.url} serving {ctx.job.name}"
    view = reg.view(name)
    capture = view.config.data_capture
    full_capture = capture.enable_capture and capture.initial_sampling_percentage == 100
    if view.status != IN_SERVICE and not (view.status == FAILED and view.endpoint.crashed):
        # Failed to start, or left Creating/Updating/Deleting by an interrupted command: start afresh
        previous = view.status
        endpoints.delete(ctx.settings, name)
        view = endpoints.deploy(ctx.settings, ctx.job.name, name=name, capture_percent=100)
        ctx.summary.endpoint_url = view.url or ""
        return f"endpoint {name} was {previous}; redeployed at {view.url}"
    if view.model.model_data_url != artifact or not full_capture:
        if view.server != "running" and view.status == IN_SERVICE:
            endpoints.start_endpoint(ctx.settings, name)
        view = endpoints.update(ctx.settings, name, ctx.job.name, capture_percent=100)
        if view.server != "running":
            endpoints.start_endpoint(ctx.settings, name)
            view = reg.view(name)
        ctx.summary.endpoint_url = view.url or ""
        return f"endpoint {name} updated to {ctx.job.name} (100% capture) at {view.url}"
    if view.server != "running":
        endpoints.start_endpoint(ctx.settings, name)
        view = reg.view(name)
        ctx.summary.endpoint_url = view.url or ""
        ctx.summary.reused.append("endpoint")
        return f"endpoint {name} restarted at {view.url}"
    ctx.summary.endpoint_url = view.url or ""
    ctx.summary.reused.append("endpoint")
    return f"reused InService endpoint {name} at {view.url}"


# -- 5. gateway ---------------------------------------------------------------------------------


def _services(ctx: _Context) -> str:
    from sconeflow.gateway.cli import start_background
    from sconeflow.gateway.server import PortInUse

    try:
        url, started = start_background(ctx.settings, "127.0.0.1", ctx.options.port)
    except PortInUse:
        if ctx.options.port != DEFAULT_PORT:
            raise
        log.warning("port %d is in use; the gateway takes a free port instead", DEFAULT_PORT)
        url, started = start_background(ctx.settings, "127.0.0.1", 0)
    ctx.summary.gateway_url = url
    if not started:
        ctx.summary.reused.append("gateway")
        return f"reused the running gateway at {url}"
    return f"gateway listening on {url} (S3, Lambda, SageMaker Runtime, Step Functions)"


# -- 6. Lambdas ---------------------------------------------------------------------------------

_DEFAULT_FUNCTIONS: dict[str, dict[str, Any]] = {
    "serialize_image_data": {"timeout": 10, "memory_size": 128},
    "classify_image": {"timeout": 30, "memory_size": 256},
    "filter_inference": {"timeout": 3, "memory_size": 128},
}


def _lambdas(ctx: _Context) -> str:
    from sconeflow.lambda_runtime.registry import FunctionConfig, FunctionRegistry

    registry = FunctionRegistry(ctx.settings)
    wanted_env = {
        "classify_image": {"ENDPOINT_NAME": ctx.options.endpoint_name},
        "filter_inference": {"THRESHOLD": f"{ctx.options.threshold:g}"},
    }
    changed = []
    for name, defaults in _DEFAULT_FUNCTIONS.items():
        env = wanted_env.get(name, {})
        if not registry.exists(name):
            registry.register(
                FunctionConfig(name=name, handler=f"{name}.lambda_handler", environment=dict(env), **defaults)
            )
            changed.append(f"{name} (registered)")
            continue
        current = registry.get(name)
        if any(current.environment.get(k) != v for k, v in env.items()):
            registry.update(name, environment=env)
            changed.append(f"{name} ({', '.join(f'{k}={v}' for k, v in env.items())})")
    env_text = f"ENDPOINT_NAME={ctx.options.endpoint_name}, THRESHOLD={ctx.options.threshold:g}"
    if not changed:
        ctx.summary.reused.append("lambdas")
        return f"the three functions were already set up ({env_text})"
    return "updated " + "; ".join(changed)


# -- 7. state machine ---------------------------------------------------------------------------


def _state_machine(ctx: _Context) -> str:
    from sconeflow.stepfunctions.executions import StateMachineDoesNotExist
    from sconeflow.stepfunctions.service import StepFunctionsService
    from sconeflow.workflow.definition import load_definition

    definition, path = load_definition()
    service = StepFunctionsService(ctx.settings)
    name = ctx.options.state_machine_name
    try:
        machine = service.describe_state_machine(name)
    except StateMachineDoesNotExist:
        machine = service.create_state_machine(name, definition)
        ctx.machine_arn = ctx.summary.state_machine_arn = machine.arn
        return f"created {machine.arn} from {path}"
    if json.loads(machine.definition) != json.loads(definition):
        machine = service.create_state_machine(name, definition, update=True)
        ctx.machine_arn = ctx.summary.state_machine_arn = machine.arn
        return f"updated {machine.arn} to revision {machine.revision} from {path}"
    ctx.machine_arn = ctx.summary.state_machine_arn = machine.arn
    ctx.summary.reused.append("state machine")
    return f"reused {machine.arn} (revision {machine.revision})"


# -- 8. executions ------------------------------------------------------------------------------


def execution_input(bucket: str, key: str) -> str:
    """The workflow's input for one image, as in the classic project."""
    return json.dumps({"image_data": "", "s3_bucket": bucket, "s3_key": key, "inferences": []})


def pick_images(keys: list[str], count: int, seed: int) -> list[str]:
    """``count`` random test images (without repetition while there are enough)."""
    rng = random.Random(seed)
    if count <= len(keys):
        return rng.sample(keys, count)
    return [rng.choice(keys) for _ in range(count)]


def run_executions(ctx: _Context, keys: list[str], *, extra: bool = False) -> list[ExecutionOutcome]:
    """Start one execution per key through the gateway (boto3), at most ``concurrency`` at once."""
    from sconeflow.gateway.client import boto3_client

    client = boto3_client(ctx.settings, "stepfunctions", url=ctx.summary.gateway_url)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    pending = list(enumerate(keys))
    running: dict[str, tuple[ExecutionOutcome, float]] = {}
    outcomes: list[ExecutionOutcome] = []
    total = len(keys)
    label = "extra execution" if extra else "executions"
    ctx.reporter.progress(label, 0, total)
    while pending or running:
        while pending and len(running) < ctx.options.concurrency:
            index, key = pending.pop(0)
            name = f"demo-{stamp}-{uuid.uuid4().hex[:6]}-{index:03d}"
            response = client.start_execution(
                stateMachineArn=ctx.machine_arn, name=name, input=execution_input(ctx.bucket, key)
            )
            outcome = ExecutionOutcome(name, response["executionArn"], key, "RUNNING", extra=extra)
            running[outcome.arn] = (outcome, time.monotonic())
        time.sleep(0.1)
        for arn, (outcome, began) in list(running.items()):
            described = client.describe_execution(executionArn=arn)
            status = described["status"]
            if status == "RUNNING":
                if time.monotonic() - began > EXECUTION_TIMEOUT_S:
                    raise ExecutionsTimedOut(
                        f"execution {outcome.name} is still RUNNING after {EXECUTION_TIMEOUT_S:.0f} s"
                    )
                continue
            outcome.status = status
            outcome.error = described.get("error")
            outcome.cause = described.get("cause")
            outcome.seconds = round(time.monotonic() - began, 3)
            del running[arn]
            outcomes.append(outcome)
            ctx.reporter.progress(label, len(outcomes), total)
    order = {key: i for i, key in enumerate(keys)}
    outcomes.sort(key=lambda o: (order.get(o.key, 0), o.name))
    return outcomes


def _tally(ctx: _Context) -> None:
    s = ctx.summary
    s.executions = len(ctx.outcomes)
    s.succeeded = sum(o.status == "SUCCEEDED" for o in ctx.outcomes)
    s.failed_threshold = sum(o.status == "FAILED" and o.error == THRESHOLD_ERROR for o in ctx.outcomes)
    s.failed_other = s.executions - s.succeeded - s.failed_threshold
    s.extra_executions = sum(o.extra for o in ctx.outcomes)


def _executions(ctx: _Context) -> str:
    keys = pick_images(ctx.test_keys, ctx.options.executions, ctx.options.seed)
    ctx.outcomes = run_executions(ctx, keys)
    if not any(o.status == "FAILED" and o.error == THRESHOLD_ERROR for o in ctx.outcomes):
        # the failure picture must exist: run the image the model is least sure about
        key = ctx.test_keys[int(np.argmin(ctx.test_confidence))]
        ctx.outcomes += run_executions(ctx, [key], extra=True)
    if not any(o.status == "SUCCEEDED" for o in ctx.outcomes):
        key = ctx.test_keys[int(np.argmax(ctx.test_confidence))]
        ctx.outcomes += run_executions(ctx, [key], extra=True)
    _tally(ctx)
    ctx.write("executions.json", json.dumps([asdict(o) for o in ctx.outcomes], indent=2) + "\n")
    s = ctx.summary
    text = f"{s.succeeded} succeeded, {s.failed_threshold} failed below the threshold"
    if s.failed_other:
        text += f", {s.failed_other} failed otherwise"
    if s.extra_executions:
        text += f" ({s.extra_executions} extra run on the least/most confident image)"
    return text


# -- 9. pictures --------------------------------------------------------------------------------


def render_execution(settings: Settings, execution_arn: str, output: Path) -> Path:
    """Draw one execution like the console's graph view (the same picture as ``sfn render``)."""
    from sconeflow.stepfunctions import render
    from sconeflow.stepfunctions.service import StepFunctionsService

    return render.render_execution(StepFunctionsService(settings), execution_arn, output).path


def _render(ctx: _Context) -> str:
    chosen = {
        "succeeded": next((o for o in ctx.outcomes if o.status == "SUCCEEDED"), None),
        "failed": next(
            (o for o in ctx.outcomes if o.status == "FAILED" and o.error == THRESHOLD_ERROR), None
        ),
    }
    parts = []
    for kind, outcome in chosen.items():
        if outcome is None:
            why = (
                "no execution succeeded"
                if kind == "succeeded"
                else f"the model is at least {ctx.options.threshold:g} sure of every test image"
            )
            ctx.summary.missing_pictures[kind] = why
            parts.append(f"no {kind} picture: {why}")
            continue
        path = ctx.output_dir / f"execution-{kind}.png"
        render_execution(ctx.settings, outcome.arn, path)
        ctx.remember(path)
        ctx.summary.pictures[kind] = str(path)
        parts.append(f"{path.name} ({outcome.key})")
    return ", ".join(parts)


# -- 10. monitoring -----------------------------------------------------------------------------


def _wait_for_captures(ctx: _Context, expected: int) -> Any:
    from sconeflow.monitor.captures import read_captures, resolve_source

    source = resolve_source(ctx.settings, endpoint=ctx.options.endpoint_name)
    deadline = time.monotonic() + CAPTURE_WAIT_S
    while True:
        captures = read_captures(ctx.settings, source, since=ctx.started)
        if len(captures.records) >= expected or time.monotonic() > deadline:
            return source, captures
        time.sleep(0.25)


def _monitor(ctx: _Context) -> str:
    from sconeflow.errors import SconeflowError
    from sconeflow.monitor.baseline import create_baseline, load_baseline
    from sconeflow.monitor.features import table_from_records
    from sconeflow.monitor.report import write_report
    from sconeflow.monitor.violations import evaluate, run_monitoring

    baseline = create_baseline(ctx.settings, dataset=ctx.job.name, model=ctx.job.name, split="train")
    ctx.summary.baseline_uri = baseline.uri
    classified = sum(o.status == "SUCCEEDED" or o.error == THRESHOLD_ERROR for o in ctx.outcomes)
    source, captures = _wait_for_captures(ctx, classified)
    base = load_baseline(ctx.settings, baseline.uri)
    table = table_from_records(captures.records, base.classes)
    violations = evaluate(base, table) if len(table) else []
    report = write_report(
        table,
        ctx.output_dir / "monitoring",
        baseline=base,
        violations=violations,
        malformed=captures.malformed,
        threshold=ctx.options.threshold,
        source=source.uri,
    )
    for path in (report.html, *report.plots):
        ctx.remember(path)
    ctx.summary.report_html = str(report.html)
    ctx.summary.report_plots = [str(p) for p in report.plots]
    ctx.summary.captured_records = len(captures.records)
    ctx.summary.violations = len(violations)
    try:
        run = run_monitoring(
            ctx.settings,
            endpoint=ctx.options.endpoint_name,
            since=ctx.started,
            schedule_name="demo",
        )
        ctx.summary.monitoring_status = run.execution.exit_message
    except SconeflowError as exc:
        ctx.summary.monitoring_status = f"Failed: {exc}"
    return (
        f"baseline of {baseline.item_count} training images at {baseline.uri}; "
        f"{len(captures.records)} captured requests, {len(violations)} violation(s); report {report.html}"
    )
