"""The traffic generator: draw inputs from the prepared test split, optionally shifted, and send them.

Open loop: a scheduler thread (the caller's) emits one input every ``1 / rate`` seconds and hands it to a
pool of ``concurrency`` sender threads, so a slow target does not slow the schedule down; a tick that
finds every sender busy is counted as ``skipped`` (the target could not keep up) rather than queued. A
burst (``burst=N``) hands N inputs to the senders at once. It stops at ``duration``, when ``stop`` is set,
or on Ctrl-C (KeyboardInterrupt in the scheduler), then waits up to ``drain_timeout`` seconds for the
requests in flight.

Targets: :class:`EndpointTarget` (InvokeEndpoint through boto3 ``sagemaker-runtime``) and
:class:`WorkflowTarget` (one Step Functions execution per input, ``{"s3_bucket", "s3_key"}``; shifted
images are first written to ``s3://<bucket>/traffic/<run id>/<n>.png``).
"""

from __future__ import annotations

import io
import json
import logging
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from sconeflow.config import Settings
from sconeflow.store import ObjectStore
from sconeflow.traffic.errors import InvalidRate, InvalidTrafficOptions, NoTestImages
from sconeflow.traffic.shifts import PIXEL_SHIFTS, SHIFTS, apply_shift, resolve_class

log = logging.getLogger(__name__)

_RATE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:/\s*(s|sec|second|m|min|minute|h|hour))?\s*$", re.IGNORECASE)
_PER = {
    "s": 1.0,
    "sec": 1.0,
    "second": 1.0,
    "m": 60.0,
    "min": 60.0,
    "minute": 60.0,
    "h": 3600.0,
    "hour": 3600.0,
}
MAX_RATE = 1000.0
MAX_BATCH = 1000  # the batch workflow's list_images MAX_KEYS default; also fits a state's 256 KiB
MAX_BURST = 100_000  # a burst queues every input up front (a future and its PNG each): bound the memory


def parse_rate(text: str) -> float:
    """``5/s``, ``300/m``, ``100/h`` or a plain number (per second) -> requests per second."""
    match = _RATE_RE.match(text or "")
    if not match:
        raise InvalidRate(f"cannot read rate {text!r}; use e.g. 5/s, 300/m or 100/h")
    value = float(match.group(1)) / _PER[(match.group(2) or "s").lower()]
    if value <= 0 or value > MAX_RATE:
        raise InvalidRate(f"rate {text!r} must be above 0 and at most {MAX_RATE:g}/s")
    return value


@dataclass(frozen=True)
class TrafficPlan:
    """What to send and how fast."""

    rate: float = 5.0  # inputs per second (ignored for a burst)
    duration: float | None = 600.0  # seconds; None: until stopped
    burst: int | None = None  # send this many at once instead of a paced stream
    batch_size: int | None = None  # workflow only: this many images per execution ({"s3_keys": [...]})
    shift: str = "none"
    shift_class: str | None = None  # for shift "one-class": a class name or index (default: the first)
    seed: int | None = None
    concurrency: int = 8
    drain_timeout: float = 30.0

    def check(self) -> None:
        if self.shift not in SHIFTS:
            from sconeflow.traffic.errors import InvalidShift

            raise InvalidShift(f"unknown shift {self.shift!r}; choose one of {', '.join(SHIFTS)}")
        if self.shift_class is not None and self.shift != "one-class":
            raise InvalidTrafficOptions(f"--class {self.shift_class} is for --shift one-class only")
        if self.burst is not None and not 1 <= self.burst <= MAX_BURST:
            raise InvalidTrafficOptions(
                f"--burst {self.burst} is outside 1..{MAX_BURST} (a longer run is a --rate stream)"
            )
        _check_seed(self.seed)
        if self.burst is None and not 0 < self.rate <= MAX_RATE:
            raise InvalidRate(f"rate {self.rate} must be above 0 and at most {MAX_RATE:g}/s")
        if self.duration is not None and self.duration <= 0:
            raise InvalidTrafficOptions("--duration must be positive")
        if self.batch_size is not None and not 1 <= self.batch_size <= MAX_BATCH:
            raise InvalidTrafficOptions(f"--batch-size {self.batch_size} is outside 1..{MAX_BATCH}")
        if not 1 <= self.concurrency <= 256:
            raise InvalidTrafficOptions(f"--concurrency {self.concurrency} is outside 1..256")


def _check_seed(seed: int | None) -> None:
    if seed is not None and seed < 0:  # numpy's generators take non-negative seeds only
        raise InvalidTrafficOptions(f"--seed {seed} must be 0 or more")


@dataclass(frozen=True)
class Sample:
    """One input: its PNG bytes, the store key when it is an unchanged test image, and its true class."""

    png: bytes
    key: str | None
    label: str


class InputPool:
    """The prepared test split (optionally shifted), drawn from with replacement."""

    def __init__(
        self,
        store: ObjectStore,
        bucket: str,
        *,
        shift: str = "none",
        shift_class: str | None = None,
        seed: int | None = None,
    ) -> None:
        from sconeflow.data.dataset import load_split
        from sconeflow.errors import SconeflowError

        _check_seed(seed)
        try:
            split = load_split(store, bucket, "test")
        except SconeflowError as exc:
            raise NoTestImages(
                f"cannot read the prepared test split in bucket {bucket} ({exc.name}: {exc}); "
                "run `sconeflow data prepare` first"
            ) from exc
        if len(split.labels) == 0:
            raise NoTestImages(f"the prepared test split in bucket {bucket} has no images")
        self.store, self.bucket, self.shift = store, bucket, shift
        self.classes = list(split.classes)
        self.rng = np.random.default_rng(seed)
        index = np.arange(len(split.labels))
        if shift == "one-class":
            wanted = resolve_class(self.classes, shift_class)
            index = index[split.labels == wanted]
            if not len(index):
                raise NoTestImages(f"the test split has no image of class {self.classes[wanted]!r}")
        self.index = index
        self.images = split.images
        self.labels = split.labels
        self.keys = split.keys
        self._png: dict[int, bytes] = {}
        if shift == "dark":  # deterministic: shift the whole pool once
            self._dark, _ = apply_shift("dark", split.images[index], split.labels[index], self.rng)

    def __len__(self) -> int:
        return len(self.index)

    def draw(self) -> Sample:
        """One input, drawn uniformly with replacement (call from one thread)."""
        pos = int(self.rng.integers(len(self.index)))
        row = int(self.index[pos])
        label = self.classes[int(self.labels[row])]
        if self.shift == "dark":
            return Sample(encode_png(self._dark[pos]), None, label)
        if self.shift == "noise":
            noisy, _ = apply_shift("noise", self.images[row : row + 1], self.labels[row : row + 1], self.rng)
            return Sample(encode_png(noisy[0]), None, label)
        png = self._png.get(row)
        if png is None:
            png = self._png[row] = self.store.get_object(self.bucket, self.keys[row])
        return Sample(png, self.keys[row], label)


def encode_png(image: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image, "RGB").save(buffer, format="PNG")
    return buffer.getvalue()


@dataclass(frozen=True)
class Outcome:
    ok: bool
    label: str  # the predicted class (endpoint) or the execution status / error (workflow)
    error: str | None = None


class Target(Protocol):
    description: str

    def send(self, samples: list[Sample], seq: int) -> list[Outcome]:
        """Send one request carrying ``samples``; one outcome per sample."""
        ...

    def close(self) -> None: ...


class EndpointTarget:
    """InvokeEndpoint through boto3 ``sagemaker-runtime`` against the endpoint's server."""

    def __init__(
        self, settings: Settings, endpoint: str, *, concurrency: int = 8, url: str | None = None
    ) -> None:
        """``url``: the server to call (default: the endpoint's running server, from the registry)."""
        import boto3
        from botocore.config import Config

        from sconeflow.endpoint.registry import resolve_endpoint_url

        self.endpoint = endpoint
        self.url = url or resolve_endpoint_url(settings, endpoint)
        self.description = f"endpoint {endpoint} ({self.url})"
        self.client = boto3.client(
            "sagemaker-runtime",
            endpoint_url=self.url,
            region_name=settings.region,
            aws_access_key_id="local",
            aws_secret_access_key="local",
            config=Config(retries={"max_attempts": 1}, max_pool_connections=max(10, concurrency)),
        )

    def send(self, samples: list[Sample], seq: int) -> list[Outcome]:
        return [self.invoke(sample) for sample in samples]

    def invoke(self, sample: Sample) -> Outcome:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            response = self.client.invoke_endpoint(
                EndpointName=self.endpoint, ContentType="image/png", Body=sample.png
            )
            body = response["Body"].read()
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "ClientError")
            return Outcome(False, code, f"{code}: {exc.response.get('Error', {}).get('Message', '')}")
        except (BotoCoreError, OSError, ValueError) as exc:
            return Outcome(False, type(exc).__name__, str(exc))
        header = response["ResponseMetadata"]["HTTPHeaders"].get("x-sconeflow-classes")
        try:
            return Outcome(True, predicted_class(body, header))
        except ValueError as exc:
            return Outcome(False, MALFORMED_RESPONSE, f"{MALFORMED_RESPONSE}: {exc}")

    def close(self) -> None:
        self.client.close()


MALFORMED_RESPONSE = "MalformedResponse"  # the outcome of a 200 answer that is not a probability list


def predicted_class(body: bytes, classes_header: str | None) -> str:
    """The most probable class of an InvokeEndpoint answer; ``ValueError`` names what is malformed."""
    from sconeflow.endpoint.answer import best_class

    return best_class(body, classes_header)[0]


class WorkflowTarget:
    """Step Functions executions run to their end: one per input (``{"s3_bucket", "s3_key"}``), or with
    ``batch`` one per batch of inputs (``{"s3_bucket", "s3_keys": [...]}``, the batch workflow), whose
    per-image results become the outcomes (``confident``, ``low_confidence`` or the image's error)."""

    def __init__(
        self,
        settings: Settings,
        machine: str,
        store: ObjectStore,
        bucket: str,
        run_id: str,
        *,
        batch: bool = False,
    ) -> None:
        from sconeflow.stepfunctions.service import StepFunctionsService

        self.service = StepFunctionsService(settings)
        self.machine = self.service.describe_state_machine(machine).name  # StateMachineDoesNotExist
        self.store, self.bucket, self.run_id, self.batch = store, bucket, run_id, batch
        self.description = f"state machine {self.machine}" + (" (batches)" if batch else "")

    def _key(self, sample: Sample, seq: int, index: int) -> str:
        if sample.key is not None:
            return sample.key
        key = f"traffic/{self.run_id}/{seq:06d}-{index:04d}.png"  # a shifted image: upload it first
        self.store.put_object(self.bucket, key, sample.png, content_type="image/png")
        return key

    def send(self, samples: list[Sample], seq: int) -> list[Outcome]:
        from sconeflow.errors import SconeflowError

        try:
            keys = [self._key(sample, seq, i) for i, sample in enumerate(samples)]
            if self.batch:
                payload: dict[str, Any] = {"s3_bucket": self.bucket, "s3_keys": keys}
            else:
                (key,) = keys
                payload = {"s3_bucket": self.bucket, "s3_key": key}
            record = self.service.run_to_end(
                self.machine, json.dumps(payload), name=f"traffic-{self.run_id}-{seq:06d}"
            )
        except SconeflowError as exc:
            return [Outcome(False, exc.name, str(exc))] * len(samples)
        if record.status != "SUCCEEDED":
            return [Outcome(False, record.error or record.status, record.cause)] * len(samples)
        if not self.batch:
            return [Outcome(True, "SUCCEEDED")]
        return _batch_outcomes(record.output, len(samples))

    def close(self) -> None:
        return None


def _batch_outcomes(output: str | None, count: int) -> list[Outcome]:
    """Per-image outcomes from the batch workflow's output ``{"results": [{"status", "error"}, ...]}``."""
    try:
        results = json.loads(output or "null")["results"]
        if not isinstance(results, list) or len(results) != count:
            raise ValueError(f"{count} images sent, results for {len(results)}")
    except (ValueError, TypeError, KeyError) as exc:
        return [Outcome(False, "UnexpectedOutput", f"not a batch workflow output: {exc}")] * count
    outcomes = []
    for result in results:
        status = result.get("status") if isinstance(result, dict) else None
        if status == "confident":
            outcomes.append(Outcome(True, "confident"))
        elif status == "low_confidence":
            outcomes.append(Outcome(False, "low_confidence", result.get("error")))
        else:
            error = result.get("error") if isinstance(result, dict) else None
            outcomes.append(
                Outcome(False, str(error or status or "failed"), result.get("cause") if status else None)
            )
    return outcomes


@dataclass
class TrafficStats:
    """Counts so far (thread-safe updates through :meth:`record`)."""

    target: str = ""
    shift: str = "none"
    requests: int = 0  # requests (endpoint) or executions (workflow) started
    sent: int = 0  # inputs (images) sent
    succeeded: int = 0
    failed: int = 0
    skipped: int = 0  # ticks dropped because every sender was busy
    unfinished: int = 0  # inputs still in flight (or queued) when sending stopped and the drain timed out
    outcomes: Counter = field(default_factory=Counter)  # predicted class / execution status
    errors: Counter = field(default_factory=Counter)
    true_classes: Counter = field(default_factory=Counter)
    # Latency per answered request, kept apart by how it went: a request whose inputs all succeeded
    # (latency_*) or one with at least one failed input (failed_latency_*: a fast error or a timeout
    # would otherwise pull the figures of the answered requests down or up).
    latency_count: int = 0
    latency_sum: float = 0.0
    latency_max: float = 0.0
    failed_latency_count: int = 0
    failed_latency_sum: float = 0.0
    failed_latency_max: float = 0.0
    elapsed: float = 0.0
    stopped_by: str = ""  # duration | burst | interrupt | stop
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    requests_done: int = 0
    closed: bool = False  # set when the run returns: a straggler answered later is not counted

    @property
    def in_flight(self) -> int:
        return self.sent - self.succeeded - self.failed

    def record(self, samples: list[Sample], outcomes: list[Outcome], seconds: float) -> None:
        """One answered request: an outcome per sample, one latency."""
        with self._lock:
            if self.closed:
                return
            for sample, outcome in zip(samples, outcomes, strict=True):
                self.true_classes[sample.label] += 1
                self.outcomes[outcome.label] += 1
                if outcome.ok:
                    self.succeeded += 1
                else:
                    self.failed += 1
                    self.errors[outcome.label] += 1
            self.requests_done += 1
            if all(outcome.ok for outcome in outcomes):
                self.latency_count += 1
                self.latency_sum += seconds
                self.latency_max = max(self.latency_max, seconds)
            else:
                self.failed_latency_count += 1
                self.failed_latency_sum += seconds
                self.failed_latency_max = max(self.failed_latency_max, seconds)

    def as_dict(self) -> dict[str, Any]:
        with self._lock:
            done = self.succeeded + self.failed
            ok, bad = self.latency_count, self.failed_latency_count
            return {
                "target": self.target,
                "shift": self.shift,
                "requests": self.requests,
                "sent": self.sent,
                "succeeded": self.succeeded,
                "failed": self.failed,
                "skipped": self.skipped,
                "unfinished": self.unfinished,
                "outcomes": dict(sorted(self.outcomes.items())),
                "errors": dict(sorted(self.errors.items())),
                "true_classes": dict(sorted(self.true_classes.items())),
                "mean_latency_ms": round(1000 * self.latency_sum / ok, 3) if ok else None,
                "max_latency_ms": round(1000 * self.latency_max, 3) if ok else None,
                "failed_mean_latency_ms": round(1000 * self.failed_latency_sum / bad, 3) if bad else None,
                "failed_max_latency_ms": round(1000 * self.failed_latency_max, 3) if bad else None,
                "elapsed_s": round(self.elapsed, 3),
                "achieved_rate_per_s": round(done / self.elapsed, 3) if self.elapsed > 0 else None,
                "stopped_by": self.stopped_by,
            }


def run_traffic(
    plan: TrafficPlan,
    pool: InputPool,
    target: Target,
    *,
    stop: threading.Event | None = None,
    on_tick: Callable[[TrafficStats], None] | None = None,
    tick_every: float = 0.25,
) -> TrafficStats:
    """Send inputs from ``pool`` to ``target`` as ``plan`` says; returns the final counts."""
    plan.check()
    stop = stop or threading.Event()
    stats = TrafficStats(target=target.description, shift=plan.shift)
    senders = threading.BoundedSemaphore(plan.concurrency)
    start = time.monotonic()
    last_tick = 0.0
    reported: set[str] = set()  # exception types already logged at WARNING (the rest go to DEBUG)

    def tick(force: bool = False) -> None:
        nonlocal last_tick
        now = time.monotonic()
        if on_tick is not None and (force or now - last_tick >= tick_every):
            stats.elapsed = now - start
            last_tick = now
            on_tick(stats)

    def send(samples: list[Sample], seq: int) -> None:
        began = time.monotonic()
        try:
            outcomes = target.send(samples, seq)
            if len(outcomes) != len(samples):
                raise RuntimeError(f"{len(samples)} inputs sent, {len(outcomes)} outcomes")
        except Exception as exc:  # a target bug must not kill the generator (nor print a traceback); count it
            name = type(exc).__name__
            first = name not in reported
            reported.add(name)
            log.log(
                logging.WARNING if first else logging.DEBUG,
                "request %d failed: %s: %s (counted under errors; --log-level DEBUG shows the traceback)",
                seq,
                name,
                exc,
            )
            log.debug("request %d: traceback", seq, exc_info=True)
            outcomes = [Outcome(False, name, str(exc))] * len(samples)
        finally:
            if plan.burst is None:
                senders.release()
        stats.record(samples, outcomes, time.monotonic() - began)

    per_request = plan.batch_size or 1

    def submit(seq: int) -> None:
        samples = [pool.draw() for _ in range(per_request)]
        futures.append((executor.submit(send, samples, seq), len(samples)))
        stats.requests += 1
        stats.sent += len(samples)

    executor = ThreadPoolExecutor(plan.concurrency, thread_name_prefix="traffic")
    futures: list[tuple[Any, int]] = []  # (future, inputs it carries)
    try:
        if plan.burst is not None:
            for seq in range(plan.burst):
                if stop.is_set():
                    break
                submit(seq)
                tick()
            while not stop.is_set() and any(not f.done() for f, _ in futures):
                stop.wait(0.05)
                tick()
            stats.stopped_by = "stop" if stop.is_set() else "burst"
        else:
            interval = 1.0 / plan.rate
            deadline = None if plan.duration is None else start + plan.duration
            due = start
            seq = 0
            while True:
                now = time.monotonic()
                if deadline is not None and now >= deadline:
                    stats.stopped_by = "duration"
                    break
                wait = due - now
                if deadline is not None:
                    wait = min(wait, deadline - now)
                if wait > 0:
                    if stop.wait(min(wait, tick_every)):
                        stats.stopped_by = "stop"
                        break
                    tick()
                    continue
                if stop.is_set():
                    stats.stopped_by = "stop"
                    break
                if senders.acquire(blocking=False):
                    submit(seq)
                    seq += 1
                else:
                    stats.skipped += 1
                due += interval
                if due < now - 1.0:  # far behind (a stalled machine): do not fire a catch-up burst
                    due = now
                tick()
    except KeyboardInterrupt:
        stats.stopped_by = "interrupt"
    finally:
        if stats.stopped_by in ("stop", "interrupt"):
            _withdraw_queued(futures, stats)
        try:
            drain_until = time.monotonic() + plan.drain_timeout
            while any(not f.done() for f, _ in futures) and time.monotonic() < drain_until:
                time.sleep(0.05)
                tick()
        except KeyboardInterrupt:  # a second Ctrl-C: stop waiting
            stats.stopped_by = "interrupt"
        with stats._lock:
            stats.closed = True
            stats.unfinished = sum(n for f, n in futures if not f.done())
        for future, _ in futures:
            future.cancel()
        executor.shutdown(wait=False, cancel_futures=True)
        stats.elapsed = time.monotonic() - start
        tick(force=True)
        target.close()
    return stats


def _withdraw_queued(futures: list[tuple[Any, int]], stats: TrafficStats) -> None:
    """On a stop, cancel the requests no sender has started (a burst queues them) and uncount them:
    only the requests already on the wire are waited for."""
    for future, inputs in futures:
        if future.cancel():
            stats.requests -= 1
            stats.sent -= inputs


def make_target(
    settings: Settings,
    store: ObjectStore,
    *,
    endpoint: str | None,
    workflow: str | None,
    concurrency: int = 8,
    run_id: str | None = None,
    batch_size: int | None = None,
    bucket: str | None = None,
) -> Target:
    """The target named by exactly one of ``endpoint`` / ``workflow``."""
    if (endpoint is None) == (workflow is None):
        raise InvalidTrafficOptions("give exactly one of --endpoint NAME or --workflow NAME")
    if endpoint is not None:
        if batch_size is not None:
            raise InvalidTrafficOptions("--batch-size is for --workflow (the batch state machine) only")
        return EndpointTarget(settings, endpoint, concurrency=concurrency)
    assert workflow is not None
    return WorkflowTarget(
        settings,
        workflow,
        store,
        bucket or settings.bucket,
        run_id or uuid.uuid4().hex[:8],
        batch=batch_size is not None,
    )


__all__ = [
    "PIXEL_SHIFTS",
    "EndpointTarget",
    "InputPool",
    "Outcome",
    "Sample",
    "TrafficPlan",
    "TrafficStats",
    "WorkflowTarget",
    "make_target",
    "parse_rate",
    "run_traffic",
]
