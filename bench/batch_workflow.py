"""Benchmark the batch (fan-out) workflow: images/s through ``workflow/step-function-batch.json`` against
one execution of ``workflow/step-function.json`` per image, measured in the same run on the same images.

Everything is real: a throw-away home with a synthetic prepared dataset, a quick-trained model, an
endpoint server, the Lambda runtime's warm workers (``serialize_image_data``, ``classify_image``,
``filter_inference``) and the Step Functions service (executions and history in SQLite).

* baseline: one execution per image, one after the other (``run_to_end``)
* one execution per image, all started at once (``start_execution`` + ``wait``)
* the batch workflow: ONE execution whose inline Map runs the images with ``max_concurrency`` 1, 4, 8, 16

    python bench/batch_workflow.py [--images 60] [--concurrency 1,4,8,16] [--lambda-concurrency 4]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / "workflow" / "step-function.json"
BATCH = ROOT / "workflow" / "step-function-batch.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=60, help="Images per measurement.")
    parser.add_argument("--concurrency", default="1,4,8,16", help="Batch MaxConcurrency values to measure.")
    parser.add_argument(
        "--lambda-concurrency",
        type=int,
        default=4,
        help="Warm workers per function (the runtime's default: 4).",
    )
    parser.add_argument("--repeat", type=int, default=2, help="Runs per measurement; the best is kept.")
    parser.add_argument("--work-dir", type=Path, default=Path.home(), help="Where the throw-away home goes.")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="sconeflow-bench-batch-", dir=args.work_dir) as tmp:
        os.environ["SCONEFLOW_HOME"] = str(Path(tmp) / "home")
        os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
        os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
        os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
        run(args, Path(tmp))


def run(args: argparse.Namespace, tmp: Path) -> None:
    from sconeflow.config import load_settings
    from sconeflow.data.prepare import prepare_dataset
    from sconeflow.data.synthetic import make_cifar_tarball
    from sconeflow.endpoint.registry import delete, deploy
    from sconeflow.lambda_runtime import LambdaRuntime
    from sconeflow.lambda_runtime.registry import FunctionRegistry
    from sconeflow.model.recipe import TrainConfig
    from sconeflow.model.train import train
    from sconeflow.stepfunctions.service import StepFunctionsService
    from sconeflow.store import LocalStore

    settings = load_settings(tmp / "home")
    settings.ensure_dirs()
    store = LocalStore(settings.buckets_dir)
    per_class = max(1, (args.images + 1) // 2)
    tarball = make_cifar_tarball(tmp / "data.tar.gz", n_train=40, n_test=per_class, seed=0)
    prepare_dataset(settings, source=tarball, classes=["bicycle", "motorcycle"], store=store)
    job = train(settings, TrainConfig.tiny(augment=False, val_fraction=0.0, evaluate_test=False), store=store)
    view = deploy(settings, job.model_artifacts, name="bench-batch", capture_percent=0)
    runtime = LambdaRuntime(settings)
    try:
        functions = FunctionRegistry(settings)
        functions.update("classify_image", environment={"ENDPOINT_NAME": view.endpoint.name})
        functions.update("filter_inference", environment={"THRESHOLD": "0.0"})  # every image passes
        for name in ("serialize_image_data", "classify_image", "filter_inference"):
            functions.update(name, concurrency=args.lambda_concurrency)
        keys = sorted(i.key for i in store.iter_objects(settings.bucket, "test/"))[: args.images]
        service = StepFunctionsService(settings)
        service.create_state_machine("single", WORKFLOW.read_text())
        service.create_state_machine("batch", BATCH.read_text())
        bucket = settings.bucket
        n = len(keys)
        print(
            f"{n} images, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}, "
            f"{args.lambda_concurrency} warm workers per function"
        )

        # warm up: every function's workers, the endpoint, both state machines
        service.run_to_end(
            "batch",
            json.dumps(
                {"s3_bucket": bucket, "s3_keys": keys[: args.lambda_concurrency * 2], "max_concurrency": 0}
            ),
        )
        service.run_to_end("single", json.dumps({"s3_bucket": bucket, "s3_key": keys[0]}))

        def sequential() -> None:
            for key in keys:
                record = service.run_to_end("single", json.dumps({"s3_bucket": bucket, "s3_key": key}))
                assert record.status == "SUCCEEDED", (record.error, record.cause)

        def all_at_once() -> None:
            started = [
                service.start_execution("single", json.dumps({"s3_bucket": bucket, "s3_key": key}))
                for key in keys
            ]
            for record in started:
                final = service.wait(record.arn, timeout=300)
                assert final.status == "SUCCEEDED", (final.error, final.cause)

        def batch(concurrency: int) -> None:
            record = service.run_to_end(
                "batch", json.dumps({"s3_bucket": bucket, "s3_keys": keys, "max_concurrency": concurrency})
            )
            assert record.status == "SUCCEEDED", (record.error, record.cause)
            assert json.loads(record.output)["confident"] == n

        def best(fn, *a) -> float:
            times = []
            for _ in range(args.repeat):
                began = time.perf_counter()
                fn(*a)
                times.append(time.perf_counter() - began)
            return min(times)

        base = best(sequential)
        rows = [("one execution per image, sequential (baseline)", base)]
        rows.append(("one execution per image, all started at once", best(all_at_once)))
        for value in (int(v) for v in args.concurrency.split(",") if v.strip()):
            rows.append((f"batch workflow, one execution, max_concurrency {value}", best(batch, value)))
        print(f"{'path':58} {'seconds':>8} {'images/s':>9} {'vs baseline':>12}")
        for label, seconds in rows:
            print(f"{label:58} {seconds:8.2f} {n / seconds:9.1f} {base / seconds:11.2f}x")
    finally:
        runtime.close()
        delete(settings, view.endpoint.name)


if __name__ == "__main__":
    main()
