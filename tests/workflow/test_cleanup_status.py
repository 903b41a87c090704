"""``sconeflow cleanup`` and ``sconeflow status`` on real local services (no training here)."""

from __future__ import annotations

import json
import subprocess
import sys

from sconeflow.services import pid_alive
from sconeflow.stepfunctions.service import StepFunctionsService
from sconeflow.store import LocalStore
from sconeflow.workflow.cleanup import cleanup
from sconeflow.workflow.status import collect_status
from tests.workflow.helpers import run_cli

WAITER = {"StartAt": "Wait", "States": {"Wait": {"Type": "Wait", "Seconds": 300, "End": True}}}


def _start_execution_runner(settings) -> tuple[subprocess.Popen, str]:
    """A detached ``sconeflow sfn start --wait`` of a 5-minute Wait; returns it once its execution runs."""
    import os
    import time

    service = StepFunctionsService(settings)
    service.create_state_machine("waiter", json.dumps(WAITER))
    runner = subprocess.Popen(
        [sys.executable, "-m", "sconeflow", "sfn", "start", "waiter", "--name", "w1", "--wait"],
        env={**os.environ, "SCONEFLOW_HOME": str(settings.home)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    arn = service.execution_arn("waiter", "w1")
    deadline = time.monotonic() + 60
    while not any(e.arn == arn for e in service.store.list_executions(status="RUNNING")):
        assert runner.poll() is None and time.monotonic() < deadline
        time.sleep(0.1)
    return runner, arn


def test_cleanup_and_status_of_a_home_never_used_create_nothing(tmp_path) -> None:
    home = tmp_path / "never-used"
    result = run_cli(home, "cleanup", "--all", timeout=60)
    assert result.returncode == 0, result.stderr
    assert f"nothing to clean up in {home}" in result.stdout
    result = run_cli(home, "status", timeout=60)
    assert result.returncode == 0, result.stderr
    assert "nothing is running" in result.stdout
    result = run_cli(home, "status", "--json", timeout=60)
    document = json.loads(result.stdout)
    assert document["home"] == str(home) and document["gateway"] is None and document["endpoints"] == []
    assert not home.exists()


def test_cleanup_stops_gateway_schedules_and_strays_and_is_safe_twice(settings) -> None:
    from datetime import timedelta

    from sconeflow.gateway.cli import start_background
    from sconeflow.monitor.schedule import Schedules, create_schedule

    url, started = start_background(settings, "127.0.0.1", 0)
    assert started
    assert start_background(settings, "127.0.0.1", 0) == (url, False)  # reused, not a second one
    _, worker = create_schedule(settings, "hourly", every=timedelta(hours=1))
    status = collect_status(settings)
    assert status.gateway is not None and status.gateway["running"] and status.gateway["url"] == url
    assert status.running == [f"gateway {url}", "monitor schedule hourly"]
    assert status.schedules[0]["pid"] == worker.pid
    gateway_pid = status.gateway["pid"]
    # a process of this home that no run file knows: an execution runner (`sfn start --wait`) on its own
    stray, arn = _start_execution_runner(settings)
    try:
        report = cleanup(settings)
        assert f"execution {arn}" in report.stopped
        assert StepFunctionsService(settings).describe_execution(arn).error == "RunnerStopped"
        assert f"gateway {url} (pid {gateway_pid})" in report.stopped
        assert f"monitor schedule hourly (pid {worker.pid})" in report.stopped
        assert Schedules(settings).get("hourly").status == "Stopped"
        assert not pid_alive(worker.pid)
        assert any(line.startswith(f"stray process {stray.pid} ") for line in report.stopped)
        stray.wait(timeout=10)
        assert not pid_alive(gateway_pid)
        assert collect_status(settings).running == []
        again = cleanup(settings)
        assert again.nothing_done
    finally:
        if stray.poll() is None:
            stray.kill()
            stray.wait()


def test_cleanup_all_removes_the_workflows_objects_and_keeps_foreign_ones(
    settings, store: LocalStore
) -> None:
    bucket = settings.bucket
    store.create_bucket(bucket, exist_ok=True)
    for key in ("train/a.png", "test/b.png", "train.lst", "classes.json", "models/j/output/model.tar.gz"):
        store.put_object(bucket, key, b"x")
    store.put_object(bucket, "data_capture/ep/AllTraffic/2026/01/01/00/00-00-000-x.jsonl", b"{}\n")
    store.put_object(bucket, "train.lst.bak", b"mine")  # not the workflow's, though it shares a prefix
    store.put_object(bucket, "notes/readme.txt", b"mine")
    (settings.logs_dir / "gateway.log").write_text("log line\n")
    code_dir = settings.home / "lambda-code" / "my_fn" / "abc123"  # unpacked by `lambda register --zip`
    code_dir.mkdir(parents=True)
    (code_dir / "handler.py").write_text("def handler(event, context):\n    return event\n")

    report = cleanup(settings, remove_all=True)

    assert f"s3://{bucket}/train/ (1 object(s))" in report.removed
    assert f"s3://{bucket}/train.lst (1 object)" in report.removed
    assert f"s3://{bucket}/data_capture/ (1 object(s))" in report.removed
    assert any(line.startswith(str(settings.logs_dir)) for line in report.removed)
    assert report.kept == [f"s3://{bucket}: 2 object(s) the workflow did not write"]
    assert sorted(i.key for i in store.iter_objects(bucket)) == ["notes/readme.txt", "train.lst.bak"]
    assert settings.home.exists()  # the foreign objects keep the home
    assert not settings.logs_dir.exists()
    assert not (settings.home / "lambda-code").exists()


def test_the_default_gateway_port_falls_back_to_a_free_one_when_taken(settings, monkeypatch) -> None:
    import socket

    from sconeflow.workflow import demo

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        monkeypatch.setattr(demo, "DEFAULT_PORT", port)
        ctx = demo._Context(settings, demo.DemoOptions(port=port), demo.Reporter())
        try:
            detail = demo._services(ctx)
            assert ctx.summary.gateway_url.startswith("http://127.0.0.1:")
            assert not ctx.summary.gateway_url.endswith(f":{port}")
            assert detail.startswith("gateway listening on")
        finally:
            report = cleanup(settings)
        assert any(line.startswith("gateway ") for line in report.stopped)


def test_an_explicit_port_that_is_taken_is_a_named_error(settings) -> None:
    import socket

    import pytest

    from sconeflow.gateway.server import PortInUse
    from sconeflow.workflow import demo

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        ctx = demo._Context(settings, demo.DemoOptions(port=port), demo.Reporter())
        with pytest.raises(PortInUse):
            demo._services(ctx)
    assert collect_status(settings).gateway is None


def test_cleanup_all_removes_only_the_demo_files_of_a_custom_output_dir(settings, tmp_path) -> None:
    from sconeflow.workflow.runs import DemoRuns

    out = tmp_path / "my-results"
    (out / "monitoring").mkdir(parents=True)
    written = [out / "summary.json", out / "execution-failed.png", out / "monitoring" / "report.html"]
    for path in written:
        path.write_text("x")
    (out / "my-notes.txt").write_text("keep me")
    runs = DemoRuns(settings)
    runs.finish(runs.start(str(out)), "Completed", {"files": [str(p) for p in written]})

    report = cleanup(settings, remove_all=True)

    assert f"{out} (3 demo file(s))" in report.removed
    assert sorted(p.name for p in out.rglob("*")) == ["my-notes.txt"]
    assert not settings.home.exists()
