"""Monitoring schedules: run ``monitor run`` every N seconds in a background service.

A schedule is a row in ``monitoring_schedules`` (status ``Scheduled`` / ``Stopped``, like
``MonitoringScheduleStatus``) plus a ``python -m sconeflow monitor schedule-worker NAME`` child started
with :func:`sconeflow.services.start_service` (run file ``<home>/run/monitor-<NAME>.json``, kind
``monitor-schedule``), so ``sconeflow down`` / ``cleanup`` and :func:`stop_schedule` stop it. Each tick
analyses the window that just ended (``[tick - window, tick)``) and records a monitoring execution.
"""

from __future__ import annotations

import logging
import re
import signal
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sconeflow.config import Settings
from sconeflow.db import Database
from sconeflow.errors import SconeflowError
from sconeflow.monitor.violations import (
    MONITOR_SCHEMA,
    MonitoringExecutions,
    MonitoringFailed,
    run_monitoring,
)
from sconeflow.services import ServiceRecord, pid_alive, read_record, start_service, stop_service

log = logging.getLogger(__name__)

SERVICE_KIND = "monitor-schedule"
_NAME_RE = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")


class ScheduleError(SconeflowError):
    """A monitoring schedule cannot be created, found or stopped."""


def service_name(name: str) -> str:
    return f"monitor-{name}"


@dataclass(frozen=True)
class MonitoringSchedule:
    name: str
    endpoint_name: str | None
    source_uri: str | None
    baseline_uri: str | None
    output_uri: str | None
    every_seconds: float
    window_seconds: float
    status: str
    created_at: str
    last_modified: str


def _now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Schedules:
    def __init__(self, settings: Settings, db: Database | None = None) -> None:
        self.settings = settings
        self.db = db or Database(settings.db_path)
        self.db.apply(MONITOR_SCHEMA)

    def get(self, name: str) -> MonitoringSchedule | None:
        row = self.db.query_one("SELECT * FROM monitoring_schedules WHERE name = ?", (name,))
        return MonitoringSchedule(**dict(row)) if row else None

    def list(self) -> list[MonitoringSchedule]:
        return [
            MonitoringSchedule(**dict(r))
            for r in self.db.query("SELECT * FROM monitoring_schedules ORDER BY name")
        ]

    def put(self, schedule: MonitoringSchedule) -> None:
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO monitoring_schedules (name, endpoint_name, source_uri, baseline_uri,"
                " output_uri, every_seconds, window_seconds, status, created_at, last_modified)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    schedule.name,
                    schedule.endpoint_name,
                    schedule.source_uri,
                    schedule.baseline_uri,
                    schedule.output_uri,
                    schedule.every_seconds,
                    schedule.window_seconds,
                    schedule.status,
                    schedule.created_at,
                    schedule.last_modified,
                ),
            )

    def set_status(self, name: str, status: str) -> None:
        with self.db.transaction() as conn:
            conn.execute(
                "UPDATE monitoring_schedules SET status = ?, last_modified = ? WHERE name = ?",
                (status, _now_iso(), name),
            )


def _absolute(location: str | None) -> str | None:
    """Local paths become absolute: the worker process may run elsewhere."""
    if not location or "://" in location:
        return location
    path = Path(location).expanduser()
    return str(path.resolve()) if path.exists() or location.startswith((".", "~", "/")) else location


def create_schedule(
    settings: Settings,
    name: str,
    *,
    every: timedelta,
    window: timedelta | None = None,
    endpoint: str | None = None,
    source: str | None = None,
    baseline_uri: str | None = None,
    output: str | None = None,
) -> tuple[MonitoringSchedule, ServiceRecord]:
    """Record the schedule and start its background worker."""
    if not _NAME_RE.match(name):
        raise ScheduleError(f"schedule name {name!r} must be 1-63 letters, digits and hyphens")
    if every.total_seconds() < 1:
        raise ScheduleError("--every must be at least 1 second")
    schedules = Schedules(settings)
    existing = read_record(settings, service_name(name))
    if existing and existing.alive:
        raise ScheduleError(f"schedule {name!r} is already running (pid {existing.pid}); stop it first")
    now = _now_iso()
    schedule = MonitoringSchedule(
        name=name,
        endpoint_name=endpoint,
        source_uri=_absolute(source),
        baseline_uri=_absolute(baseline_uri),
        output_uri=_absolute(output),
        every_seconds=every.total_seconds(),
        window_seconds=(window or every).total_seconds(),
        status="Scheduled",
        created_at=now,
        last_modified=now,
    )
    schedules.put(schedule)
    record = start_service(
        settings,
        name=service_name(name),
        kind=SERVICE_KIND,
        args=["--log-level", "INFO", "monitor", "schedule-worker", name],
        url="",
        health_url=None,
    )
    return schedule, record


def stop_schedule(settings: Settings, name: str) -> bool:
    """Stop the worker and mark the schedule Stopped; True if a worker was running."""
    schedules = Schedules(settings)
    if schedules.get(name) is None and read_record(settings, service_name(name)) is None:
        raise ScheduleError(f"no monitoring schedule named {name!r}")
    record = read_record(settings, service_name(name))
    was_running = stop_service(settings, service_name(name))
    if schedules.get(name) is not None:
        schedules.set_status(name, "Stopped")
    if record is None or not pid_alive(record.pid):
        _stop_unfinished_runs(settings, name)
    return was_running


def _stop_unfinished_runs(settings: Settings, name: str) -> None:
    """A worker killed mid-run (a run longer than the stop grace gets SIGKILL) never finishes its execution
    record; mark it ``Stopped`` so it does not read ``InProgress`` forever."""
    executions = MonitoringExecutions(settings)
    for execution in executions.list(name, limit=10):
        if execution.status in ("Pending", "InProgress"):
            log.warning("schedule %s: run %s was stopped before it finished", name, execution.arn)
            executions.update(
                execution.arn,
                status="Stopped",
                exit_message="Stopped: the schedule was stopped before this run finished.",
            )


def schedule_status(settings: Settings) -> list[dict[str, Any]]:
    out = []
    for schedule in Schedules(settings).list():
        record = read_record(settings, service_name(schedule.name))
        out.append(
            {
                "name": schedule.name,
                "status": schedule.status,
                "running": bool(record and record.alive),
                "pid": record.pid if record else None,
                "every_seconds": schedule.every_seconds,
                "window_seconds": schedule.window_seconds,
                "endpoint": schedule.endpoint_name,
                "source": schedule.source_uri,
            }
        )
    return out


def run_worker(settings: Settings, name: str, *, max_runs: int | None = None) -> int:
    """The worker loop: one monitoring execution per tick until SIGTERM (or ``max_runs``)."""
    schedules = Schedules(settings)
    schedule = schedules.get(name)
    if schedule is None:
        raise ScheduleError(f"no monitoring schedule named {name!r}")
    stop = threading.Event()

    def _on_signal(signum: int, _frame: Any) -> None:
        log.info("schedule %s: signal %d, stopping", name, signum)
        stop.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_signal)
        signal.signal(signal.SIGINT, _on_signal)
    every = timedelta(seconds=schedule.every_seconds)
    window = timedelta(seconds=schedule.window_seconds)
    next_tick = datetime.now(UTC) + every
    runs = 0
    log.info("schedule %s: every %s, window %s", name, every, window)
    while not stop.is_set():
        wait = (next_tick - datetime.now(UTC)).total_seconds()
        if wait > 0 and stop.wait(wait):
            break
        current = schedules.get(name)
        if current is None or current.status != "Scheduled":
            log.warning("schedule %s was stopped or deleted; exiting", name)
            break
        tick = next_tick
        try:
            result = run_monitoring(
                settings,
                endpoint=schedule.endpoint_name,
                source=schedule.source_uri,
                baseline_uri=schedule.baseline_uri,
                since=tick - window,
                until=tick,
                schedule_name=name,
                output=schedule.output_uri,
            )
            log.info("schedule %s: %s", name, result.execution.exit_message)
        except MonitoringFailed as exc:
            log.warning("schedule %s: execution failed: %s", name, exc)
        except SconeflowError as exc:
            log.error("schedule %s: %s: %s", name, exc.name, exc)
        except Exception:  # keep the schedule alive; the next tick may succeed
            log.exception("schedule %s: unexpected error", name)
        runs += 1
        if max_runs is not None and runs >= max_runs:
            break
        next_tick = tick + every
        while next_tick <= datetime.now(UTC) - every:  # fell behind: skip missed ticks
            next_tick += every
    if stop.is_set() and schedules.get(name) is not None:
        schedules.set_status(name, "Stopped")  # stopped by `monitor schedule --stop` or `sconeflow down`
    return runs
