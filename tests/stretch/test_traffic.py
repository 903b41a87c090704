"""``sconeflow traffic`` (stretch goal 3): shifts, rates, and real runs against the running endpoint and the
workflow; it stops on its own at the duration, after a burst, and cleanly on Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from typer.testing import CliRunner

from sconeflow.cli import app
from sconeflow.stepfunctions.service import StepFunctionsService
from sconeflow.traffic.errors import InvalidRate, InvalidShift
from sconeflow.traffic.generator import InputPool, Outcome, Sample, TrafficPlan, parse_rate, run_traffic
from sconeflow.traffic.shifts import add_noise, apply_shift, darken, one_class

from .conftest import BATCH_WORKFLOW, CLASSES, WORKFLOW, Deployed

runner = CliRunner()


def _json(result) -> dict:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.parametrize(
    ("text", "per_second"), [("5/s", 5.0), ("300/m", 5.0), ("36/h", 0.01), ("2.5", 2.5), (" 10 / sec ", 10.0)]
)
def test_parse_rate(text: str, per_second: float) -> None:
    assert parse_rate(text) == pytest.approx(per_second)


@pytest.mark.parametrize("text", ["", "fast", "0/s", "-1/s", "5/d", "2000/s"])
def test_parse_rate_rejects(text: str) -> None:
    with pytest.raises(InvalidRate):
        parse_rate(text)


def test_shifts_are_pure_and_do_what_they_say() -> None:
    rng = np.random.default_rng(0)
    images = rng.integers(60, 200, size=(6, 32, 32, 3), dtype=np.uint8)
    labels = np.array([0, 1, 2, 0, 1, 2])
    before = images.copy()
    dark = darken(images)
    assert dark.dtype == np.uint8 and dark.mean() < 0.4 * images.mean()
    noisy = add_noise(images, np.random.default_rng(1), sigma=40)
    assert noisy.shape == images.shape and 20 < np.abs(noisy.astype(int) - images).mean() < 40
    only, only_labels = one_class(images, labels, 2)
    assert len(only) == 2 and set(only_labels) == {2}
    same, _ = apply_shift("none", images, labels, rng)
    assert np.array_equal(same, images) and np.array_equal(images, before)  # inputs never change
    for name, call in (
        ("unknown", lambda: apply_shift("blur", images, labels, rng)),
        ("factor", lambda: darken(images, 1.5)),
        ("sigma", lambda: add_noise(images, rng, -1)),
        ("class", lambda: one_class(images, labels, 7)),
        ("dtype", lambda: darken(images.astype(np.float32))),
    ):
        with pytest.raises(InvalidShift):
            call()
        assert name


def test_input_pool_draws_from_the_test_split(deployed: Deployed) -> None:
    settings, store = deployed.settings, deployed.store
    pool = InputPool(store, settings.bucket, seed=3)
    draws = [pool.draw() for _ in range(30)]
    assert len(pool) == 18 and all(d.key and d.key.startswith("test/") for d in draws)
    assert draws[0].png == store.get_object(settings.bucket, draws[0].key)
    again = InputPool(store, settings.bucket, seed=3)
    assert [again.draw().key for _ in range(30)] == [d.key for d in draws]  # --seed repeats the run
    buses = InputPool(store, settings.bucket, shift="one-class", shift_class="bus", seed=1)
    assert len(buses) == 6 and {buses.draw().label for _ in range(20)} == {"bus"}
    dark = InputPool(store, settings.bucket, shift="dark", seed=1).draw()
    assert dark.key is None and dark.png.startswith(b"\x89PNG")
    with pytest.raises(InvalidShift):
        InputPool(store, settings.bucket, shift="one-class", shift_class="tank")


@pytest.mark.timeout(120)
def test_stream_to_the_endpoint_stops_on_its_own_at_the_duration(deployed: Deployed) -> None:
    started = time.monotonic()
    args = ["traffic", "--endpoint", deployed.endpoint, "--rate", "20/s", "--duration", "2s", "--seed", "1"]
    summary = _json(runner.invoke(app, [*args, "--json"]))
    took = time.monotonic() - started
    assert summary["stopped_by"] == "duration" and took < 10
    assert 20 <= summary["sent"] <= 41 and summary["skipped"] <= 2  # 40 on time; slack for a loaded CI box
    assert summary["succeeded"] == summary["sent"] and summary["failed"] == 0 and summary["unfinished"] == 0
    assert set(summary["outcomes"]) <= set(CLASSES) and sum(summary["outcomes"].values()) == summary["sent"]
    assert 1.9 <= summary["elapsed_s"] < 10
    # the human view: a final table with the counts
    table = runner.invoke(app, [*args[:-4], "--duration", "1s", "--rate", "5/s"])
    assert table.exit_code == 0 and "stopped by" in table.stdout and "duration" in table.stdout


@pytest.mark.timeout(120)
def test_burst_and_one_class_shift(deployed: Deployed) -> None:
    summary = _json(
        runner.invoke(
            app,
            [
                "traffic",
                "--endpoint",
                deployed.endpoint,
                "--burst",
                "12",
                "--shift",
                "one-class",
                "--class",
                "bus",
                "--concurrency",
                "4",
                "--json",
            ],
        )
    )
    assert summary["stopped_by"] == "burst" and summary["sent"] == summary["succeeded"] == 12
    assert summary["true_classes"] == {"bus": 12} and summary["outcomes"] == {"bus": 12}


@pytest.mark.timeout(180)
def test_workflow_target_starts_real_executions_with_shifted_images(deployed: Deployed) -> None:
    service = StepFunctionsService(deployed.settings)
    try:
        service.describe_state_machine("scones-traffic")
    except Exception:
        service.create_state_machine("scones-traffic", WORKFLOW.read_text())
    summary = _json(
        runner.invoke(
            app,
            [
                "traffic",
                "--workflow",
                "scones-traffic",
                "--burst",
                "4",
                "--shift",
                "noise",
                "--seed",
                "2",
                "--json",
            ],
        )
    )
    assert summary["sent"] == 4 and summary["succeeded"] + summary["failed"] == 4
    executions = service.list_executions("scones-traffic")
    assert len(executions) == 4 and all(e.status in ("SUCCEEDED", "FAILED") for e in executions)
    for execution in executions:
        key = json.loads(execution.input)["s3_key"]
        assert key.startswith("traffic/")  # the noisy image was uploaded for the workflow to read
        assert deployed.store.head_object(deployed.settings.bucket, key).size > 0
    succeeded = sum(1 for e in executions if e.status == "SUCCEEDED")
    assert summary["succeeded"] == summary["outcomes"].get("SUCCEEDED", 0) == succeeded


@pytest.mark.timeout(180)
def test_batch_workflow_target_sends_batches_and_counts_each_image(deployed: Deployed) -> None:
    service = StepFunctionsService(deployed.settings)
    service.create_state_machine("batch-traffic", BATCH_WORKFLOW.read_text())
    args = ["--workflow", "batch-traffic", "--batch-size", "5", "--burst", "2", "--seed", "4", "--json"]
    summary = _json(runner.invoke(app, ["traffic", *args]))
    assert (summary["requests"], summary["sent"], summary["succeeded"] + summary["failed"]) == (2, 10, 10)
    assert set(summary["outcomes"]) <= {"confident", "low_confidence"}
    assert sum(summary["true_classes"].values()) == 10
    executions = service.list_executions("batch-traffic")
    assert len(executions) == 2 and all(e.status == "SUCCEEDED" for e in executions)
    confident = 0
    for execution in executions:
        assert len(json.loads(execution.input)["s3_keys"]) == 5
        confident += json.loads(execution.output)["confident"]
    assert summary["outcomes"].get("confident", 0) == confident


def test_option_errors_are_named(deployed: Deployed) -> None:
    for args, error in (
        (["--rate", "fast", "--endpoint", deployed.endpoint], "InvalidRate"),
        (["--shift", "blur", "--endpoint", deployed.endpoint], "InvalidShift"),
        (["--duration", "soon", "--endpoint", deployed.endpoint], "InvalidDuration"),
        (["--burst", "0", "--endpoint", deployed.endpoint], "InvalidTrafficOptions"),
        ([], "InvalidTrafficOptions"),
        (["--endpoint", deployed.endpoint, "--workflow", "x"], "InvalidTrafficOptions"),
        (["--endpoint", deployed.endpoint, "--batch-size", "5"], "InvalidTrafficOptions"),
        (["--workflow", "x", "--batch-size", "0"], "InvalidTrafficOptions"),
        (["--endpoint", deployed.endpoint, "--class", "bus"], "InvalidTrafficOptions"),  # no one-class
        (["--endpoint", "no-such-endpoint"], "EndpointNotFound"),
        (["--workflow", "no-such-machine"], "StateMachineDoesNotExist"),
        (["--endpoint", deployed.endpoint, "--bucket", "empty-bucket"], "NoTestImages"),
    ):
        result = runner.invoke(app, ["traffic", "--duration", "1s", *args])
        assert result.exit_code == 1, (args, result.output)
        assert type(result.exception).__name__ == error, (args, result.exception)


@pytest.mark.timeout(120)
@pytest.mark.parametrize(("signum", "stopped_by"), [(signal.SIGINT, "interrupt"), (signal.SIGTERM, "stop")])
def test_ctrl_c_and_kill_stop_cleanly_with_the_counts(
    deployed: Deployed, signum: int, stopped_by: str
) -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sconeflow",
            "traffic",
            "--endpoint",
            deployed.endpoint,
            "--rate",
            "10/s",
            "--duration",
            "10m",
            "--json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )
    try:
        deadline = time.monotonic() + 60
        line = ""
        while "Ctrl-C stops" not in line and time.monotonic() < deadline:  # wait for sending to begin
            line += process.stderr.readline()
        time.sleep(1.5)
        process.send_signal(signum)
        stdout, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, stderr
    summary = json.loads(stdout)
    assert summary["stopped_by"] == stopped_by and summary["sent"] >= 5
    assert summary["succeeded"] + summary["failed"] + summary["unfinished"] == summary["sent"]


class _SlowTarget:
    """Answers every request after ``delay`` seconds and counts what reached it."""

    description = "slow fake"

    def __init__(self, delay: float) -> None:
        self.delay, self.received = delay, 0
        self.lock = threading.Lock()

    def send(self, samples: list[Sample], seq: int) -> list[Outcome]:
        with self.lock:
            self.received += len(samples)
        time.sleep(self.delay)
        return [Outcome(True, "bus")] * len(samples)

    def close(self) -> None:
        return None


class _FixedPool:
    def draw(self) -> Sample:
        return Sample(b"png", "test/bus.png", "bus")


@pytest.mark.timeout(60)
def test_a_stopped_burst_sends_no_more_inputs_and_says_stop() -> None:
    target, stop = _SlowTarget(0.05), threading.Event()
    threading.Timer(0.3, stop.set).start()
    plan = TrafficPlan(burst=200, concurrency=2)
    started = time.monotonic()
    stats = run_traffic(plan, _FixedPool(), target, stop=stop).as_dict()  # type: ignore[arg-type]
    assert time.monotonic() - started < 2.0  # not the 5 s the whole queued burst takes
    assert stats["stopped_by"] == "stop"
    assert stats["sent"] == target.received < 200  # the queued inputs were withdrawn, not sent
    assert stats["succeeded"] + stats["failed"] + stats["unfinished"] == stats["sent"]
