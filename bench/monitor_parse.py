"""Benchmark: read 100,000 data-capture records and build the full monitoring report.

Writes N capture records (AWS's byte format, 32x32 PNG inputs, JSON probability outputs) as
date-partitioned files into a LocalStore in a temporary home, then measures, in this process:

- baseline A: plain ``json.loads`` over the same lines (bytes already in memory);
- ``read_captures``: list + read the files from the store, parse and validate every record;
- features: base64 + PNG decode + image statistics + output parsing (``table_from_records``);
  baseline B: plain ``base64.b64decode`` + ``PIL.Image.open(...).convert("RGB")`` of the same inputs;
- the full report: read + features + statistics + violations against a baseline + 5 PNGs + HTML.

Run: ``python bench/monitor_parse.py [--records 100000]``. Prints records/s and ratios.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import resource
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from PIL import Image


def _png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def generate(store, bucket: str, count: int, per_file: int = 1000, seed: int = 0) -> datetime:  # type: ignore[no-untyped-def]
    """Write ``count`` records (1 per 50 ms, starting 2 hours ago); return the first record's time."""
    from sconeflow.data.synthetic import synthetic_images
    from sconeflow.monitor.captures import capture_key, format_record

    rng = np.random.default_rng(seed)
    pool = np.concatenate([synthetic_images(c, 2, 250, rng) for c in range(2)])
    pool_b64 = [base64.b64encode(_png(im)).decode("ascii") for im in pool]
    p = rng.uniform(0.0, 1.0, size=count)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    step = timedelta(milliseconds=50)
    store.create_bucket(bucket, exist_ok=True)
    for first in range(0, count, per_file):
        lines = []
        for i in range(first, min(first + per_file, count)):
            lines.append(
                format_record(
                    input_b64=pool_b64[i % len(pool_b64)],
                    output_text=f"[{p[i]!r}, {1.0 - p[i]!r}]",
                    event_id=str(uuid.uuid4()),
                    inference_time=start + step * i,
                )
            )
        data = "".join(lines).encode("utf-8")
        key = "data_capture/" + capture_key("bench-ep", start + step * first, str(uuid.uuid4()))
        store.put_object(bucket, key, data)
    return start


def timed(fn):  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    args = parser.parse_args()

    from sconeflow.config import load_settings
    from sconeflow.monitor.baseline import Baseline, compute_statistics, suggest_constraints
    from sconeflow.monitor.captures import read_captures, resolve_source
    from sconeflow.monitor.features import load_feature_table, table_from_records
    from sconeflow.monitor.report import write_report
    from sconeflow.monitor.violations import evaluate
    from sconeflow.store import LocalStore

    with tempfile.TemporaryDirectory(prefix="sconeflow-bench-monitor-") as tmp:
        os.environ["SCONEFLOW_HOME"] = str(Path(tmp) / "home")
        settings = load_settings(Path(tmp) / "home")
        settings.ensure_dirs()
        store = LocalStore(settings.buckets_dir)
        n = args.records
        start, t_gen = timed(lambda: generate(store, settings.bucket, n))
        source = resolve_source(settings, endpoint="bench-ep")
        print(f"generated {n} records in {-(-n // 1000)} files in {t_gen:.1f}s")

        # A baseline for the violations: statistics of the first 2,000 records.
        first = read_captures(settings, source, until=start + timedelta(seconds=100))
        stats = compute_statistics(table_from_records(first.records))
        baseline = Baseline("bench", stats, suggest_constraints(stats))
        del first

        def full_report() -> None:
            """What `sconeflow monitor report` does: bounded-memory load, checks, 5 PNGs + HTML."""
            tab, summary = load_feature_table(settings, source, classes=baseline.classes)
            assert len(tab) == n and not summary.malformed
            violations = evaluate(baseline, tab)
            out = Path(tmp) / "report"
            write_report(tab, out, baseline=baseline, violations=violations, source=source.uri)

        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        _, t_full = timed(full_report)
        rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(f"full report: peak RSS {rss_after / 1024:.0f} MiB (before: {rss_before / 1024:.0f} MiB)")

        lines = [
            line
            for info in store.iter_objects(settings.bucket, "data_capture/")
            for line in store.get_object(settings.bucket, info.key).splitlines()
        ]
        _, t_json = timed(lambda: [json.loads(line) for line in lines])
        lines = []
        captures, t_read = timed(lambda: read_captures(settings, source))
        assert len(captures) == n and not captures.malformed

        def plain_decode() -> None:
            for r in captures.records:
                with Image.open(io.BytesIO(base64.b64decode(r.input_data or ""))) as im:
                    im.convert("RGB")

        _, t_png = timed(plain_decode)
        _, t_feat = timed(lambda: table_from_records(captures.records))

    rows = [
        ("plain json.loads (baseline A)", t_json, None),
        ("read_captures: list+read+parse+validate", t_read, t_json),
        ("plain base64+PIL decode (baseline B)", t_png, None),
        ("features: decode+image stats+outputs", t_feat, t_png),
        ("full report (load..violations..PNGs+HTML)", t_full, t_json + t_png),
    ]
    print(f"\n{'stage':44s} {'seconds':>8s} {'records/s':>11s}  vs baseline")
    for name, seconds, base in rows:
        ratio = f"{base / seconds:.2f}x of baseline speed" if base else ""
        print(f"{name:44s} {seconds:8.2f} {n / seconds:11,.0f}  {ratio}")


if __name__ == "__main__":
    main()
