"""Warm invoke latency and throughput of the local Lambda runtime, directly and through the gateway.

    python bench/lambda_invoke.py [--n 2000] [--threads 4]

Measures an echo function (returns its event): p50/p99 latency and invocations/s through
``LambdaRuntime.invoke`` and through the gateway with a boto3 ``lambda`` client, next to two baselines
measured in the same process: calling the handler in-process (JSON in and out), and a boto3 call
the gateway answers without Lambda (S3 HeadBucket), i.e. the cost of boto3 + HTTP alone.
Targets: warm p50 <= 1 ms through the runtime, <= 3 ms through the gateway with boto3.

The gateway runs as users run it: a separate process started by ``sconeflow up`` (a gateway thread in
the benchmark's own process would compete with boto3 for the GIL and measure that instead).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ECHO = "def handler(event, context):\n    return event\n"
PAYLOAD = json.dumps(
    {
        "s3_bucket": "sconeflow-default",
        "s3_key": "test/bicycle_s_000513.png",
        "image_data": "",
        "inferences": [0.97, 0.03],
    }
).encode()


def measure(fn: Callable[[], object], n: int) -> list[float]:
    for _ in range(min(200, n)):
        fn()
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def throughput(make: Callable[[], Callable[[], object]], threads: int, seconds: float) -> float:
    stop = time.monotonic() + seconds
    counts = [0] * threads

    def loop(i: int) -> None:
        fn = make()
        while time.monotonic() < stop:
            fn()
            counts[i] += 1

    workers = [threading.Thread(target=loop, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return sum(counts) / seconds


def _family(pid: int) -> list[int]:
    """The process and its children (the gateway and its Lambda workers)."""
    pids = [pid]
    for children in Path(f"/proc/{pid}/task").glob("*/children"):
        pids += [int(c) for c in children.read_text().split()]
    return pids


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of live processes, from /proc (Linux)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def report(label: str, samples: list[float], base: float | None = None, versus: str = "baseline") -> float:
    p50 = statistics.median(samples)
    ratio = f"  ({p50 / base:6.1f}x {versus})" if base else ""
    print(f"{label:<44} p50 {p50:7.3f} ms  p99 {pct(samples, 0.99):7.3f} ms{ratio}")
    return p50


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="sconeflow-bench-"))
    os.environ["SCONEFLOW_HOME"] = str(home)
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ.setdefault(key, "bench")
    code = home / "echo"
    code.mkdir()
    (code / "echo.py").write_text(ECHO)

    from sconeflow.config import load_settings
    from sconeflow.gateway.client import boto3_client, gateway_url
    from sconeflow.lambda_runtime.registry import FunctionConfig, FunctionRegistry
    from sconeflow.lambda_runtime.runtime import LambdaRuntime
    from sconeflow.store import LocalStore

    settings = load_settings(home)
    settings.ensure_dirs()
    LocalStore(settings.buckets_dir).create_bucket("sconeflow-default")
    FunctionRegistry(settings).register(
        FunctionConfig(name="echo", handler="echo.handler", code_dir=str(code), timeout=10, concurrency=8)
    )
    import subprocess

    def cli(*words: str) -> None:
        subprocess.run([sys.executable, "-m", "sconeflow", *words], check=True, capture_output=True)

    cli("up", "--port", "0", "--no-endpoints")
    url = gateway_url(settings)
    assert url, "the gateway did not start"
    runtime = LambdaRuntime(settings)
    try:
        return _run(args, settings, runtime, url, boto3_client)
    finally:
        runtime.close()
        cli("down")


def _run(args: argparse.Namespace, settings: Any, runtime: Any, url: str, boto3_client: Any) -> int:
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, n={args.n}, payload {len(PAYLOAD)} bytes")

    namespace: dict[str, object] = {}
    exec(ECHO, namespace)
    handler = namespace["handler"]
    base = report(
        "baseline: handler called in-process (JSON)",
        measure(lambda: json.dumps(handler(json.loads(PAYLOAD), None)).encode(), args.n),
    )
    cold = time.perf_counter()
    runtime.invoke("echo", PAYLOAD)
    print(f"{'cold start (first invoke, new worker)':<44} {(time.perf_counter() - cold) * 1000:7.1f} ms")
    direct = report(
        "LambdaRuntime.invoke (warm)", measure(lambda: runtime.invoke("echo", PAYLOAD), args.n), base
    )

    s3 = boto3_client(settings, "s3", url=url)
    boto_base = report(
        "baseline: boto3 S3 HeadBucket via gateway",
        measure(lambda: s3.head_bucket(Bucket="sconeflow-default"), args.n),
    )
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port)

    def raw_invoke() -> bytes:
        conn.request("POST", "/2015-03-31/functions/echo/invocations", body=PAYLOAD)
        return conn.getresponse().read()

    report("raw HTTP POST invoke via gateway (no boto3)", measure(raw_invoke, args.n), direct, "runtime")
    conn.close()
    lam = boto3_client(settings, "lambda", url=url)
    from sconeflow.gateway.client import GATEWAY_SERVICE
    from sconeflow.services import read_record

    record = read_record(settings, GATEWAY_SERVICE)
    server_pids = _family(record.pid) if record else []
    client_cpu, server_cpu = time.process_time(), cpu_seconds(server_pids)
    via_gateway = report(
        "boto3 lambda.invoke via gateway (warm)",
        measure(lambda: lam.invoke(FunctionName="echo", Payload=PAYLOAD)["Payload"].read(), args.n),
        boto_base,
    )
    calls = args.n + min(200, args.n)
    client_ms = (time.process_time() - client_cpu) * 1000 / calls
    server_ms = (cpu_seconds(server_pids) - server_cpu) * 1000 / calls
    print(f"{'':<44} (gateway+Lambda over boto3+HTTP alone: +{via_gateway - boto_base:.3f} ms)")
    print(
        f"{'CPU per boto3 invoke: client / gateway+worker':<44} {client_ms:7.3f} ms / {server_ms:.3f} ms "
        f"(sum {client_ms + server_ms:.3f} ms: the p50 floor on an idle machine; load now "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)"
    )

    for threads in (1, args.threads):
        rate = throughput(lambda: lambda: runtime.invoke("echo", PAYLOAD), threads, args.seconds)
        print(f"{f'runtime invocations/s, {threads} thread(s)':<44} {rate:9.0f}/s")

        def make_boto() -> Callable[[], object]:
            client = boto3_client(settings, "lambda", url=url)
            return lambda: client.invoke(FunctionName="echo", Payload=PAYLOAD)["Payload"].read()

        rate = throughput(make_boto, threads, args.seconds)
        print(f"{f'gateway+boto3 invocations/s, {threads} thread(s)':<44} {rate:9.0f}/s")

    ok_runtime = direct <= 1.0
    ok_gateway = via_gateway <= 3.0
    print(
        f"targets: runtime p50 {direct:.3f} ms <= 1 ms: {'PASS' if ok_runtime else 'MISS'}; "
        f"gateway p50 {via_gateway:.3f} ms <= 3 ms: {'PASS' if ok_gateway else 'MISS'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
