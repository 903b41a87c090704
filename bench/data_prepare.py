"""Benchmark ``prepare_dataset`` on the shared mini tarball (first run and idempotent re-run).

Baseline, measured in the same process: the bare minimum any ETL must do, namely gunzip + untar the
tarball in memory and ``pickle.loads`` its three members (unsafely, with the stdlib). The ratios say
how much the full, safe ETL (safe extraction, restricted unpickling, PNG encoding, ETag comparison,
atomic object writes, manifests) costs on top of that.

    python bench/data_prepare.py [--tarball PATH] [--repeat N]
"""

from __future__ import annotations

import argparse
import pickle
import statistics
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from sconeflow.config import load_settings
from sconeflow.data.dataset import load_split
from sconeflow.data.prepare import _select, load_source, prepare_dataset, resolve_classes
from sconeflow.store import open_store

MINI = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "cifar-100-vehicles-mini.tar.gz"


def baseline(tarball: Path) -> int:
    rows = 0
    with tarfile.open(tarball) as tar:
        for name in ("meta", "train", "test"):
            obj = pickle.loads(tar.extractfile(f"cifar-100-python/{name}").read(), encoding="bytes")
            rows += len(obj.get(b"filenames", []))
    return rows


def transform_only(settings, tarball: Path) -> int:
    """Everything before the first write: safe extraction, restricted unpickling, selection, PNGs."""
    data, _ = load_source(settings, tarball)
    objects, _, _ = _select(data, resolve_classes(data.fine_label_names, None, None))
    return sum(len(v) for v in objects.values())


def rows_of(report) -> range:
    return range(sum(report.counts["train"].values()))


def timed(func: Callable[[], object], repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = func()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tarball", type=Path, default=MINI)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--work-dir",
        type=Path,
        default=Path.home(),
        help="where the throw-away homes go (default: the user's home, like ~/.sconeflow; /tmp can be "
        "much slower at creating files on shared machines)",
    )
    args = parser.parse_args()
    if not args.tarball.is_file():
        raise SystemExit(f"no tarball at {args.tarball} (pass --tarball)")

    base_s, rows = timed(lambda: baseline(args.tarball), args.repeat)
    with tempfile.TemporaryDirectory(prefix=".sconeflow-bench-", dir=args.work_dir) as home:
        settings = load_settings(home)
        transform_s, _ = timed(lambda: transform_only(settings, args.tarball), args.repeat)
    first, again, load = [], [], []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory(prefix=".sconeflow-bench-", dir=args.work_dir) as home:
            settings = load_settings(home)
            settings.ensure_dirs()
            t, report = timed(lambda s=settings: prepare_dataset(s, source=args.tarball), 1)
            first.append(t)
            t, rerun = timed(lambda s=settings: prepare_dataset(s, source=args.tarball), 1)
            again.append(t)
            assert rerun.written == 0, "re-run rewrote objects"
            store = open_store(settings.resolved_store_uri)
            t, _ = timed(lambda st=store, s=settings: load_split(st, s.bucket, "train"), 1)
            load.append(t)
    first_s, again_s, load_s = (statistics.median(v) for v in (first, again, load))
    print(f"tarball: {args.tarball} ({args.tarball.stat().st_size / 1e6:.1f} MB, {rows} rows)")
    print(f"images staged: {report.total_images} {report.counts}")
    print(f"baseline (untar + stdlib pickle.loads): {base_s * 1000:8.1f} ms")
    ratio = transform_s / base_s
    print(f"safe extract + unpickle + PNG encode:   {transform_s * 1000:8.1f} ms  = {ratio:5.1f}x baseline")
    for label, seconds in (("first run", first_s), ("idempotent re-run", again_s)):
        ratio = seconds / base_s
        print(f"prepare_dataset, {label + ':':<22}{seconds * 1000:8.1f} ms  = {ratio:5.1f}x baseline")
    print(f"load_split(train), {len(rows_of(report))} images:  {load_s * 1000:8.1f} ms")
    print(f"(median of {args.repeat} runs each; homes under {args.work_dir})")


if __name__ == "__main__":
    main()
