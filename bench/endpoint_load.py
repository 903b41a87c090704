"""Endpoint load benchmark: latency and throughput over HTTP vs the model's raw in-process throughput.

    python bench/endpoint_load.py [--model REF] [--duration 5] [--concurrency 1,8,32,64]

1. Model: ``--model`` (training-job name or model.tar.gz), else the default recipe's net (64-256-256,
   ~2M parameters) trained for one epoch on a tiny synthetic dataset (weights do not change the speed),
   shipped as int8 like the default recipe's (``--graph float32``: the float32 graph).
2. Baseline, measured in this run: ``OnnxClassifier.predict_proba`` in-process at batch 1/8/32/64
   (images/s, and the batch-1 median latency).
3. Deploy two endpoints side by side, capture 0% and 100%, and drive them in turn at each concurrency,
   ``--rounds`` times with the order alternating (a drift of the shared machine hits both alike; figures
   are medians over rounds, the capture cost the median of paired ratios), with ``wrk`` when it is
   installed (``--generator auto``, a Lua script POSTs the PNG and prints exact p50/p99), else with this
   script's own asyncio HTTP/1.1 keep-alive client (``--generator python``: one protocol object per
   connection, the request bytes preformatted); report p50/p99 latency and requests/s, and the ratio to
   the raw throughput at the same batch size. The generator used is printed. The c=32 target's ratio is
   paired too: each round also measures the raw batch-32 throughput right before its two runs, and the
   figure is the median of the rounds' ratios (this VM's speed drifts by 20% within minutes, so a
   baseline taken once at the start would decide the ratio as much as the server does).
4. Overload: a queue of 64 against 10x as many concurrent clients (the asyncio client, which separates
   200s from 429s); reports throttling latency, that the server stays up, and that every accepted request
   has its capture record.

The load generator runs on the same machine (and the same cores) as the server; on a shared 2-core VM
every figure includes that contention (wrk costs far less CPU per request than the Python client).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from sconeflow.config import Settings, load_settings
from sconeflow.store import LocalStore


def build_model(workdir: Path, quantize: str = "int8") -> tuple[Path, bytes]:
    """The default-architecture net (one epoch on synthetic data) and one test PNG; ``quantize`` picks
    the shipped graph as ``sconeflow train --quantize`` does (int8: what the default recipe ships)."""
    from sconeflow.data.prepare import prepare_dataset
    from sconeflow.data.synthetic import make_cifar_tarball
    from sconeflow.model.recipe import TrainConfig
    from sconeflow.model.train import train

    settings = load_settings(workdir / "train-home")
    settings.ensure_dirs()
    store = LocalStore(settings.buckets_dir)
    tarball = make_cifar_tarball(workdir / "syn.tar.gz", n_train=16, n_test=4, seed=0)
    prepare_dataset(settings, source=tarball, classes=["bicycle", "motorcycle"], store=store)
    config = TrainConfig(
        epochs=1, ensemble_size=1, distill=False, evaluate_test=False, val_fraction=0.0, quantize=quantize
    )
    job = train(settings, config, store=store)
    bucket, _, key = job.model_artifacts.removeprefix("s3://").partition("/")
    artifact = workdir / "model.tar.gz"
    artifact.write_bytes(store.get_object(bucket, key))
    return artifact, test_png(settings, store)


def test_png(settings: Settings, store: LocalStore) -> bytes:
    first = next(iter(store.iter_objects(settings.bucket, "test/")))
    return store.get_object(settings.bucket, first.key)


def raw_throughput(artifact: bytes, threads: int, batches: list[int], seconds: float) -> dict[int, dict]:
    from sconeflow.model.artifact import load_classifier

    classifier = load_classifier(artifact, intra_op_threads=threads)
    c, h, w = classifier.input_shape
    out: dict[int, dict] = {}
    rng = np.random.default_rng(0)
    for batch in batches:
        images = rng.integers(0, 256, (batch, h, w, c), dtype=np.uint8)
        for _ in range(5):
            classifier.predict_proba(images)
        times = []
        cpu0 = time.process_time()
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            classifier.predict_proba(images)
            times.append(time.perf_counter() - t0)
        cpu = time.process_time() - cpu0
        out[batch] = {
            "images_per_s": batch * len(times) / sum(times),
            "p50_ms": statistics.median(times) * 1e3,
            "cpu_us_per_image": cpu / (batch * len(times)) * 1e6,
        }
    return out


def raw_side_by_side(artifact: bytes, workers: int, batch: int, seconds: float) -> dict:
    """The server's layout without the server: ``workers`` threads each running batches of ``batch`` on one
    single-threaded session at once (the most this machine gets out of the graph)."""
    import threading

    from sconeflow.model.artifact import cpu_session, load_classifier, read_artifact

    onnx_bytes, _ = read_artifact(artifact)
    classifier = load_classifier(artifact, intra_op_threads=1)
    session = cpu_session(onnx_bytes, 1, spinning=False)
    name = session.get_inputs()[0].name
    c, h, w = classifier.input_shape
    x = classifier.normalize(np.random.default_rng(0).integers(0, 256, (batch, h, w, c), dtype=np.uint8))
    session.run(None, {name: x})
    done = [0] * workers
    stop = threading.Event()

    def work(i: int) -> None:
        while not stop.is_set():
            session.run(None, {name: x})
            done[i] += batch

    threads = [threading.Thread(target=work, args=(i,)) for i in range(workers)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join()
    return {"images_per_s": sum(done) / (time.perf_counter() - started), "workers": workers, "batch": batch}


# -- the load generator ---------------------------------------------------------------------------


def request_bytes(path: str, host: str, port: int, body: bytes) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: image/png\r\n"
        f"Content-Length: {len(body)}\r\nAccept: application/json\r\n\r\n"
    ).encode()
    return head + body


class _Client(asyncio.Protocol):
    """One keep-alive connection of the closed-loop client: send, read the whole answer, send again."""

    def __init__(
        self, payload: bytes, deadline: float, stats: dict[str, list], finished: asyncio.Future
    ) -> None:
        self.payload = payload
        self.deadline = deadline
        self.stats = stats
        self.finished = finished
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.started = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._send()

    def _send(self) -> None:
        self.buffer = b""
        self.started = time.perf_counter()
        self.transport.write(self.payload)  # type: ignore[union-attr]

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer + data if self.buffer else data
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            self.buffer = buffer
            return
        head = buffer[:end]
        length = 0
        at = head.lower().find(b"content-length:")
        if at >= 0:
            stop = head.find(b"\r\n", at)
            length = int(head[at + 15 : stop if stop > 0 else len(head)])
        if len(buffer) < end + 4 + length:
            self.buffer = buffer
            return
        now = time.perf_counter()
        status = int(head[9:12])
        key = "ok" if status == 200 else "throttled" if status == 429 else "other"
        self.stats[key].append(now - self.started if key != "other" else status)
        if now < self.deadline:
            self._send()
        else:
            self.transport.close()  # type: ignore[union-attr]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.finished.done():
            self.finished.set_result(None)


async def _run_clients(host: str, port: int, payload: bytes, concurrency: int, deadline: float) -> dict:
    loop = asyncio.get_running_loop()
    stats: dict[str, list] = {"ok": [], "throttled": [], "other": []}
    waits = []
    for _ in range(concurrency):
        finished = loop.create_future()
        await loop.create_connection(lambda f=finished: _Client(payload, deadline, stats, f), host, port)
        waits.append(finished)
    await asyncio.gather(*waits)
    return stats


async def drive(url: str, name: str, png: bytes, concurrency: int, seconds: float) -> dict:
    """The Python closed-loop client: ``concurrency`` keep-alive connections for ``seconds``."""
    host, port_text = url.removeprefix("http://").split(":")
    port = int(port_text)
    payload = request_bytes(f"/endpoints/{name}/invocations", host, port, png)
    warm = await _run_clients(host, port, payload, min(concurrency, 8), time.perf_counter() + 0.3)
    started = time.perf_counter()
    stats = await _run_clients(host, port, payload, concurrency, started + seconds)
    wall = time.perf_counter() - started
    lat_ok, lat_429 = stats["ok"], stats["throttled"]
    return {
        "ok": len(lat_ok),
        "warm_ok": len(warm["ok"]),
        "throttled": len(lat_429),
        "other": len(stats["other"]),
        "rps": len(lat_ok) / wall,
        "p50_ms": _pct(lat_ok, 50),
        "p99_ms": _pct(lat_ok, 99),
        "throttle_p50_ms": _pct(lat_429, 50),
        "throttle_p99_ms": _pct(lat_429, 99),
    }


WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "image/png"
wrk.headers["Accept"] = "application/json"
local f = assert(io.open(os.getenv("SCONEFLOW_BENCH_BODY"), "rb"))
wrk.body = f:read("*all")
f:close()
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("SCONEFLOW-WRK %d %d %d %d %d %d %d %d %d\\n", summary.requests,
    summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


def wrk_version(wrk: str) -> str:
    out = subprocess.run([wrk, "--version"], capture_output=True, text=True, check=False)
    return (
        (out.stdout + out.stderr).splitlines()[0].split(" Copyright")[0] if (out.stdout + out.stderr) else wrk
    )


def drive_wrk(
    wrk: str, url: str, name: str, png: bytes, concurrency: int, seconds: float, workdir: Path, warm: bool
) -> dict:
    """wrk, one thread, ``concurrency`` keep-alive connections; exact p50/p99 from its Lua ``done``."""
    body = workdir / "body.png"
    body.write_bytes(png)
    script = workdir / "post.lua"
    script.write_text(WRK_SCRIPT)
    env = {**os.environ, "SCONEFLOW_BENCH_BODY": str(body)}
    target = f"{url}/endpoints/{name}/invocations"
    threads = 1 if concurrency <= 64 else 2
    base = [wrk, "-t", str(threads), "-c", str(concurrency), "--timeout", "10s", "-s", str(script)]
    if warm:
        subprocess.run([*base, "-d", "1s", target], env=env, capture_output=True, check=True)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(
        [*base, "-d", f"{max(1, round(seconds))}s", target],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    match = re.search(r"SCONEFLOW-WRK ([\d ]+)", out.stdout)
    if match is None:
        raise RuntimeError(f"wrk printed no summary:\n{out.stdout}\n{out.stderr}")
    requests, duration_us, status, *socket_errors, p50_us, p99_us = (int(v) for v in match.group(1).split())
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    generator_cpu = after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime
    ok = requests - status
    return {
        "ok": ok,
        "warm_ok": 0,
        "throttled": 0,
        "other": status + sum(socket_errors),
        "rps": ok / (duration_us / 1e6),
        "p50_ms": p50_us / 1e3,
        "p99_ms": p99_us / 1e3,
        "throttle_p50_ms": float("nan"),
        "throttle_p99_ms": float("nan"),
        "generator_cpu_us": generator_cpu / max(1, requests) * 1e6,
    }


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q) * 1e3) if values else float("nan")


def server_totals(url: str) -> dict[str, float]:
    """Sums and counts of ModelLatency / OverheadLatency (us) and batch sizes from the endpoint's /metrics."""
    import urllib.request

    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as response:
        text = response.read().decode()
    values: dict[str, float] = {}
    for line in text.splitlines():
        if not line.startswith("#") and "{" in line and ("_sum{" in line or "_count{" in line):
            values[line.split("{", 1)[0]] = float(line.rsplit(" ", 1)[1])
    return values


def server_means(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    def mean(metric: str) -> float:
        count = after.get(f"{metric}_count", 0.0) - before.get(f"{metric}_count", 0.0)
        total = after.get(f"{metric}_sum", 0.0) - before.get(f"{metric}_sum", 0.0)
        return total / count if count else float("nan")

    return {
        "model_us": mean("ModelLatency"),
        "overhead_us": mean("OverheadLatency"),
        "batch": mean("sconeflow_batch_size"),
        "throttle_us": mean("sconeflow_throttle_latency"),
    }


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), from /proc; NaN where /proc is absent."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(view, name: str, png: bytes, level: int, seconds: float, wrk: str | None, workdir: Path) -> dict:
    """One run against one endpoint: the generator's figures plus the server's own means and CPU."""
    if wrk:
        drive_wrk(wrk, view.url, name, png, level, 1.0, workdir, warm=False)  # warm-up, not measured
    before = server_totals(view.url)
    cpu0 = process_cpu_seconds(view.pid or 0)
    if wrk:
        row = drive_wrk(wrk, view.url, name, png, level, seconds, workdir, warm=False)
    else:
        row = asyncio.run(drive(view.url, name, png, level, seconds))
    cpu = process_cpu_seconds(view.pid or 0) - cpu0
    row["server"] = server_means(before, server_totals(view.url))
    served = max(1, row["ok"] + row["warm_ok"] + row["throttled"] + row["other"])
    row["server"]["cpu_us_per_request"] = cpu / served * 1e6
    return row


def median_row(rows: list[dict]) -> dict:
    """Per-field medians of several runs (errors summed: one failed request anywhere shows)."""
    out = {key: statistics.median(r[key] for r in rows) for key in ("rps", "p50_ms", "p99_ms")}
    out["generator_cpu_us"] = statistics.median(r.get("generator_cpu_us", float("nan")) for r in rows)
    for key in ("ok", "warm_ok", "throttled", "other"):
        out[key] = sum(r[key] for r in rows)
    out["server"] = {k: statistics.median(r["server"][k] for r in rows) for k in rows[0]["server"]}
    return out


def count_capture_records(settings: Settings, endpoint: str) -> int:
    store = LocalStore(settings.buckets_dir)
    return sum(
        store.get_object(settings.bucket, o.key).count(b"\n")
        for o in store.iter_objects(settings.bucket, f"data_capture/{endpoint}/")
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", help="training-job name or model.tar.gz (default: build the default net)")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per measurement")
    parser.add_argument("--concurrency", default="1,8,32,64")
    parser.add_argument("--threads", type=int, default=0, help="ONNX Runtime threads (0 = CPU cores, max 4)")
    parser.add_argument(
        "--workers", type=int, default=0, help="server: inference workers (0 = one per core, max 4)"
    )
    parser.add_argument("--max-wait-ms", type=float, default=0.0)
    parser.add_argument("--max-batch", type=int, default=64, help="server: largest micro-batch")
    parser.add_argument(
        "--rounds", type=int, default=3, help="alternating capture 0%%/100%% runs per concurrency (medians)"
    )
    parser.add_argument(
        "--graph", choices=("int8", "float32"), default="int8", help="the built net's graph (no --model)"
    )
    parser.add_argument("--skip-overload", action="store_true")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed (nightly use)")
    parser.add_argument("--spin", action="store_true", help="let ONNX Runtime threads spin in the server")
    parser.add_argument(
        "--spin-max-batch", type=int, help="server: batches up to this size on the spinning session (0: none)"
    )
    parser.add_argument(
        "--refill-ms", type=float, default=4.0, help="server: wait this long at most for a batch's callers"
    )
    parser.add_argument(
        "--generator",
        choices=("auto", "wrk", "python"),
        default="auto",
        help="load generator: wrk when installed (auto), or this script's asyncio client",
    )
    args = parser.parse_args()
    wrk = shutil.which("wrk") if args.generator in ("auto", "wrk") else None
    if args.generator == "wrk" and wrk is None:
        parser.error("--generator wrk: wrk is not installed (apt-get install wrk)")
    levels = [int(c) for c in args.concurrency.split(",")]
    threads = args.threads or max(1, min(4, os.cpu_count() or 1))

    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass

    from sconeflow.endpoint.registry import delete, deploy
    from sconeflow.endpoint.server import ServingOptions

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        if args.model:
            from sconeflow.model.artifact import resolve_model

            artifact_bytes = resolve_model(load_settings(), args.model).data
            artifact = workdir / "model.tar.gz"
            artifact.write_bytes(artifact_bytes)
            import io

            from PIL import Image

            buf = io.BytesIO()
            Image.fromarray(np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(
                buf, "PNG"
            )
            png = buf.getvalue()
        else:
            print(f"building the default net (1 epoch on synthetic data), {args.graph} graph", flush=True)
            artifact, png = build_model(workdir, "int8" if args.graph == "int8" else "none")
        print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; ORT threads {threads}")
        generator = f"wrk ({wrk_version(wrk)}, 1 thread)" if wrk else "python asyncio client (uvloop)"
        print(f"load generator: {generator}")
        batches = {1, *levels} | ({args.max_batch} if args.max_batch < max(levels) else set())
        artifact_bytes = artifact.read_bytes()
        raw = raw_throughput(artifact_bytes, threads, sorted(batches), min(args.duration, 3.0))
        print("\nraw in-process OnnxClassifier.predict_proba (baseline, same run):")
        for batch, row in raw.items():
            print(
                f"  batch {batch:>3}: {row['images_per_s']:8.1f} images/s   "
                f"p50 {row['p50_ms']:6.2f} ms/batch   CPU {row['cpu_us_per_image']:6.0f} us/image"
            )
        workers = ServingOptions(workers=args.workers).inference_workers  # as the server counts them
        side = raw_side_by_side(artifact_bytes, workers, 16, min(args.duration, 3.0)) if workers > 1 else None
        if side:
            print(
                f"  {workers} single-threaded sessions side by side, batch 16 each (the server's layout; "
                f"information): {side['images_per_s']:8.1f} images/s"
            )

        home = workdir / "home"
        os.environ["SCONEFLOW_HOME"] = str(home)
        settings = load_settings(home)
        settings.ensure_dirs()
        serving = {
            "threads": threads,
            "workers": args.workers,
            "max_wait_ms": args.max_wait_ms,
            "max_queue": 256,
            "max_batch": args.max_batch,
            "allow_spinning": args.spin,
            **({} if args.spin_max_batch is None else {"spin_max_batch": args.spin_max_batch}),
            "refill_ms": args.refill_ms,
        }
        # Both endpoints run side by side and are driven in turn, ``--rounds`` times per concurrency, the
        # order alternating: a drift of the shared machine's speed hits both alike. Each figure is the
        # median over rounds; the capture cost is the median of the rounds' paired ratios.
        views = {
            capture: deploy(
                settings, str(artifact), name=f"bench-c{capture}", capture_percent=capture, serving=serving
            )
            for capture in (0, 100)
        }
        runs: dict[tuple[int, int], list[dict]] = {}
        raw_rounds: dict[int, list[float]] = {}  # raw images/s at batch = level, taken before each round
        for level in levels:
            for round_ in range(args.rounds):
                if level == 32:
                    raw_rounds.setdefault(level, []).append(
                        raw_throughput(artifact_bytes, threads, [level], 1.5)[level]["images_per_s"]
                    )
                for capture in (0, 100) if round_ % 2 == 0 else (100, 0):
                    runs.setdefault((capture, level), []).append(
                        measure(views[capture], f"bench-c{capture}", png, level, args.duration, wrk, workdir)
                    )
        for capture in views:
            delete(settings, f"bench-c{capture}")
        results = {key: median_row(rows) for key, rows in runs.items()}

        print(
            f"\nHTTP (POST /endpoints/NAME/invocations, 32x32 PNG, keep-alive; load generator: {generator}):"
        )
        print(
            f"  {'capture':>7} {'conc':>4} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} "
            f"{'vs raw@batch':>13} {'errors':>6} {'batch':>6} {'model us':>9} {'overhead us':>12} "
            f"{'srv CPU us/req':>15} {'gen CPU us/req':>15} {'raw CPU us/img':>15}"
        )
        for (capture, level), row in results.items():
            nearest = raw[min(raw, key=lambda b: abs(b - round(row["server"]["batch"] or 1)))]
            base = raw[min(raw, key=lambda b: abs(b - level))]["images_per_s"]
            srv = row["server"]
            print(
                f"  {capture:>6}% {level:>4} {row['rps']:8.1f} {row['p50_ms']:7.2f} {row['p99_ms']:7.2f} "
                f"{row['rps'] / base:12.0%} {row['other'] + row['throttled']:>6} "
                f"{srv['batch']:6.1f} {srv['model_us']:9.0f} {srv['overhead_us']:12.0f} "
                f"{srv['cpu_us_per_request']:15.0f} {row.get('generator_cpu_us', float('nan')):15.0f} "
                f"{nearest['cpu_us_per_image']:15.0f}"
            )
        print("\ntargets:")
        goals: dict[str, bool] = {}
        c1 = results.get((0, 1))
        if c1:
            goals["c=1 p50 <= raw batch-1 + 1 ms"] = c1["p50_ms"] - raw[1]["p50_ms"] <= 1.0
            print(
                f"  c=1 p50 {c1['p50_ms']:.2f} ms vs raw batch-1 {raw[1]['p50_ms']:.2f} ms + 1 ms "
                f"-> overhead {c1['p50_ms'] - raw[1]['p50_ms']:.2f} ms"
            )
        c32 = results.get((100, 32))
        if c32 and 32 in raw_rounds:
            ratios = [row["rps"] / base for row, base in zip(runs[(100, 32)], raw_rounds[32], strict=True)]
            ratio = statistics.median(ratios)
            goals["c=32 capture 100%: >= 80% of raw batch-32"] = ratio >= 0.8
            goals["c=32 capture 100%: p99 <= 50 ms"] = c32["p99_ms"] <= 50.0
            print(
                f"  c=32 capture 100%: {ratio:.0%} of raw batch-32 throughput, median of {len(ratios)} "
                f"rounds ({', '.join(f'{r:.0%}' for r in ratios)}; raw measured before each round: "
                f"{', '.join(f'{b:.0f}' for b in raw_rounds[32])} images/s), p99 {c32['p99_ms']:.1f} ms "
                "(targets >= 80%, <= 50 ms)"
            )
            if side:
                print(
                    f"  (information: {c32['rps'] / side['images_per_s']:.0%} of {workers} single-threaded "
                    "sessions side by side, the most this machine gets out of the graph)"
                )
        for level in levels:
            a, b = runs.get((0, level)), runs.get((100, level))
            if a and b:
                costs = [1 - on["rps"] / off["rps"] for off, on in zip(a, b, strict=True)]
                goals[f"capture cost at c={level} <= 5%"] = statistics.median(costs) <= 0.05
                print(
                    f"  capture cost at c={level}: {statistics.median(costs):+.1%} of throughput, median of "
                    f"{len(costs)} paired rounds ({', '.join(f'{c:+.1%}' for c in costs)}) (target <= 5%)"
                )
                # The same pairs in server CPU per request (writer thread included): steadier than
                # throughput on a shared VM, so a run can tell ~4% from 5-6% (information, not a target).
                cpu = [
                    on["server"]["cpu_us_per_request"] / off["server"]["cpu_us_per_request"] - 1
                    for off, on in zip(a, b, strict=True)
                ]
                if all(c == c for c in cpu):  # NaN where /proc is absent
                    print(
                        f"    (information: capture's server CPU per request at c={level}: "
                        f"{statistics.median(cpu):+.1%}, median of the same pairs)"
                    )

        if not args.skip_overload:
            name = "bench-overload"
            queue = 64
            view = deploy(
                settings,
                str(artifact),
                name=name,
                capture_percent=100,
                serving={**serving, "max_queue": queue},
            )
            before = server_totals(view.url)
            row = asyncio.run(drive(view.url, name, png, queue * 10, args.duration))
            srv = server_means(before, server_totals(view.url))
            import urllib.request

            with urllib.request.urlopen(f"{view.url}/ping", timeout=5) as response:
                alive = response.status == 200
            delete(settings, name)
            records = count_capture_records(settings, name)
            print(
                f"\noverload: {queue * 10} concurrent clients vs a queue of {queue} "
                "(load generator: python asyncio client)"
            )
            print(
                f"  accepted {row['ok']} ({row['rps']:.1f} req/s, p99 {row['p99_ms']:.1f} ms), "
                f"throttled {row['throttled']} (p50 {row['throttle_p50_ms']:.2f} ms, "
                f"p99 {row['throttle_p99_ms']:.2f} ms at the client; server-side mean "
                f"{srv['throttle_us']:.0f} us), other errors {row['other']}"
            )
            accepted = row["ok"] + row["warm_ok"]
            print(
                f"  server up after overload: {alive}; capture records {records} for {accepted} accepted "
                f"requests ({'none lost' if records == accepted else 'MISMATCH ' + str(accepted - records)})"
            )
            goals["10x overload: server up, fast 429s (< 1 ms server-side), no capture record lost"] = (
                alive and row["throttled"] > 0 and srv["throttle_us"] < 1000 and records == accepted
            )
        print()
        for goal, ok in goals.items():
            print(f"  {'PASS' if ok else 'FAIL'}  {goal}")
        return 1 if args.check and not all(goals.values()) else 0


if __name__ == "__main__":
    raise SystemExit(main())
