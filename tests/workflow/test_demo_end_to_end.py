"""``sconeflow demo --fast`` end to end on the shared mini dataset, then re-run, status and cleanup --all."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from sconeflow.services import pid_alive
from tests.workflow.helpers import live_home_processes, run_cli, run_file_pids

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
ENDPOINT = "scones-unlimited-endpoint"


@pytest.mark.needs_shared
@pytest.mark.timeout(900)
def test_demo_fast_end_to_end_then_rerun_status_and_cleanup(tmp_path: Path, mini_tarball: Path) -> None:
    home = tmp_path / "home"
    # threshold 0.8: a short schedule gives both confident and unsure test images
    args = ["demo", "--source", str(mini_tarball), "--fast", "--epochs", "4", "--port", "0"]
    result = run_cli(home, *args, "--executions", "6", "--threshold", "0.8", timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    for step in (
        "[1/10] Prepare the data",
        "[8/10] Run the executions",
        "[10/10] Build the monitor baseline",
    ):
        assert step in out
    assert "test accuracy" in out and "Scones Unlimited workflow: summary" in out

    summary = json.loads((home / "demo" / "summary.json").read_text())
    assert summary["images"] == {"train": 1000, "test": 200}
    assert 0.5 < summary["test_accuracy"] <= 1.0 and summary["test_images"] == 200
    assert summary["executions"] >= 6 and summary["failed_other"] == 0
    assert summary["succeeded"] + summary["failed_threshold"] == summary["executions"]
    assert summary["succeeded"] >= 1 and summary["failed_threshold"] >= 1
    assert f"{summary['executions']}: {summary['succeeded']} succeeded" in out
    for kind in ("succeeded", "failed"):
        picture = Path(summary["pictures"][kind])
        assert picture.read_bytes()[:8] == PNG_MAGIC
        assert str(picture) in out.replace("\n", "") or picture.name in out
    assert Path(summary["evaluation_png"]).read_bytes()[:8] == PNG_MAGIC
    html = Path(summary["report_html"]).read_text()
    assert "<html" in html.lower() and "data:image/png;base64" in html
    assert summary["captured_records"] == summary["executions"]
    assert summary["monitoring_status"].startswith("Completed")
    executions = json.loads((home / "demo" / "executions.json").read_text())
    assert all(e["key"].startswith("test/") for e in executions)

    status = run_cli(home, "status", timeout=120)
    assert status.returncode == 0, status.stderr
    assert "gateway" in status.stdout and f"endpoint {ENDPOINT}" in status.stdout
    assert "InService / server running" in status.stdout
    assert "ENDPOINT_NAME=scones-unlimited-endpoint" in status.stdout and "THRESHOLD=0.8" in status.stdout
    pids = run_file_pids(home)
    assert set(pids) == {"gateway", f"endpoint-{ENDPOINT}"}
    assert all(pid_alive(pid) for pid in pids.values())

    again = run_cli(home, *args, "--executions", "2", "--threshold", "0.8", timeout=600)
    assert again.returncode == 0, again.stdout + again.stderr
    for reused in (
        "reused training job",
        "reused InService endpoint",
        "reused the running gateway",
        "reused arn:",
    ):
        assert reused in again.stdout
    assert run_file_pids(home) == pids  # the same servers, not new ones

    clean = run_cli(home, "cleanup", "--all", timeout=180)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "stopped gateway http://127.0.0.1:" in clean.stdout
    assert f"deleted endpoint {ENDPOINT}, server pid {pids[f'endpoint-{ENDPOINT}']} stopped" in clean.stdout
    for removed in ("train/ (1000 object(s))", "test/ (200 object(s))", "models/", "data_capture/"):
        assert f"removed s3://sconeflow-default/{removed}" in clean.stdout
    assert not any(pid_alive(pid) for pid in pids.values())
    assert live_home_processes(home) == []
    assert not home.exists(), sorted(str(p) for p in home.rglob("*"))

    twice = run_cli(home, "cleanup", "--all", timeout=60)
    assert twice.returncode == 0 and "nothing to clean up" in twice.stdout


@pytest.mark.needs_shared
def _kill_demo_while_training(home: Path, mini_tarball: Path, signum: int) -> None:
    """Start `sconeflow demo`, wait until its training job is on record, send ``signum``, reap it."""
    import subprocess
    import sys
    import time

    from sconeflow.config import load_settings
    from sconeflow.model.jobs import TrainingJobs

    args = ["demo", "--source", str(mini_tarball), "--fast", "--epochs", "400", "--port", "0", "-n", "1"]
    env = {**os.environ, "SCONEFLOW_HOME": str(home)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "sconeflow", *args, "--home", str(home)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
    )
    settings = load_settings(home)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # wait until the training step has a job on record
            if settings.db_path.exists() and TrainingJobs(settings).list():
                break
            assert proc.poll() is None, proc.stderr.read().decode()  # type: ignore[union-attr]
            time.sleep(0.2)
        os.kill(proc.pid, signum)
        assert proc.wait(timeout=60) != 0
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.parametrize(
    ("signal_name", "error"),
    [
        # kill <pid> ended the demo at once and `status` said 'last demo: Running' forever; now it is
        # handled like Ctrl-C and the training job is recorded as Stopped
        ("SIGTERM", "TrainingStopped"),
        # SIGKILL (or out of memory) gives the process no chance to record anything: its pid is gone
        ("SIGKILL", "ProcessExited: the demo process"),
    ],
)
def test_a_killed_demo_reads_as_failed_in_its_step(
    tmp_path: Path, mini_tarball: Path, signal_name: str, error: str
) -> None:
    import signal

    from sconeflow.config import load_settings
    from sconeflow.workflow.runs import DemoRuns

    home = tmp_path / "home"
    _kill_demo_while_training(home, mini_tarball, getattr(signal, signal_name))
    run = DemoRuns(load_settings(home)).last()
    assert run is not None
    assert (run.status, run.summary["failed_step"]) == ("Failed", "train")
    assert run.summary["error"].startswith(error)
    status = run_cli(home, "status")
    assert "last demo: Failed" in status.stdout and "in step train" in status.stdout
    run_cli(home, "cleanup", "--all")
