"""``sconeflow demo``, ``sconeflow cleanup [--all]`` and ``sconeflow status``."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from sconeflow.cliutil import HomeOption, console, progress, settings_for, sigterm_as_interrupt


class _RichReporter:
    """Draws the demo's step list (stdout) and a progress bar per step (stderr)."""

    def __init__(self) -> None:
        self._progress: Any = None
        self._tasks: dict[str, Any] = {}

    def step_started(self, index: int, total: int, key: str, title: str) -> None:
        console.print(f"[bold cyan]\\[{index}/{total}][/] {title} ...", highlight=False)
        self._progress = progress(transient=True)
        self._progress.start()
        self._tasks = {}

    def _stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def step_finished(
        self, index: int, total: int, key: str, title: str, detail: str, seconds: float
    ) -> None:
        self._stop()
        console.print(
            f"      [green]✓[/] {detail} [dim]({seconds:.1f} s)[/]", highlight=False, soft_wrap=True
        )

    def progress(self, label: str, done: int, total: int | None) -> None:
        if self._progress is None:
            return
        task = self._tasks.get(label)
        if task is None:
            task = self._tasks[label] = self._progress.add_task(label, total=total)
        self._progress.update(task, completed=done, total=total)

    def close(self) -> None:
        self._stop()


def demo(
    source: Annotated[
        str | None,
        typer.Option(
            "--source", help="Local CIFAR-100 tarball or folder (default: download CIFAR-100, ~160 MB)."
        ),
    ] = None,
    fast: Annotated[bool, typer.Option("--fast", help="Train a short schedule for a quick look.")] = False,
    executions: Annotated[
        int, typer.Option("--executions", "-n", help="Step Functions executions on random test images.")
    ] = 30,
    threshold: Annotated[
        float, typer.Option("--threshold", help="Confidence threshold of the filter_inference Lambda.")
    ] = 0.93,
    epochs: Annotated[
        int | None, typer.Option("--epochs", help="Override the number of training epochs.")
    ] = None,
    output_dir: Annotated[
        Path | None,
        typer.Option(
            "--output-dir", "-o", help="Where the pictures and the report go (default <home>/demo)."
        ),
    ] = None,
    endpoint_name: Annotated[str, typer.Option("--endpoint-name", help="Endpoint name.")] = (
        "scones-unlimited-endpoint"
    ),
    port: Annotated[
        int, typer.Option("--port", help="Gateway port (0: any free port; 4566 falls back to a free one).")
    ] = 4566,
    seed: Annotated[int, typer.Option("--seed", help="Seed for picking the test images.")] = 0,
    home: HomeOption = None,
) -> None:
    """Run the whole workflow: data, training, endpoint, Lambdas, state machine, executions, monitoring."""
    from sconeflow.workflow.demo import STEPS, DemoOptions, run_demo

    settings = settings_for(home)
    options = DemoOptions(
        source=source,
        fast=fast,
        executions=executions,
        threshold=threshold,
        epochs=epochs,
        output_dir=output_dir,
        endpoint_name=endpoint_name,
        port=port,
        seed=seed,
    )
    console.print(f"[bold]sconeflow demo[/] in {settings.home} ({len(STEPS)} steps)", highlight=False)
    reporter = _RichReporter()
    try:
        with sigterm_as_interrupt():  # `kill <pid>` records the run as Failed, as Ctrl-C does
            summary = run_demo(settings, options, reporter)
    finally:
        reporter.close()
    _print_summary(summary)


def _print_summary(s: Any) -> None:
    table = Table(title="Scones Unlimited workflow: summary", show_header=False, title_justify="left")
    table.add_column("what", style="bold")
    table.add_column("value", overflow="fold")
    accuracy = "n/a" if s.test_accuracy is None else f"{s.test_accuracy:.2%} ({s.test_images} test images)"
    table.add_row("test accuracy", accuracy)
    job = s.training_job + (" (reused)" if s.training_reused else "")
    if s.training_seconds is not None:
        job += f", {s.training_seconds:.0f} s of training"
    table.add_row("training job", job)
    table.add_row("endpoint", f"{s.endpoint} at {s.endpoint_url}")
    table.add_row("gateway", f"{s.gateway_url}  (export AWS_ENDPOINT_URL={s.gateway_url})")
    table.add_row("state machine", s.state_machine_arn)
    executions = (
        f"{s.executions}: {s.succeeded} succeeded, {s.failed_threshold} failed "
        f"(ThresholdConfidenceNotMet, threshold {s.threshold:g})"
    )
    if s.failed_other:
        executions += f", {s.failed_other} failed otherwise"
    if s.extra_executions:
        executions += f"; {s.extra_executions} extra"
    table.add_row("executions", executions)
    for kind in ("succeeded", "failed"):
        table.add_row(
            f"picture ({kind})", s.pictures.get(kind) or f"none: {s.missing_pictures.get(kind, '')}"
        )
    table.add_row("evaluation", s.evaluation_png)
    table.add_row("monitoring report", s.report_html)
    table.add_row("monitoring", f"{s.captured_records} captured requests; {s.monitoring_status}")
    table.add_row("reused", ", ".join(s.reused) or "nothing (fresh run)")
    table.add_row("time", f"{s.total_seconds:.1f} s in all")
    console.print(table)
    console.print(
        "Stop everything with [bold]sconeflow cleanup[/] "
        "(add [bold]--all[/] to remove data, models and captures).",
        highlight=False,
    )


def cleanup_command(
    remove_all: Annotated[
        bool,
        typer.Option(
            "--all", help="Also remove data, models, captures, demo outputs, database, logs, caches."
        ),
    ] = False,
    home: HomeOption = None,
) -> None:
    """Stop every server and endpoint this home started, delete the endpoints (--all: remove everything)."""
    from sconeflow.workflow.cleanup import cleanup

    settings = _settings_no_create(home)
    report = cleanup(settings, remove_all=remove_all)
    for line in report.stopped:
        console.print(f"stopped {line}", highlight=False, soft_wrap=True)
    for line in report.deleted:
        console.print(f"deleted {line}", highlight=False, soft_wrap=True)
    for line in report.removed:
        console.print(f"removed {line}", highlight=False, soft_wrap=True)
    for line in report.kept:
        console.print(f"kept {line}", highlight=False, soft_wrap=True)
    if report.nothing_done:
        console.print(f"nothing to clean up in {settings.home}", highlight=False)


def status_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
    home: HomeOption = None,
) -> None:
    """Show what this home is running (gateway, endpoints, schedules) and where."""
    from sconeflow.workflow.status import collect_status

    settings = _settings_no_create(home)
    report = collect_status(settings)
    if as_json:
        console.print_json(json.dumps(report.as_dict()))
        return
    console.print(f"[bold]home[/] {report.home}   [bold]store[/] {report.store}", highlight=False)
    services = Table(title="running services", title_justify="left")
    for column in ("service", "state", "url", "pid", "log"):
        services.add_column(column, overflow="fold")
    if report.gateway:
        g = report.gateway
        services.add_row("gateway", _state(g["running"]), g["url"], str(g["pid"]), g["log"])
    for e in report.endpoints:
        state = f"{e['status']} / server {e['server']}"
        services.add_row(f"endpoint {e['name']}", state, e["url"] or "", str(e["pid"] or ""), e["capture"])
    for s in report.schedules:
        every = f"every {s['every_seconds']:g} s"
        services.add_row(
            f"monitor schedule {s['name']}",
            f"{s['status']} / {_state(s['running'])}",
            every,
            str(s["pid"] or ""),
            "",
        )
    for o in report.other_services:
        services.add_row(f"{o['kind']} {o['name']}", _state(o["running"]), o["url"], str(o["pid"]), o["log"])
    if services.row_count:
        console.print(services)
    else:
        console.print("nothing is running (start with `sconeflow up` or `sconeflow demo`)")
    if report.functions:
        functions = Table(title="Lambda functions", title_justify="left")
        functions.add_column("function")
        functions.add_column("environment", overflow="fold")
        for f in report.functions:
            functions.add_row(f["name"], ", ".join(f"{k}={v}" for k, v in f["environment"].items()))
        console.print(functions)
    if report.state_machines:
        machines = Table(title="state machines", title_justify="left")
        for column in ("name", "revision", "executions"):
            machines.add_column(column, overflow="fold")
        for m in report.state_machines:
            counts = ", ".join(f"{n} {k}" for k, n in sorted(m["executions"].items())) or "none"
            machines.add_row(m["name"], str(m["revision"]), counts)
        console.print(machines)
    if report.last_demo and report.last_demo["status"] != "Completed":
        d = report.last_demo
        where = f" in step {d['failed_step']}: {d['error']}" if d["failed_step"] else ""
        console.print(
            f"last demo: {d['status']} at {d['finished_at'] or d['started_at']}{where}",
            highlight=False,
            soft_wrap=True,
        )
    elif report.last_demo:
        d = report.last_demo
        accuracy = "n/a" if d["test_accuracy"] is None else f"{d['test_accuracy']:.2%}"
        console.print(
            f"last demo: {d['status']} at {d['finished_at'] or d['started_at']}; test accuracy {accuracy}; "
            f"{d['succeeded']}/{d['executions']} executions succeeded; report {d['report_html']}",
            highlight=False,
            soft_wrap=True,
        )


def _settings_no_create(home: Path | None) -> Any:
    """Settings without creating the home's folders (cleanup and status must not leave any behind)."""
    from sconeflow.config import load_settings

    return load_settings(home if home else os.environ.get("SCONEFLOW_HOME") or None)


def _state(running: bool) -> str:
    return "[green]running[/]" if running else "[red]not running[/]"


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
    app.command("cleanup")(cleanup_command)
    app.command("status")(status_command)
