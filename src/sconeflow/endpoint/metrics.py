"""Endpoint metrics in the Prometheus text format, under SageMaker's CloudWatch metric names.

``Invocations``, ``Invocation4XXErrors``, ``Invocation5XXErrors`` (counters) and ``ModelLatency``,
``OverheadLatency`` (histograms, in microseconds like SageMaker's), labelled with ``EndpointName`` and
``VariantName``; plus sconeflow's own: throttled requests, queue depth, batch sizes, capture records
written / dropped / queued.

Each metric has a single writer thread (the event loop, or the inference thread for batch sizes), so no
lock is needed; readers may see a value one update old.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

LATENCY_BUCKETS_US = (250, 500, 1000, 2000, 3000, 5000, 10_000, 20_000, 50_000, 100_000, 250_000, 1_000_000)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


@dataclass
class Histogram:
    buckets: Sequence[float]
    counts: list[int] = field(default_factory=list)
    total: float = 0.0
    count: int = 0

    def __post_init__(self) -> None:
        self.counts = [0] * len(self.buckets)

    def observe(self, value: float) -> None:
        self.count += 1
        self.total += value
        for i, bound in enumerate(self.buckets):
            if value <= bound:
                self.counts[i] += 1
                break

    def render(self, name: str, labels: str) -> list[str]:
        lines = []
        cumulative = 0
        for bound, n in zip(self.buckets, self.counts, strict=True):
            cumulative += n
            lines.append(f'{name}_bucket{{{labels},le="{_num(bound)}"}} {cumulative}')
        lines.append(f'{name}_bucket{{{labels},le="+Inf"}} {self.count}')
        lines.append(f"{name}_sum{{{labels}}} {_num(self.total)}")
        lines.append(f"{name}_count{{{labels}}} {self.count}")
        return lines


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


class EndpointMetrics:
    def __init__(self, endpoint: str, variant: str = "AllTraffic") -> None:
        self.labels = f'EndpointName="{_escape(endpoint)}",VariantName="{_escape(variant)}"'
        self.invocations = 0
        self.errors_4xx = 0
        self.errors_5xx = 0
        self.throttled = 0
        self.model_latency = Histogram(LATENCY_BUCKETS_US)
        self.overhead_latency = Histogram(LATENCY_BUCKETS_US)
        self.batch_size = Histogram(BATCH_BUCKETS)
        self.throttle_latency = Histogram(LATENCY_BUCKETS_US)
        self.gauges: dict[str, tuple[str, Callable[[], float]]] = {}
        self.counters: dict[str, tuple[str, Callable[[], float]]] = {}

    def observe_request(self, status: int, model_us: float | None, total_us: float) -> None:
        """One finished invocation (any outcome). SageMaker counts 4XX/5XX within Invocations."""
        self.invocations += 1
        if 400 <= status < 500:
            self.errors_4xx += 1
            if status == 429:
                self.throttled += 1
                self.throttle_latency.observe(total_us)
        elif status >= 500:
            self.errors_5xx += 1
        if model_us is not None:
            self.model_latency.observe(model_us)
            self.overhead_latency.observe(max(0.0, total_us - model_us))

    def observe_batch(self, size: int, seconds: float) -> None:
        self.batch_size.observe(size)

    def add_gauge(self, name: str, help_text: str, read: Callable[[], float]) -> None:
        self.gauges[name] = (help_text, read)

    def add_counter(self, name: str, help_text: str, read: Callable[[], float]) -> None:
        self.counters[name] = (help_text, read)

    def render(self) -> str:
        lab = self.labels
        out: list[str] = []

        def counter(name: str, help_text: str, value: float) -> None:
            out.extend(
                [f"# HELP {name} {help_text}", f"# TYPE {name} counter", f"{name}{{{lab}}} {_num(value)}"]
            )

        counter("Invocations", "InvokeEndpoint requests answered (errors included).", self.invocations)
        counter(
            "Invocation4XXErrors",
            "Requests answered with a 4xx status (throttling included).",
            self.errors_4xx,
        )
        counter("Invocation5XXErrors", "Requests answered with a 5xx status.", self.errors_5xx)
        counter(
            "sconeflow_invocations_throttled", "Requests refused because the queue was full.", self.throttled
        )
        for name, (help_text, read) in self.counters.items():
            counter(name, help_text, read())
        for name, help_text, hist in (
            ("ModelLatency", "Model call time per request, microseconds.", self.model_latency),
            ("OverheadLatency", "Request time minus model time, microseconds.", self.overhead_latency),
            ("sconeflow_batch_size", "Requests per model call.", self.batch_size),
            (
                "sconeflow_throttle_latency",
                "Time to answer a throttled request, microseconds.",
                self.throttle_latency,
            ),
        ):
            out.extend([f"# HELP {name} {help_text}", f"# TYPE {name} histogram", *hist.render(name, lab)])
        for name, (help_text, read) in self.gauges.items():
            out.extend(
                [f"# HELP {name} {help_text}", f"# TYPE {name} gauge", f"{name}{{{lab}}} {_num(read())}"]
            )
        return "\n".join(out) + "\n"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
