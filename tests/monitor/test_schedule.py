"""``monitor schedule``: a background service that runs monitoring periodically and stops cleanly."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sconeflow.cli import app
from sconeflow.config import Settings
from sconeflow.monitor.schedule import (
    MonitoringSchedule,
    ScheduleError,
    Schedules,
    create_schedule,
    service_name,
    stop_schedule,
)
from sconeflow.monitor.violations import MonitoringExecutions
from sconeflow.services import list_records, pid_alive, read_record
from sconeflow.store import LocalStore
from tests.monitor.conftest import baseline_like_images, recent_start, write_capture_files


def test_schedule_runs_periodically_and_stops(
    settings: Settings,
    store: LocalStore,
    classifier,  # type: ignore[no-untyped-def]
    baseline_dir: Path,
) -> None:
    images = baseline_like_images(10, seed=31)
    write_capture_files(
        store, settings.bucket, "ep", images, classifier.predict_proba(images), start=recent_start(20)
    )
    _, record = create_schedule(
        settings,
        "every-second",
        every=timedelta(seconds=1),
        window=timedelta(hours=1),
        endpoint="ep",
        baseline_uri=str(baseline_dir),
    )
    try:
        assert record.kind == "monitor-schedule"
        assert any(r.name == service_name("every-second") for r in list_records(settings, "monitor-schedule"))
        executions = MonitoringExecutions(settings)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(executions.list("every-second")) < 2:
            assert pid_alive(record.pid), Path(record.log_path).read_text()[-2000:]
            time.sleep(0.2)
        done = executions.list("every-second")
        assert len(done) >= 2, Path(record.log_path).read_text()[-2000:]
        assert {e.status for e in done} <= {"Completed", "CompletedWithViolations", "InProgress"}
        assert any(e.status == "Completed" and e.records == 20 for e in done)
    finally:
        assert stop_schedule(settings, "every-second")
    assert not pid_alive(record.pid)
    assert read_record(settings, service_name("every-second")) is None
    assert Schedules(settings).get("every-second").status == "Stopped"


def test_schedule_cli_list_and_errors(settings: Settings) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["monitor", "schedule", "x"])
    assert result.exit_code != 0
    with pytest.raises(ScheduleError):
        create_schedule(settings, "bad name!", every=timedelta(hours=1))
    with pytest.raises(ScheduleError):
        stop_schedule(settings, "never-created")
    result = runner.invoke(app, ["monitor", "schedule", "--list"])
    assert result.exit_code == 0, result.output


def test_stopping_a_schedule_marks_a_run_its_killed_worker_left_unfinished(settings: Settings) -> None:
    """A run longer than the stop grace gets its worker SIGKILLed; its record must not stay InProgress."""
    stamp = "2025-01-01T00:00:00Z"
    Schedules(settings).put(
        MonitoringSchedule("slow", "ep", None, None, None, 3600, 3600, "Scheduled", stamp, stamp)
    )
    executions = MonitoringExecutions(settings)
    unfinished = executions.create(schedule_name="slow", endpoint_name="ep", source_uri="s", baseline_uri="b")
    executions.update(unfinished.arn, status="InProgress")
    other = executions.create(schedule_name="other", endpoint_name="ep", source_uri="s", baseline_uri="b")
    stop_schedule(settings, "slow")
    assert executions.get(unfinished.arn).status == "Stopped"
    assert executions.get(other.arn).status == "Pending"  # another schedule's run is left alone
    assert Schedules(settings).get("slow").status == "Stopped"
