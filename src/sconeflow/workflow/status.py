"""``sconeflow status``: what this home is running (gateway, endpoints, schedules) and where.

Read-only: it never creates the metadata database, and it starts and stops nothing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from sconeflow import services
from sconeflow.config import Settings


@dataclass
class StatusReport:
    home: str
    store: str
    bucket: str
    gateway: dict[str, Any] | None = None  # url, pid, running, log
    endpoints: list[dict[str, Any]] = field(default_factory=list)
    schedules: list[dict[str, Any]] = field(default_factory=list)
    functions: list[dict[str, Any]] = field(default_factory=list)
    state_machines: list[dict[str, Any]] = field(default_factory=list)
    other_services: list[dict[str, Any]] = field(default_factory=list)
    last_demo: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def running(self) -> list[str]:
        """One line per running thing."""
        out = []
        if self.gateway and self.gateway["running"]:
            out.append(f"gateway {self.gateway['url']}")
        out += [f"endpoint {e['name']} {e['url']}" for e in self.endpoints if e["server"] == "running"]
        out += [f"monitor schedule {s['name']}" for s in self.schedules if s["running"]]
        out += [f"{s['kind']} {s['name']}" for s in self.other_services if s["running"]]
        return out


def _service_dict(record: services.ServiceRecord) -> dict[str, Any]:
    return {
        "name": record.name,
        "kind": record.kind,
        "url": record.url,
        "pid": record.pid,
        "running": record.alive,
        "log": record.log_path,
        "started_at": record.started_at,
    }


def collect_status(settings: Settings) -> StatusReport:
    from sconeflow.gateway.client import GATEWAY_SERVICE

    report = StatusReport(home=str(settings.home), store=settings.resolved_store_uri, bucket=settings.bucket)
    gateway = services.read_record(settings, GATEWAY_SERVICE)
    if gateway is not None:
        report.gateway = _service_dict(gateway)
    known = {GATEWAY_SERVICE}
    if settings.db_path.exists():
        known |= _endpoints(settings, report)
        known |= _schedules(settings, report)
        _functions(settings, report)
        _state_machines(settings, report)
        _last_demo(settings, report)
    report.other_services = [_service_dict(r) for r in services.list_records(settings) if r.name not in known]
    return report


def _endpoints(settings: Settings, report: StatusReport) -> set[str]:
    from sconeflow.endpoint.registry import list_views, service_name

    names = set()
    for view in list_views(settings):
        capture = view.config.data_capture
        report.endpoints.append(
            {
                "name": view.endpoint.name,
                "status": view.status,
                "server": view.server,
                "url": view.url,
                "pid": view.pid,
                "model": view.model.source_ref,
                "capture": f"{capture.initial_sampling_percentage}% -> {capture.destination_s3_uri}"
                if capture.enable_capture
                else "off",
            }
        )
        names.add(service_name(view.endpoint.name))
    return names


def _schedules(settings: Settings, report: StatusReport) -> set[str]:
    from sconeflow.monitor.schedule import schedule_status, service_name

    report.schedules = schedule_status(settings)
    return {service_name(s["name"]) for s in report.schedules}


def _functions(settings: Settings, report: StatusReport) -> None:
    from sconeflow.lambda_runtime.registry import FunctionRegistry

    for config in FunctionRegistry(settings).list():
        report.functions.append(
            {"name": config.name, "handler": config.handler, "environment": dict(config.environment)}
        )


def _state_machines(settings: Settings, report: StatusReport) -> None:
    from sconeflow.stepfunctions.service import StepFunctionsService

    service = StepFunctionsService(settings)
    for machine in service.list_state_machines():
        counts: dict[str, int] = {}
        for execution in service.list_executions(machine.arn):
            counts[execution.status] = counts.get(execution.status, 0) + 1
        report.state_machines.append(
            {"name": machine.name, "arn": machine.arn, "revision": machine.revision, "executions": counts}
        )


def _last_demo(settings: Settings, report: StatusReport) -> None:
    from sconeflow.workflow.runs import DemoRuns

    run = DemoRuns(settings).last()
    if run is None:
        return
    s = run.summary
    report.last_demo = {
        "status": run.status,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "output_dir": run.output_dir,
        "test_accuracy": s.get("test_accuracy"),
        "executions": s.get("executions"),
        "succeeded": s.get("succeeded"),
        "failed_threshold": s.get("failed_threshold"),
        "report_html": s.get("report_html"),
        "failed_step": s.get("failed_step", ""),
        "error": s.get("error", ""),
    }
