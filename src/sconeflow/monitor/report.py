"""Plots (matplotlib PNGs) and one self-contained HTML report of captured traffic against a baseline.

PNGs: ``confidence_over_time.png`` (with the filter threshold, points under it in red),
``class_mix_over_time.png``, ``confidence_histogram.png`` (against the baseline),
``image_stats_drift.png`` (image statistics against the baseline, with drift distances),
``invocations_per_minute.png``. ``report.html`` embeds them as base64 with the summary numbers (count,
mean confidence, share below threshold), the class counts, the violations and the skipped lines.
"""

from __future__ import annotations

import base64
import html
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from sconeflow.errors import SconeflowError
from sconeflow.monitor.baseline import Baseline, feature_map, sketch_points
from sconeflow.monitor.captures import MalformedLine
from sconeflow.monitor.features import CONFIDENCE, FeatureTable
from sconeflow.monitor.violations import linf_distance

log = logging.getLogger(__name__)

DEFAULT_THRESHOLD = 0.93
DPI = 110
PLOTS = (
    ("confidence_over_time.png", "Confidence over time"),
    ("class_mix_over_time.png", "Predicted-class mix over time"),
    ("confidence_histogram.png", "Confidence distribution against the baseline"),
    ("image_stats_drift.png", "Image statistics against the baseline"),
    ("invocations_per_minute.png", "Invocations per minute"),
)
DRIFT_FEATURES = (
    ("brightness_r", "mean red level (0-255)"),
    ("brightness_g", "mean green level (0-255)"),
    ("brightness_b", "mean blue level (0-255)"),
    ("contrast", "RMS contrast: grey-level std (0-255)"),
    ("sharpness", "sharpness: Laplacian variance"),
)
_BINS = (
    (60, "minute"),
    (300, "5 minutes"),
    (900, "15 minutes"),
    (3600, "hour"),
    (6 * 3600, "6 hours"),
    (86400, "day"),
    (7 * 86400, "week"),
    (30 * 86400, "30 days"),
    (365 * 86400, "365 days"),
)
_PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
_BELOW = "#d62728"
_ABOVE = "#1f77b4"
_BASE = "#9e9e9e"


class ReportError(SconeflowError):
    """The report cannot be written (the output folder is a file, not writable, ...)."""


@dataclass(frozen=True)
class ReportSummary:
    count: int
    with_confidence: int
    mean_confidence: float | None
    below_threshold: int
    share_below_threshold: float | None
    threshold: float
    first: str | None
    last: str | None
    class_counts: dict[str, int]
    malformed: int
    violations: int

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class ReportResult:
    directory: Path
    html: Path
    plots: list[Path]
    summary: ReportSummary
    violations: list[dict[str, str]] = field(default_factory=list)


def _iso(value: np.datetime64) -> str:
    return str(value.astype("datetime64[s]")) + "Z"


def summarize(
    table: FeatureTable,
    threshold: float = DEFAULT_THRESHOLD,
    *,
    malformed: int = 0,
    violations: int = 0,
) -> ReportSummary:
    confidence = table.numeric[CONFIDENCE]
    present = confidence[~np.isnan(confidence)]
    below = int(np.count_nonzero(present < threshold))
    counts = Counter(p for p in table.predicted if p is not None)
    ordered = {c: counts.get(c, 0) for c in table.classes}
    ordered.update({c: n for c, n in sorted(counts.items()) if c not in ordered})
    return ReportSummary(
        count=len(table),
        with_confidence=int(present.size),
        mean_confidence=float(present.mean()) if present.size else None,
        below_threshold=below,
        share_below_threshold=below / present.size if present.size else None,
        threshold=threshold,
        first=_iso(table.times.min()) if len(table) else None,
        last=_iso(table.times.max()) if len(table) else None,
        class_counts=ordered,
        malformed=malformed,
        violations=violations,
    )


# -- plotting helpers ---------------------------------------------------------------------------


def _figure(width: float = 10.0, height: float = 4.8) -> Any:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    return fig


def _time_axis(ax: Any) -> None:
    import matplotlib.dates as mdates

    locator = mdates.AutoDateLocator(minticks=3, maxticks=8)
    ax.xaxis.set_major_locator(locator)
    formats = ["%Y", "%b", "%b %d", "%H:%M", "%H:%M", "%H:%M:%S"]
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, formats=formats))
    ax.set_xlabel("inference time (UTC)")


def _empty(ax: Any, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=12, color="#555555")
    ax.set_xticks([])
    ax.set_yticks([])


def _bin_seconds(times: np.ndarray, max_bins: int = 48) -> tuple[int, str]:
    if times.size == 0:
        return 60, "minute"
    span = int((times.max() - times.min()).astype("timedelta64[s]").astype(np.int64)) + 1
    for seconds, label in _BINS:
        if span / seconds <= max_bins:
            return seconds, label
    return _BINS[-1]


def _bin_label(start: np.datetime64, seconds: int) -> str:
    text = str(start.astype("datetime64[s]"))
    if seconds < 86400:
        return text[5:16].replace("T", "\n")
    return text[:10]


def _baseline_density(stat: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(left edges, widths, densities) of a baseline feature's 10 KLL buckets."""
    buckets = stat.get("numerical_statistics", {}).get("distribution", {}).get("kll", {}).get("buckets", [])
    if not buckets:
        return None
    lows = np.array([b["lower_bound"] for b in buckets], dtype=float)
    highs = np.array([b["upper_bound"] for b in buckets], dtype=float)
    counts = np.array([b["count"] for b in buckets], dtype=float)
    total = counts.sum()
    if total <= 0:
        return None
    widths = highs - lows
    if np.all(widths <= 0):
        span = max(abs(lows[0]) * 0.01, 1e-3)
        return np.array([lows[0] - span / 2]), np.array([span]), np.array([1.0 / span])
    widths = np.where(widths > 0, widths, np.nan)
    density = np.nan_to_num(counts / (total * widths))
    return lows, np.nan_to_num(widths), density


def _feature_distance(baseline: Baseline | None, name: str, values: np.ndarray) -> float | None:
    if baseline is None or values.size == 0:
        return None
    stat = feature_map(baseline.statistics).get(name, {})
    sketch = (
        stat.get("numerical_statistics", {})
        .get("distribution", {})
        .get("kll", {})
        .get("sketch", {})
        .get("data")
    )
    if not sketch:
        return None
    base_values, base_weights = sketch_points(sketch)
    return linf_distance(base_values, base_weights, values)


def _drift_threshold(baseline: Baseline | None) -> float:
    if baseline is None:
        return 0.1
    config = baseline.constraints.get("monitoring_config", {}).get("distribution_constraints", {})
    return float(config.get("comparison_threshold", 0.1))


# -- the five plots -----------------------------------------------------------------------------


def plot_confidence_over_time(table: FeatureTable, path: Path, threshold: float) -> None:
    fig = _figure()
    ax = fig.add_subplot()
    confidence = table.numeric[CONFIDENCE]
    ok = ~np.isnan(confidence)
    if not ok.any():
        _empty(ax, "no records with output probabilities")
    else:
        times = table.times[ok]
        values = confidence[ok]
        below = values < threshold
        size = 18 if values.size < 2000 else 4
        ax.scatter(
            times[~below], values[~below], s=size, color=_ABOVE, label=f"confidence ≥ {threshold:g}", zorder=3
        )
        ax.scatter(
            times[below], values[below], s=size, color=_BELOW, label=f"confidence < {threshold:g}", zorder=3
        )
        ax.axhline(
            threshold, color=_BELOW, linestyle="--", linewidth=1.4, label=f"filter threshold {threshold:g}"
        )
        ax.set_ylim(min(0.0, float(values.min()) - 0.02), 1.02)
        _time_axis(ax)
        ax.legend(loc="best", framealpha=0.9)
        ax.grid(alpha=0.3)
    ax.set_ylabel("confidence (highest class probability)")
    share = np.count_nonzero(confidence[ok] < threshold) / max(1, int(ok.sum()))
    ax.set_title(
        f"Model confidence per invocation: {int(ok.sum())} invocations, {share:.1%} below {threshold:g}"
    )
    fig.savefig(path, dpi=DPI)


def plot_class_mix(table: FeatureTable, path: Path) -> None:
    fig = _figure()
    ax = fig.add_subplot()
    mask = np.array([p is not None for p in table.predicted], dtype=bool)
    if not mask.any():
        _empty(ax, "no predicted classes")
        ax.set_title("Predicted-class mix over time")
        fig.savefig(path, dpi=DPI)
        return
    times = table.times[mask]
    predicted = [p for p in table.predicted if p is not None]
    seconds, label = _bin_seconds(times)
    epoch = times.astype("datetime64[s]").astype(np.int64)
    bins = epoch // seconds
    unique_bins = np.unique(bins)
    classes = list(table.classes) + sorted({p for p in predicted} - set(table.classes))
    counts = np.zeros((len(classes), unique_bins.size))
    index = {b: i for i, b in enumerate(unique_bins)}
    cls_index = {c: i for i, c in enumerate(classes)}
    for b, p in zip(bins, predicted, strict=True):
        counts[cls_index[p], index[b]] += 1
    totals = counts.sum(axis=0)
    shares = counts / totals * 100
    x = np.arange(unique_bins.size)
    bottom = np.zeros(unique_bins.size)
    for i, cls in enumerate(classes):
        ax.bar(x, shares[i], bottom=bottom, color=_PALETTE[i % len(_PALETTE)], label=cls, width=0.8)
        bottom += shares[i]
    if unique_bins.size <= 30:
        for xi, total in zip(x, totals, strict=True):
            ax.text(xi, 101, f"n={int(total)}", ha="center", va="bottom", fontsize=7)
    starts = (unique_bins * seconds).astype("datetime64[s]")
    step = max(1, unique_bins.size // 16)
    ax.set_xticks(x[::step])
    labels = [_bin_label(s, seconds) for s in starts[::step]]
    ax.set_xticklabels(
        labels, fontsize=8, rotation=0 if seconds < 86400 else 35, ha="center" if seconds < 86400 else "right"
    )
    ax.set_ylim(0, 110)
    ax.set_ylabel("share of invocations (%)")
    ax.set_xlabel(f"time bucket start (UTC), one bar per {label} with traffic")
    ax.legend(title="predicted class", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.set_title(f"Predicted-class mix per {label}")
    fig.savefig(path, dpi=DPI)


def plot_confidence_histogram(
    table: FeatureTable, path: Path, baseline: Baseline | None, threshold: float
) -> None:
    fig = _figure()
    ax = fig.add_subplot()
    values = table.numeric[CONFIDENCE]
    values = values[~np.isnan(values)]
    base = _baseline_density(feature_map(baseline.statistics).get(CONFIDENCE, {})) if baseline else None
    lo = float(values.min()) if values.size else 0.0
    if base is not None:
        lo = min(lo, float(base[0][0]))
        n_base = baseline.item_count if baseline else 0
        ax.bar(
            base[0],
            base[2],
            width=base[1],
            align="edge",
            color=_BASE,
            alpha=0.55,
            edgecolor="white",
            label=f"baseline ({n_base} training images)",
        )
    if values.size:
        edges = np.linspace(min(lo, 0.5), 1.0, 26)
        ax.hist(
            values,
            bins=edges,
            density=True,
            histtype="step",
            linewidth=2.2,
            color=_ABOVE,
            label=f"captured traffic ({values.size} invocations)",
        )
    else:
        _empty(ax, "no records with output probabilities")
    ax.axvline(
        threshold, color=_BELOW, linestyle="--", linewidth=1.4, label=f"filter threshold {threshold:g}"
    )
    distance = _feature_distance(baseline, CONFIDENCE, values)
    suffix = f" (drift distance {distance:.3f})" if distance is not None else ""
    ax.set_title(f"Confidence distribution: captured traffic against the baseline{suffix}")
    ax.set_xlabel("confidence (highest class probability)")
    ax.set_ylabel("density (share per unit of confidence)")
    ax.legend(loc="best", framealpha=0.9)
    ax.grid(alpha=0.3)
    fig.savefig(path, dpi=DPI)


def plot_image_stats_drift(
    table: FeatureTable,
    path: Path,
    baseline: Baseline | None,
    violations: Sequence[dict[str, str]] | None = None,
) -> None:
    """Small multiples against the baseline; red marks a feature with a baseline_drift_check violation."""
    fig = _figure(13.0, 7.5)
    axes = fig.subplots(2, 3)
    threshold = _drift_threshold(baseline)
    stats = feature_map(baseline.statistics) if baseline else {}
    flagged = (
        {v["feature_name"] for v in violations if v["constraint_check_type"] == "baseline_drift_check"}
        if violations is not None
        else None
    )

    def drifted(name: str, distance: float) -> bool:
        return distance > threshold if flagged is None else name in flagged

    distances: list[tuple[str, float]] = []
    for ax, (name, unit) in zip(axes.flat, DRIFT_FEATURES, strict=False):
        values = table.numeric[name]
        values = values[~np.isnan(values)]
        base = _baseline_density(stats.get(name, {})) if baseline else None
        if base is not None:
            ax.bar(
                base[0],
                base[2],
                width=base[1],
                align="edge",
                color=_BASE,
                alpha=0.55,
                edgecolor="white",
                label="baseline",
            )
        if values.size:
            lo = float(values.min())
            hi = float(values.max())
            if base is not None:
                lo = min(lo, float(base[0][0]))
                hi = max(hi, float(base[0][-1] + base[1][-1]))
            edges = np.linspace(lo, hi if hi > lo else lo + 1.0, 21)
            ax.hist(
                values,
                bins=edges,
                density=True,
                histtype="step",
                linewidth=2.0,
                color=_ABOVE,
                label="captured",
            )
        distance = _feature_distance(baseline, name, values)
        if distance is not None:
            distances.append((name, distance))
            color = _BELOW if drifted(name, distance) else "black"
            ax.set_title(f"{name}: distance {distance:.3f}", color=color, fontsize=11)
        else:
            ax.set_title(name, fontsize=11)
        ax.set_xlabel(unit, fontsize=9)
        ax.set_ylabel("density", fontsize=9)
        ax.tick_params(labelsize=8)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    ax = axes.flat[-1]
    for name in (CONFIDENCE, *(f"prob_{c}" for c in table.classes)):
        values = table.numeric.get(name)
        if values is not None:
            distance = _feature_distance(baseline, name, values[~np.isnan(values)])
            if distance is not None:
                distances.append((name, distance))
    if distances:
        names = [d[0] for d in distances][::-1]
        vals = [d[1] for d in distances][::-1]
        colors = [_BELOW if drifted(n, v) else _ABOVE for n, v in zip(names, vals, strict=True)]
        ax.barh(names, vals, color=colors)
        ax.axvline(threshold, color="black", linestyle="--", linewidth=1.2, label=f"threshold {threshold:g}")
        ax.set_xlim(0, max(1.0 * max(vals) * 1.1, threshold * 1.5))
        ax.set_xlabel("drift distance (max CDF gap, 0-1)", fontsize=9)
        ax.tick_params(labelsize=8)
        ax.legend(fontsize=8, loc="lower right")
        ax.set_title("Drift distance per feature", fontsize=11)
    else:
        _empty(ax, "no baseline: run\n`sconeflow monitor baseline`")
        ax.set_title("Drift distance per feature", fontsize=11)
    fig.suptitle(
        "Image statistics of captured traffic against the baseline (red = baseline_drift_check violation)"
    )
    fig.savefig(path, dpi=DPI)


def plot_invocations_per_minute(table: FeatureTable, path: Path) -> None:
    fig = _figure()
    ax = fig.add_subplot()
    if len(table) == 0:
        _empty(ax, "no invocations")
        ax.set_title("Invocations per minute")
        fig.savefig(path, dpi=DPI)
        return
    minutes = table.times.astype("datetime64[m]")
    unique, counts = np.unique(minutes, return_counts=True)
    span_minutes = int((unique[-1] - unique[0]).astype(np.int64)) + 1
    if span_minutes <= 3 * 24 * 60:
        timeline = np.arange(unique[0], unique[-1] + np.timedelta64(1, "m"), dtype="datetime64[m]")
        full = np.zeros(timeline.size)
        full[(unique - unique[0]).astype(np.int64)] = counts
        ax.bar(timeline, full, width=1 / 1440, align="edge", color=_ABOVE, label="invocations in the minute")
        ax.set_title(
            f"Invocations per minute: {len(table)} in {span_minutes} min, peak {int(counts.max())}/min, "
            f"mean {len(table) / span_minutes:.2f}/min"
        )
    else:
        ax.vlines(unique, 0, counts, color=_ABOVE, linewidth=1)
        ax.scatter(unique, counts, s=14, color=_ABOVE, label="minutes with traffic", zorder=3)
        ax.set_title(
            f"Invocations per minute (only the {unique.size} minutes with traffic; "
            f"traffic spans {span_minutes // 1440} days)"
        )
    ax.set_ylim(0, counts.max() * 1.15 + 0.5)
    ax.set_ylabel("invocations per minute")
    _time_axis(ax)
    ax.legend(loc="best", framealpha=0.9)
    ax.grid(alpha=0.3, axis="y")
    fig.savefig(path, dpi=DPI)


# -- HTML ---------------------------------------------------------------------------------------

_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:1200px;
 color:#222}
h1{margin-bottom:0.2em} .sub{color:#666;margin-top:0}
table{border-collapse:collapse;margin:0.6em 0 1.4em}
td,th{border:1px solid #ddd;padding:4px 10px;text-align:left}
th{background:#f4f4f4} td.num{text-align:right;font-variant-numeric:tabular-nums}
.ok{color:#2e7d32;font-weight:bold} .bad{color:#c62828;font-weight:bold}
figure{margin:1.2em 0} img{max-width:100%;border:1px solid #eee} figcaption{color:#555}
"""


def _fmt(value: float | None, pattern: str = "{:.4f}") -> str:
    return "n/a" if value is None else pattern.format(value)


def render_html(
    summary: ReportSummary,
    plots: Sequence[tuple[Path, str]],
    violations: Sequence[dict[str, str]],
    malformed: Sequence[MalformedLine],
    *,
    source: str,
    baseline: Baseline | None,
    title: str = "sconeflow model monitoring report",
) -> str:
    e = html.escape
    rows = [
        ("invocations (records)", str(summary.count)),
        ("records with output probabilities", str(summary.with_confidence)),
        ("mean confidence", _fmt(summary.mean_confidence)),
        (f"below threshold {summary.threshold:g}", f"{summary.below_threshold}"),
        (f"share below threshold {summary.threshold:g}", _fmt(summary.share_below_threshold, "{:.2%}")),
        ("first inference (UTC)", summary.first or "n/a"),
        ("last inference (UTC)", summary.last or "n/a"),
        ("malformed lines skipped", str(summary.malformed)),
        ("violations", str(summary.violations) if baseline else "n/a (no baseline)"),
    ]
    if baseline is not None:
        base_conf = feature_map(baseline.statistics).get(CONFIDENCE, {}).get("numerical_statistics", {})
        rows.append(("baseline images", str(baseline.item_count)))
        rows.append(("baseline mean confidence", _fmt(base_conf.get("mean"))))
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{e(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{e(title)}</h1>",
        f'<p class="sub">Source: <code>{e(source)}</code> · baseline: '
        f"<code>{e(baseline.uri) if baseline else 'none'}</code> · generated "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC</p>",
        "<h2>Summary</h2>",
        '<table id="summary">',
        *(f'<tr><th>{e(k)}</th><td class="num" data-key="{e(k)}">{e(v)}</td></tr>' for k, v in rows),
        "</table>",
        "<h2>Predicted classes</h2>",
        '<table id="classes"><tr><th>class</th><th>invocations</th><th>share</th></tr>',
    ]
    total = sum(summary.class_counts.values()) or 1
    for cls, count in summary.class_counts.items():
        parts.append(
            f'<tr><td>{e(cls)}</td><td class="num">{count}</td><td class="num">{count / total:.1%}</td></tr>'
        )
    parts.append("</table>")
    parts.append("<h2>Constraint violations</h2>")
    if baseline is None:
        parts.append("<p>No baseline: run <code>sconeflow monitor baseline</code> to check constraints.</p>")
    elif not violations:
        parts.append('<p class="ok">No violations: the traffic matches the baseline.</p>')
    else:
        parts.append(f'<p class="bad">{len(violations)} violation(s).</p>')
        parts.append('<table id="violations"><tr><th>feature</th><th>check</th><th>description</th></tr>')
        for v in violations:
            parts.append(
                f"<tr><td>{e(v['feature_name'])}</td><td>{e(v['constraint_check_type'])}</td>"
                f"<td>{e(v['description'])}</td></tr>"
            )
        parts.append("</table>")
    parts.append("<h2>Plots</h2>")
    for path, caption in plots:
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        parts.append(
            f'<figure><img alt="{e(caption)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{e(caption)} ({e(path.name)})</figcaption></figure>"
        )
    if malformed:
        parts.append(f"<h2>Skipped lines ({len(malformed)})</h2>")
        parts.append('<table id="malformed"><tr><th>file</th><th>line</th><th>reason</th></tr>')
        for m in malformed[:100]:
            parts.append(
                f'<tr><td>{e(m.source)}</td><td class="num">{m.line}</td><td>{e(m.reason)}</td></tr>'
            )
        parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write_report(
    table: FeatureTable,
    out_dir: str | Path,
    *,
    baseline: Baseline | None = None,
    violations: Sequence[dict[str, str]] | None = None,
    malformed: Sequence[MalformedLine] = (),
    threshold: float = DEFAULT_THRESHOLD,
    source: str = "",
) -> ReportResult:
    """Write the five PNGs and ``report.html`` into ``out_dir``."""
    directory = Path(out_dir).expanduser()
    if directory.exists() and not directory.is_dir():
        raise ReportError(f"report folder {directory} exists and is not a folder")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        return _write_report(table, directory, baseline, violations, malformed, threshold, source)
    except OSError as exc:
        raise ReportError(f"cannot write the report into {directory}: {exc}") from exc


def _write_report(
    table: FeatureTable,
    directory: Path,
    baseline: Baseline | None,
    violations: Sequence[dict[str, str]] | None,
    malformed: Sequence[MalformedLine],
    threshold: float,
    source: str,
) -> ReportResult:
    paths = [directory / name for name, _ in PLOTS]
    plot_confidence_over_time(table, paths[0], threshold)
    plot_class_mix(table, paths[1])
    plot_confidence_histogram(table, paths[2], baseline, threshold)
    plot_image_stats_drift(table, paths[3], baseline, violations)
    plot_invocations_per_minute(table, paths[4])
    violation_list = list(violations or [])
    summary = summarize(table, threshold, malformed=len(malformed), violations=len(violation_list))
    page = render_html(
        summary,
        [(p, caption) for p, (_, caption) in zip(paths, PLOTS, strict=True)],
        violation_list,
        malformed,
        source=source,
        baseline=baseline,
    )
    html_path = directory / "report.html"
    html_path.write_text(page, encoding="utf-8")
    log.info("wrote %s and %d plots", html_path, len(paths))
    return ReportResult(directory, html_path, paths, summary, violation_list)
