"""``sconeflow monitor captures|baseline|run|schedule|report|executions``."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from sconeflow.cliutil import HomeOption, console, err_console, settings_for
from sconeflow.config import Settings
from sconeflow.errors import SconeflowError

EndpointOption = Annotated[
    str | None,
    typer.Option("--endpoint", "-e", help="Endpoint whose captures to read (its capture destination)."),
]
SourceOption = Annotated[
    str | None,
    typer.Option(
        "--source", help="Capture prefix: s3://bucket/prefix (the store), bucket/prefix, or a local folder."
    ),
]
SinceOption = Annotated[
    str | None,
    typer.Option("--since", help="Only records at or after this time (ISO 8601, 'now', '2h ago')."),
]
UntilOption = Annotated[str | None, typer.Option("--until", help="Only records before this time.")]
BaselineOption = Annotated[
    str | None,
    typer.Option(
        "--baseline",
        help="Baseline prefix with statistics.json + constraints.json "
        "(default s3://<bucket>/monitoring/baseline/).",
    ),
]

monitor_app = typer.Typer(
    name="monitor",
    help="Model monitoring: read captured traffic, baseline it, find violations, plot and report.",
    no_args_is_help=True,
)


def _nan(value: float | None) -> float:
    return float("nan") if value is None else value


def _fmt(value: float, digits: int = 1) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def _note_empty(settings, endpoint: str | None, uri: str) -> None:  # type: ignore[no-untyped-def]
    """Say why nothing was found: a mistyped --endpoint otherwise gives an empty table, silently."""
    from sconeflow.errors import SconeflowError

    hint = ""
    if endpoint:
        try:
            from sconeflow.endpoint.registry import EndpointRegistry

            if EndpointRegistry(settings).find(endpoint) is None:
                hint = f"; no endpoint named {endpoint!r} in this home (see `sconeflow endpoint list`)"
        except (ImportError, SconeflowError):
            pass
    err_console.print(f"[yellow]no capture records under {uri}{hint}[/]", highlight=False, soft_wrap=True)


@monitor_app.command("captures")
def captures_cmd(
    endpoint: EndpointOption = None,
    source: SourceOption = None,
    since: SinceOption = None,
    until: UntilOption = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="Rows to show in the table (0 = all).")] = 20,
    output_format: Annotated[
        str, typer.Option("--format", help="table (Rich) or jsonl (one JSON object per record).")
    ] = "table",
    classes: Annotated[
        str | None, typer.Option("--classes", help="Comma-separated class names in output order.")
    ] = None,
    home: HomeOption = None,
) -> None:
    """Load capture JSONL into a table: event, time, input, image statistics, probabilities, prediction."""
    from sconeflow.monitor.captures import read_captures, resolve_source
    from sconeflow.monitor.features import table_from_records
    from sconeflow.monitor.report import summarize
    from sconeflow.monitor.timeutil import resolve_window

    if output_format not in ("table", "jsonl"):  # before reading anything
        raise typer.BadParameter("must be 'table' or 'jsonl'", param_hint="'--format'")
    given = _parse_classes(classes) if classes is not None else None
    settings = settings_for(home)
    start, end = resolve_window(None, since, until)
    capture_source = resolve_source(settings, endpoint=endpoint, source=source)
    captures = read_captures(settings, capture_source, since=start, until=end)
    class_list = given if given is not None else _known_classes(settings, endpoint)
    table = table_from_records(captures.records, class_list)
    if output_format == "jsonl":
        for i in range(len(table)):
            row = {
                "eventId": table.event_ids[i],
                "inferenceTime": str(table.times[i]) + "Z",
                "contentType": table.content_types[i],
                "inputBytes": int(table.input_sizes[i]),
                **{k: (None if math.isnan(v[i]) else float(v[i])) for k, v in table.numeric.items()},
                "predictedClass": table.predicted[i],
                "source": captures.records[i].source,
                "line": captures.records[i].line,
            }
            typer.echo(json.dumps(row))
    else:
        view = _captures_view(table, capture_source.uri, limit, wide=console.width >= 140)
        shown = view.row_count
        console.print(view)
        summary = summarize(table, malformed=len(captures.malformed))
        console.print(
            f"{summary.count} records in {captures.files} files (showing {shown}); mean confidence "
            f"{_fmt(summary.mean_confidence or float('nan'), 4) or '-'}; below {summary.threshold:g}: "
            f"{summary.below_threshold}; classes {summary.class_counts}; malformed lines skipped: "
            f"{len(captures.malformed)}"
        )
    if not captures.records:
        _note_empty(settings, endpoint, capture_source.uri)
    for bad in captures.malformed[:20]:
        err_console.print(f"[yellow]skipped[/] {bad.source}:{bad.line}: {bad.reason}", highlight=False)
    if len(captures.malformed) > 20:
        err_console.print(f"[yellow]... and {len(captures.malformed) - 20} more malformed lines[/]")


def _captures_view(table, uri: str, limit: int, *, wide: bool) -> Table:  # type: ignore[no-untyped-def]
    """The capture table; on a narrow terminal only time, image statistics and the prediction."""
    from sconeflow.monitor.features import CONFIDENCE, prob_feature

    columns = ["time (UTC)", "RGB mean", "contrast", "sharpness", "class", "conf."]
    if wide:
        columns = [
            "event",
            "time (UTC)",
            "type",
            "bytes",
            "w×h",
            *columns[1:4],
            "probabilities",
            *columns[4:],
        ]
    view = Table(title=f"Captured invocations from {uri}", show_lines=False)
    for col in columns:
        view.add_column(
            col, no_wrap=col in ("time (UTC)", "w×h"), justify="right" if col == "conf." else "left"
        )
    n = table.numeric
    for i in range(len(table) if limit <= 0 else min(limit, len(table))):
        cells = {
            "event": table.event_ids[i][:8],
            "time (UTC)": str(table.times[i]).replace("T", " "),
            "type": (table.content_types[i] or "").replace("application/", "app/"),
            "bytes": str(table.input_sizes[i]),
            "w×h": f"{_fmt(n['image_width'][i], 0)}×{_fmt(n['image_height'][i], 0)}",
            "RGB mean": "/".join(_fmt(n[f"brightness_{c}"][i], 0) for c in "rgb"),
            "contrast": _fmt(n["contrast"][i]),
            "sharpness": _fmt(n["sharpness"][i], 0),
            "probabilities": " ".join(_fmt(n[prob_feature(c)][i], 3) for c in table.classes),
            "class": table.predicted[i] or "",
            "conf.": _fmt(n[CONFIDENCE][i], 3),
        }
        view.add_row(*(cells[col] for col in columns))
    return view


def _parse_classes(text: str) -> list[str]:
    """``--classes a,b,c``: one column each, so no empty list and no name twice (two output columns
    under one name would share one ``prob_<class>`` feature and every prediction would name it)."""
    names = [c.strip() for c in text.split(",") if c.strip()]
    if not names:
        raise typer.BadParameter(f"{text!r} names no class", param_hint="'--classes'")
    twice = sorted({c for c in names if names.count(c) > 1})
    if twice:
        raise typer.BadParameter(f"{', '.join(twice)} named more than once", param_hint="'--classes'")
    return names


def _known_classes(settings: Settings, endpoint: str | None = None) -> list[str] | None:
    """Class names for the output columns: the default baseline's, else the endpoint's model's, else
    the prepared dataset's ``classes.json``; None when none is known (columns are then class_0, ...)."""
    for lookup in (_baseline_classes, _endpoint_classes, _dataset_classes):
        try:
            found = lookup(settings, endpoint)
        except (SconeflowError, OSError, ValueError, KeyError, TypeError):
            continue
        if found:
            return [str(c) for c in found]
    return None


def _baseline_classes(settings: Settings, endpoint: str | None) -> list[str] | None:
    from sconeflow.monitor.baseline import load_baseline

    return load_baseline(settings).classes


def _endpoint_classes(settings: Settings, endpoint: str | None) -> list[str] | None:
    if not endpoint:
        return None
    from sconeflow.endpoint.registry import EndpointRegistry
    from sconeflow.model.artifact import read_artifact, resolve_model

    registry = EndpointRegistry(settings)
    record = registry.find(endpoint)
    if record is None:
        return None
    model = registry.model(registry.config(record.config_name).model_name)
    _, metadata = read_artifact(resolve_model(settings, model.model_data_url).data)
    return metadata["classes"]


def _dataset_classes(settings: Settings, endpoint: str | None) -> list[str] | None:
    from sconeflow.store import open_store

    document = json.loads(open_store(settings.resolved_store_uri).get_object(settings.bucket, "classes.json"))
    return document["classes"]


@monitor_app.command("baseline")
def baseline_cmd(
    dataset: Annotated[
        str,
        typer.Option(
            "--dataset", "-d", help="bucket\\[/train|test], s3://bucket/prefix, or a training job name."
        ),
    ] = "",
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            "-m",
            help="Training job, model.tar.gz path or s3:// URI (default: latest completed job).",
        ),
    ] = None,
    split: Annotated[
        str, typer.Option("--split", help="Split when --dataset names a bucket or job.")
    ] = "train",
    output: Annotated[
        str | None, typer.Option("--output", "-o", help="Where to write (s3:// prefix or folder).")
    ] = None,
    home: HomeOption = None,
) -> None:
    """Run the model over training (or validation) images; write statistics.json and constraints.json."""
    from sconeflow.monitor.baseline import create_baseline

    settings = settings_for(home)
    with console.status("Running the model over the baseline dataset..."):
        result = create_baseline(
            settings, dataset=dataset or settings.bucket, model=model, split=split, output=output
        )
    console.print(
        f"Baseline of [bold]{result.item_count}[/] images from {result.dataset} with model {result.model}"
    )
    for path in result.files:
        console.print(f"  wrote {path}")
    features = {f["name"]: f for f in result.statistics["features"]}
    conf = features.get("confidence", {}).get("numerical_statistics", {})
    console.print(
        f"classes {result.classes}; mean confidence {conf.get('mean', float('nan')):.4f}; "
        "Completed: Job completed successfully with no violations."
    )


@monitor_app.command("run")
def run_cmd(
    endpoint: EndpointOption = None,
    source: SourceOption = None,
    window: Annotated[
        str, typer.Option("--window", "-w", help="Analyse the last 1h, 30m, ... ('all' = everything).")
    ] = "1h",
    since: SinceOption = None,
    until: UntilOption = None,
    baseline: BaselineOption = None,
    output: Annotated[
        str | None,
        typer.Option("--output", "-o", help="Reports prefix (default s3://<bucket>/monitoring/reports)."),
    ] = None,
    schedule_name: Annotated[
        str, typer.Option("--schedule-name", help="Name recorded on the execution.")
    ] = "on-demand",
    as_json: Annotated[
        bool, typer.Option("--json", help="Print constraint_violations.json to stdout (the rest to stderr).")
    ] = False,
    home: HomeOption = None,
) -> None:
    """Compare the window's traffic with the baseline; exit 0 without violations, 3 with violations."""
    from sconeflow.monitor.timeutil import resolve_window
    from sconeflow.monitor.violations import run_monitoring, violations_json

    settings = settings_for(home)
    start, end = resolve_window(window, since, until)
    result = run_monitoring(
        settings,
        endpoint=endpoint,
        source=source,
        baseline_uri=baseline,
        since=start,
        until=end,
        schedule_name=schedule_name,
        output=output,
    )
    out = err_console if as_json else console
    if as_json:
        typer.echo(violations_json(result.violations))
    else:
        _print_violations(result.violations)
    execution = result.execution
    style = "green" if execution.status == "Completed" else "red"
    out.print(f"[{style}]{execution.exit_message}[/] ({execution.records} records)", highlight=False)
    out.print(f"report: {execution.report_uri}constraint_violations.json", highlight=False)
    out.print(f"execution: {execution.arn}", highlight=False)
    if execution.exit_code:
        raise typer.Exit(execution.exit_code)


def _print_violations(violations: list[dict[str, str]]) -> None:
    if not violations:
        return
    table = Table(title=f"{len(violations)} constraint violation(s)")
    table.add_column("feature")
    table.add_column("check")
    table.add_column("description", overflow="fold")
    for v in violations:
        table.add_row(v["feature_name"], v["constraint_check_type"], v["description"])
    console.print(table)


@monitor_app.command("report")
def report_cmd(
    output_dir: Annotated[
        Path, typer.Option("--output-dir", "-o", help="Folder for the PNGs and report.html.")
    ],
    endpoint: EndpointOption = None,
    source: SourceOption = None,
    window: Annotated[str, typer.Option("--window", "-w", help="Last 1h, 1d, ... or 'all'.")] = "all",
    since: SinceOption = None,
    until: UntilOption = None,
    baseline: BaselineOption = None,
    threshold: Annotated[
        float, typer.Option("--threshold", help="Confidence threshold of the filter Lambda.")
    ] = 0.93,
    home: HomeOption = None,
) -> None:
    """Write PNG plots and one self-contained HTML report of the captured traffic against the baseline."""
    from sconeflow.errors import SconeflowError
    from sconeflow.monitor.baseline import BaselineNotFound, load_baseline
    from sconeflow.monitor.captures import resolve_source
    from sconeflow.monitor.features import load_feature_table
    from sconeflow.monitor.report import write_report
    from sconeflow.monitor.timeutil import resolve_window
    from sconeflow.monitor.violations import evaluate

    if not 0.0 <= threshold <= 1.0:
        raise typer.BadParameter("--threshold must be between 0 and 1")
    settings = settings_for(home)
    start, end = resolve_window(window, since, until)
    capture_source = resolve_source(settings, endpoint=endpoint, source=source)
    try:
        base = load_baseline(settings, baseline)
    except BaselineNotFound:
        if baseline:
            raise
        base = None
    except SconeflowError:
        raise
    with console.status("Reading captures and drawing plots..."):
        table, captures = load_feature_table(
            settings, capture_source, since=start, until=end, classes=base.classes if base else None
        )
        violations = evaluate(base, table) if base else []
        result = write_report(
            table,
            output_dir,
            baseline=base,
            violations=violations,
            malformed=captures.malformed,
            threshold=threshold,
            source=capture_source.uri,
        )
    s = result.summary
    if not s.count:
        _note_empty(settings, endpoint, capture_source.uri)
    console.print(
        f"{s.count} invocations; mean confidence {_fmt(_nan(s.mean_confidence), 4)}; "
        f"{s.below_threshold} below {threshold:g} ({_fmt((s.share_below_threshold or 0) * 100, 1)}%); "
        f"{len(violations)} violation(s); {s.malformed} malformed line(s) skipped"
    )
    for path in result.plots:
        console.print(f"  {path}", highlight=False)
    console.print(f"report: [bold]{result.html}[/]", highlight=False)


@monitor_app.command("schedule")
def schedule_cmd(
    name: Annotated[str, typer.Argument(help="Schedule name.")] = "default",
    every: Annotated[str | None, typer.Option("--every", help="Run interval: 1h, 15m, 30s, PT1H.")] = None,
    window: Annotated[
        str | None, typer.Option("--window", "-w", help="Window each run analyses (default = --every).")
    ] = None,
    endpoint: EndpointOption = None,
    source: SourceOption = None,
    baseline: BaselineOption = None,
    output: Annotated[str | None, typer.Option("--output", "-o", help="Reports prefix.")] = None,
    stop: Annotated[bool, typer.Option("--stop", help="Stop the schedule NAME.")] = False,
    list_: Annotated[bool, typer.Option("--list", help="List schedules.")] = False,
    home: HomeOption = None,
) -> None:
    """Run `monitor run` periodically in the background (stop with --stop, `sconeflow down` or cleanup)."""
    from sconeflow.monitor.schedule import create_schedule, schedule_status, stop_schedule
    from sconeflow.monitor.timeutil import parse_duration

    settings = settings_for(home)
    if list_:
        table = Table(title="Monitoring schedules")
        for col in ("name", "status", "running", "pid", "every (s)", "window (s)", "endpoint / source"):
            table.add_column(col)
        for row in schedule_status(settings):
            table.add_row(
                row["name"],
                row["status"],
                "yes" if row["running"] else "no",
                str(row["pid"] or ""),
                f"{row['every_seconds']:g}",
                f"{row['window_seconds']:g}",
                row["endpoint"] or row["source"] or "",
            )
        console.print(table)
        return
    if stop:
        was_running = stop_schedule(settings, name)
        console.print(f"schedule {name}: {'stopped' if was_running else 'was not running; marked Stopped'}")
        return
    if not every:
        raise typer.BadParameter("give --every (e.g. 1h), --list or --stop")
    schedule, record = create_schedule(
        settings,
        name,
        every=parse_duration(every),
        window=parse_duration(window) if window else None,
        endpoint=endpoint,
        source=source,
        baseline_uri=baseline,
        output=output,
    )
    console.print(
        f"schedule [bold]{schedule.name}[/] runs every {schedule.every_seconds:g}s over the last "
        f"{schedule.window_seconds:g}s (pid {record.pid}, log {record.log_path})",
        highlight=False,
    )


@monitor_app.command("schedule-worker", hidden=True)
def schedule_worker_cmd(name: str, home: HomeOption = None) -> None:
    """The background loop of a schedule (started by `monitor schedule`)."""
    from sconeflow.monitor.schedule import run_worker

    run_worker(settings_for(home), name)


@monitor_app.command("executions")
def executions_cmd(
    schedule_name: Annotated[str | None, typer.Option("--schedule-name", help="Only this schedule.")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="At most this many, newest first.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    home: HomeOption = None,
) -> None:
    """List monitoring executions (newest first) with their MonitoringExecutionStatus."""
    from sconeflow.monitor.violations import MonitoringExecutions

    executions = MonitoringExecutions(settings_for(home)).list(schedule_name, limit)
    if as_json:
        typer.echo(json.dumps({"MonitoringExecutionSummaries": [e.describe() for e in executions]}, indent=2))
        return
    table = Table(title="Monitoring executions")
    for col in ("created (UTC)", "schedule", "status", "records", "violations", "exit message"):
        table.add_column(col, overflow="fold")
    for e in executions:
        table.add_row(
            e.created_at,
            e.schedule_name,
            e.status,
            str(e.records),
            str(e.violations),
            e.exit_message or e.failure_reason or "",
        )
    console.print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(monitor_app, name="monitor")
