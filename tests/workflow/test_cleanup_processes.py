"""``sconeflow cleanup`` signals only this home's own processes: never a PID that was reused by another
process, never a process that merely mentions the home; and it finds a sconeflow process of the home
that was given ``--home`` (relative, even) instead of SCONEFLOW_HOME."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from sconeflow import services
from sconeflow.config import Settings, load_settings
from sconeflow.services import pid_alive
from sconeflow.stepfunctions.service import StepFunctionsService
from sconeflow.workflow.cleanup import cleanup
from tests.workflow.helpers import run_cli

WAITER = {"StartAt": "Wait", "States": {"Wait": {"Type": "Wait", "Seconds": 300, "End": True}}}


@pytest.fixture
def dot_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """A home named like the default one (``.sconeflow``), so command lines that touch it say so."""
    home = tmp_path / ".sconeflow"
    monkeypatch.setenv("SCONEFLOW_HOME", str(home))
    for name in ("SCONEFLOW_STORE", "SCONEFLOW_BUCKET", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings(home)
    settings.ensure_dirs()
    return settings


@pytest.fixture
def bystanders() -> Iterator[list[subprocess.Popen]]:
    """Processes a test starts; whatever is still running at the end is killed."""
    started: list[subprocess.Popen] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()


def _sleeper(env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(["sleep", "300"], env=env, start_new_session=True)


def _crash(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_alive(pid)


def test_a_run_file_whose_pid_was_reused_never_gets_that_process_killed(dot_home, bystanders) -> None:
    from datetime import timedelta

    from sconeflow.gateway.cli import start_background
    from sconeflow.gateway.client import GATEWAY_SERVICE
    from sconeflow.monitor.schedule import Schedules, create_schedule, service_name

    settings = dot_home
    start_background(settings, "127.0.0.1", 0)
    _, worker = create_schedule(settings, "hourly", every=timedelta(hours=1))
    # both die without a chance to remove their run files (SIGKILL, out of memory, a reboot) ...
    gateway = services.read_record(settings, GATEWAY_SERVICE)
    assert gateway is not None
    _crash(gateway.pid)
    _crash(worker.pid)
    # ... and, later, the kernel hands their PIDs to unrelated processes (written into the run files here,
    # as the kernel cannot be made to reuse a given PID on demand)
    time.sleep(1.0)
    unrelated = [_sleeper(), _sleeper()]
    bystanders.extend(unrelated)
    services.write_record(settings, replace(gateway, pid=unrelated[0].pid))
    services.write_record(settings, replace(worker, pid=unrelated[1].pid))

    report = cleanup(settings)

    time.sleep(0.3)
    assert [p.poll() for p in unrelated] == [None, None]  # both still running
    for process, name in ((unrelated[0], GATEWAY_SERVICE), (unrelated[1], service_name("hourly"))):
        assert any(
            line.startswith(f"pid {process.pid} running: it is not the ") and f" {name} its run file" in line
            for line in report.kept
        ), report.kept
        assert services.read_record(settings, name) is None
    assert not any(str(p.pid) in line for p in unrelated for line in report.stopped)
    assert Schedules(settings).get("hourly").status == "Stopped"
    again = cleanup(settings, remove_all=True)
    assert again.kept == [] and [p.poll() for p in unrelated] == [None, None]
    assert not settings.home.exists()


def test_a_dead_services_run_file_is_removed_and_said(dot_home) -> None:
    from sconeflow.gateway.cli import start_background
    from sconeflow.gateway.client import GATEWAY_SERVICE

    settings = dot_home
    start_background(settings, "127.0.0.1", 0)
    gateway = services.read_record(settings, GATEWAY_SERVICE)
    assert gateway is not None
    _crash(gateway.pid)

    result = run_cli(settings.home, "cleanup", timeout=60)

    assert result.returncode == 0, result.stderr
    run_file = settings.run_dir / f"{GATEWAY_SERVICE}.json"
    assert f"removed stale run file {run_file} (gateway, pid {gateway.pid} had exited)" in result.stdout
    assert "nothing to clean up" not in result.stdout
    assert not run_file.exists()
    again = run_cli(settings.home, "cleanup", timeout=60)
    assert again.returncode == 0 and f"nothing to clean up in {settings.home}" in again.stdout


def test_a_process_that_only_mentions_the_home_is_left_alone(dot_home, bystanders) -> None:
    settings = dot_home
    log = settings.logs_dir / "gateway.log"
    log.write_text("a line\n")
    # `tail -f ~/.sconeflow/logs/gateway.log` in a shell that exported SCONEFLOW_HOME
    env = {"SCONEFLOW_HOME": str(settings.home), "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    tail = subprocess.Popen(["tail", "-f", str(log)], env=env, stdout=subprocess.DEVNULL)
    bystanders.append(tail)

    report = cleanup(settings)

    time.sleep(0.3)
    assert tail.poll() is None
    assert not any(f"stray process {tail.pid} " in line for line in report.stopped), report.stopped


def test_a_sconeflow_process_given_a_relative_home_is_stopped(dot_home, bystanders) -> None:
    settings = dot_home
    service = StepFunctionsService(settings)
    service.create_state_machine("waiter", json.dumps(WAITER))
    env = {k: v for k, v in os.environ.items() if k != "SCONEFLOW_HOME"}  # only --home names the home
    runner = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sconeflow",
            "sfn",
            "start",
            "waiter",
            "--name",
            "w1",
            "--wait",
            "--home",
            ".",
        ],
        cwd=settings.home,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    bystanders.append(runner)
    arn = service.execution_arn("waiter", "w1")
    deadline = time.monotonic() + 60
    while not any(e.arn == arn for e in service.store.list_executions(status="RUNNING")):
        assert runner.poll() is None and time.monotonic() < deadline
        time.sleep(0.1)

    report = cleanup(settings)

    assert any(line.startswith(f"stray process {runner.pid} ") for line in report.stopped), report.stopped
    assert runner.wait(timeout=10) is not None
    assert f"execution {arn}" in report.stopped
    record = service.describe_execution(arn)
    assert (record.status, record.error) == ("ABORTED", "RunnerStopped")
    assert cleanup(settings).nothing_done
