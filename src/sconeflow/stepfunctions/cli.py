"""``sconeflow sfn ...`` (state machines and executions) and ``sconeflow notifications tail``."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.syntax import Syntax
from rich.table import Table

from sconeflow.cliutil import HomeOption, console, err_console, settings_for
from sconeflow.config import Settings
from sconeflow.errors import SconeflowError

sfn_app = typer.Typer(
    name="sfn",
    help="AWS Step Functions locally: create state machines, run and inspect executions, draw them.",
    no_args_is_help=True,
)
notifications_app = typer.Typer(
    name="notifications",
    help="Messages the workflow published to SNS topics (the local topic log).",
    no_args_is_help=True,
)

STATUS_COLOURS = {
    "RUNNING": "blue",
    "SUCCEEDED": "green",
    "FAILED": "red",
    "TIMED_OUT": "red",
    "ABORTED": "grey62",
}


class UsageProblem(SconeflowError):
    """A command-line argument cannot be used."""


class ExecutionDidNotSucceed(SconeflowError):
    """An execution waited on with --wait ended FAILED, TIMED_OUT or ABORTED."""


def register(app: typer.Typer) -> None:
    app.add_typer(sfn_app, name="sfn")
    app.add_typer(notifications_app, name="notifications")


# -- helpers ----------------------------------------------------------------------------------------


def _read_text_arg(value: str, what: str) -> str:
    """``@path`` reads a file (``@-`` stdin); anything else is the value itself."""
    if value.startswith("@"):
        target = value[1:]
        if target == "-":
            return sys.stdin.read()
        try:
            return Path(target).read_text(encoding="utf-8")
        except OSError as exc:
            raise UsageProblem(f"cannot read {what} from {target!r}: {exc.strerror or exc}") from exc
        except UnicodeDecodeError as exc:
            raise UsageProblem(f"cannot read {what} from {target!r}: not UTF-8 text ({exc.reason})") from exc
    return value


def _read_definition(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageProblem(f"cannot read definition file {str(path)!r}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise UsageProblem(
            f"cannot read definition file {str(path)!r}: not UTF-8 text ({exc.reason})"
        ) from exc


def _parse_function_map(items: list[str] | None) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for item in items or []:
        old, sep, new = item.partition("=")
        if not sep or not old.strip() or not new.strip():
            raise UsageProblem(
                f"--function-map {item!r}: use OLD=NEW (a function name in the definition = a local one)"
            )
        mapping[old.strip()] = new.strip()
    return mapping


def _service(settings: Settings) -> Any:
    from sconeflow.stepfunctions.service import StepFunctionsService

    return StepFunctionsService(settings)


def _fmt_time(value: datetime | None) -> str:
    if value is None:
        return "-"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def _duration(record: Any) -> str:
    end = record.stop_date or datetime.now(UTC)
    seconds = (end - record.start_date).total_seconds()
    return f"{seconds * 1000:.0f} ms" if seconds < 10 else f"{seconds:.1f} s"


def _status(status: str) -> str:
    return f"[{STATUS_COLOURS.get(status, 'white')}]{status}[/]"


def _print_json(text: str | None) -> None:
    if text is None:
        return
    try:
        pretty = json.dumps(json.loads(text), indent=2)
    except ValueError:
        pretty = text
    if len(pretty) > 4000:
        pretty = pretty[:4000] + "\n... (truncated; use `sconeflow sfn describe --json`)"
    console.print(Syntax(pretty, "json", word_wrap=True, theme="ansi_dark", background_color="default"))


def _print_execution(record: Any) -> None:
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    table.add_row("execution", record.arn)
    table.add_row("state machine", f"{record.state_machine_name} (revision {record.revision})")
    table.add_row("status", _status(record.status))
    table.add_row("started", _fmt_time(record.start_date))
    table.add_row("stopped", _fmt_time(record.stop_date))
    table.add_row("duration", _duration(record))
    if record.error is not None:
        table.add_row("error", f"[red]{record.error}[/]")
    if record.cause is not None:
        table.add_row("cause", record.cause if len(record.cause) < 2000 else record.cause[:2000] + " ...")
    console.print(table)
    if record.status == "SUCCEEDED":
        console.print("[bold]output[/]")
        _print_json(record.output)


def _finish(record: Any) -> None:
    _print_execution(record)
    if record.status not in ("SUCCEEDED", "RUNNING"):
        raise ExecutionDidNotSucceed(
            f"execution {record.name} ended {record.status}"
            + (f" with {record.error}" if record.error else "")
        )


# -- sfn commands -----------------------------------------------------------------------------------


@sfn_app.command("validate")
def validate_cmd(
    file: Annotated[Path, typer.Argument(help="ASL definition (JSON).")],
    type_: Annotated[str, typer.Option("--type", help="STANDARD or EXPRESS.")] = "STANDARD",
    severity: Annotated[str, typer.Option(help="ERROR, or WARNING to also list warnings.")] = "WARNING",
    home: HomeOption = None,
) -> None:
    """Check a definition like AWS's ValidateStateMachineDefinition; exit 1 when it FAILs."""
    from sconeflow.stepfunctions.validate import validate_definition

    result = validate_definition(
        _read_definition(file), state_machine_type=type_.upper(), severity=severity.upper()
    )
    if result.diagnostics:
        table = Table(title=f"{file.name}: {len(result.diagnostics)} diagnostic(s)")
        for column in ("severity", "code", "location", "message"):
            table.add_column(column, overflow="fold")
        for diag in result.diagnostics:
            colour = "red" if diag.severity == "ERROR" else "yellow"
            table.add_row(f"[{colour}]{diag.severity}[/]", diag.code, diag.location or "", diag.message)
        console.print(table)
    if result.result == "FAIL":
        err_console.print(f"[bold red]FAIL[/]: {file} is not a valid state machine definition")
        raise typer.Exit(1)
    console.print(f"[bold green]OK[/]: {file} is valid" + (" (with warnings)" if result.diagnostics else ""))


@sfn_app.command("create")
def create_cmd(
    name: Annotated[str, typer.Argument(help="State machine name.")],
    file: Annotated[Path, typer.Argument(help="ASL definition (JSON), e.g. workflow/step-function.json.")],
    function_map: Annotated[
        list[str] | None,
        typer.Option(
            "--function-map", help="OLD=NEW: run function OLD of the definition as local function NEW."
        ),
    ] = None,
    update: Annotated[
        bool, typer.Option("--update", help="Replace the definition of an existing one.")
    ] = False,
    type_: Annotated[str, typer.Option("--type", help="STANDARD or EXPRESS.")] = "STANDARD",
    role_arn: Annotated[str | None, typer.Option(help="IAM role ARN (recorded, not enforced).")] = None,
    home: HomeOption = None,
) -> None:
    """Validate a definition and store it as a state machine (a new revision with --update)."""
    from sconeflow.stepfunctions.errors import InvalidDefinition

    settings = settings_for(home)
    try:
        machine = _service(settings).create_state_machine(
            name,
            _read_definition(file),
            type=type_.upper(),
            role_arn=role_arn,
            function_map=_parse_function_map(function_map),
            update=update,
        )
    except InvalidDefinition as exc:
        for diag in exc.diagnostics:
            err_console.print(f"  [red]{diag.code}[/] {diag.location or ''}: {diag.message}", highlight=False)
        raise
    console.print(f"[green]state machine[/] {machine.arn} (revision {machine.revision}, {machine.type})")
    if machine.function_map:
        console.print("function map: " + ", ".join(f"{k} -> {v}" for k, v in machine.function_map.items()))


@sfn_app.command("machines")
def machines_cmd(home: HomeOption = None) -> None:
    """List state machines."""
    settings = settings_for(home)
    table = Table(title="state machines")
    for column in ("name", "type", "revision", "created", "arn"):
        table.add_column(column, overflow="fold")
    for machine in _service(settings).list_state_machines():
        table.add_row(
            machine.name, machine.type, str(machine.revision), _fmt_time(machine.created), machine.arn
        )
    console.print(table)


@sfn_app.command("delete")
def delete_cmd(
    name: Annotated[str, typer.Argument(help="State machine name or ARN.")], home: HomeOption = None
) -> None:
    """Delete a state machine (running executions are stopped; history is kept)."""
    machine = _service(settings_for(home)).delete_state_machine(name)
    console.print(f"deleted {machine.arn}")


def _start_detached(settings: Settings, machine: str, input_text: str, name: str) -> Any:
    """Run the execution in a detached ``sconeflow sfn start --wait`` child; return its record once stored."""
    from sconeflow.services import child_env, pid_alive
    from sconeflow.stepfunctions.executions import ExecutionDoesNotExist

    service = _service(settings)
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=settings.run_dir, suffix=".input.json", delete=False) as handle:
        handle.write(input_text)
        input_file = handle.name
    settings.logs_dir.mkdir(parents=True, exist_ok=True)
    log_path = settings.logs_dir / f"sfn-{name}.log"
    with log_path.open("ab") as log_file:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "sconeflow",
                "sfn",
                "start",
                machine,
                "--input",
                f"@{input_file}",
                "--name",
                name,
                "--wait",
                "--quiet",
                "--delete-input-file",
            ],
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=child_env(settings),
            start_new_session=True,
            close_fds=True,
        )
    deadline = time.monotonic() + 30
    machine_record = service.describe_state_machine(machine)
    arn = service.execution_arn(machine_record.name, name)
    while time.monotonic() < deadline:
        try:
            return service.store.get_execution(arn)
        except ExecutionDoesNotExist:
            pass
        if not pid_alive(process.pid) and process.poll() is not None:
            Path(input_file).unlink(missing_ok=True)
            tail = log_path.read_text(errors="replace")[-600:].strip()
            raise UsageProblem(f"the execution runner exited before starting: {tail}")
        time.sleep(0.05)
    raise UsageProblem(f"the execution runner did not start within 30 s (see {log_path})")


@sfn_app.command("start")
def start_cmd(
    machine: Annotated[str, typer.Argument(help="State machine name or ARN.")],
    input_: Annotated[str, typer.Option("--input", help="Execution input: JSON text, or @file.")] = "{}",
    name: Annotated[str | None, typer.Option(help="Execution name (default: a UUID).")] = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="Run here and wait for the end; print the result.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", hidden=True)] = False,
    delete_input_file: Annotated[bool, typer.Option("--delete-input-file", hidden=True)] = False,
    home: HomeOption = None,
) -> None:
    """Start an execution; without --wait it runs in the gateway (`sconeflow up`) or a background process."""
    settings = settings_for(home)
    input_text = _read_text_arg(input_, "--input")
    if delete_input_file and input_.startswith("@"):
        Path(input_[1:]).unlink(missing_ok=True)
    service = _service(settings)
    if wait:
        record = service.run_to_end(machine, input_text, name=name)
        if quiet:
            return
        _finish(record)
        return
    from sconeflow.stepfunctions.service import check_input, check_name

    name = check_name(name or str(uuid.uuid4()), "execution name")
    check_input(input_text)
    machine_record = service.describe_state_machine(machine)
    url = _gateway_url(settings)
    if url is not None:
        from sconeflow.gateway.client import boto3_client

        client = boto3_client(settings, "stepfunctions", url=url)
        response = client.start_execution(stateMachineArn=machine_record.arn, input=input_text, name=name)
        arn = response["executionArn"]
        where = f"the gateway ({url})"
    else:
        from sconeflow.stepfunctions.executions import ExecutionAlreadyExists

        # as StartExecution does: a name already used is refused (the detached runner would fail on it
        # while this command reported the old execution as started)
        existing = service.store.find_execution(service.execution_arn(machine_record.name, name))
        if existing is not None and not (existing.status == "RUNNING" and existing.input == input_text):
            raise ExecutionAlreadyExists(f"Execution Already Exists: '{existing.arn}'")
        if existing is not None:
            arn = existing.arn
        else:
            arn = _start_detached(settings, machine_record.arn, input_text, name).arn
        where = "a background process"
    console.print(f"[blue]RUNNING[/] {arn}  (in {where}; `sconeflow sfn describe {name}`)")


def _gateway_url(settings: Settings) -> str | None:
    try:
        from sconeflow.gateway.client import gateway_url
    except ImportError:
        return None
    return gateway_url(settings)


@sfn_app.command("run")
def run_cmd(
    file: Annotated[Path, typer.Argument(help="ASL definition (JSON).")],
    input_: Annotated[str, typer.Option("--input", help="Execution input: JSON text, or @file.")] = "{}",
    name: Annotated[str | None, typer.Option(help="Execution name (default: a UUID).")] = None,
    function_map: Annotated[
        list[str] | None,
        typer.Option(
            "--function-map", help="OLD=NEW: run function OLD of the definition as local function NEW."
        ),
    ] = None,
    home: HomeOption = None,
) -> None:
    """One-off: store FILE as state machine `run-<file stem>` (new revision if changed), run it, wait."""
    import re

    settings = settings_for(home)
    service = _service(settings)
    machine_name = "run-" + re.sub(r"[^A-Za-z0-9_-]", "-", file.stem)[:70]
    service.create_state_machine(
        machine_name, _read_definition(file), function_map=_parse_function_map(function_map), update=True
    )
    _finish(service.run_to_end(machine_name, _read_text_arg(input_, "--input"), name=name))


@sfn_app.command("list")
def list_cmd(
    machine: Annotated[str | None, typer.Option("--machine", "-m", help="Only this state machine.")] = None,
    status: Annotated[str | None, typer.Option(help="Only this status (RUNNING, SUCCEEDED, ...).")] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many (newest first).")] = 50,
    home: HomeOption = None,
) -> None:
    """List executions, newest first (a run whose process died shows ABORTED, not RUNNING)."""
    from sconeflow.stepfunctions.executions import STATUSES

    if status and status.upper() not in (*STATUSES, "PENDING_REDRIVE"):
        raise UsageProblem(f"--status {status!r}: use one of {', '.join(STATUSES)}")
    settings = settings_for(home)
    records = _service(settings).list_executions(
        machine, status=status.upper() if status else None, limit=limit
    )
    table = Table(title="executions")
    for column in ("name", "state machine", "status", "started", "duration", "error"):
        table.add_column(column, overflow="fold")
    for record in records:
        table.add_row(
            record.name,
            record.state_machine_name,
            _status(record.status),
            _fmt_time(record.start_date),
            _duration(record),
            record.error or "",
        )
    console.print(table)


@sfn_app.command("describe")
def describe_cmd(
    execution: Annotated[str, typer.Argument(help="Execution ARN or name.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the DescribeExecution response.")] = False,
    home: HomeOption = None,
) -> None:
    """Show an execution: status, dates, input, output or error and cause."""
    from sconeflow.stepfunctions.responses import execution_shape

    record = _service(settings_for(home)).describe_execution(execution)
    if as_json:
        print(json.dumps(execution_shape(record), indent=2))
        return
    _print_execution(record)
    console.print("[bold]input[/]")
    _print_json(record.input)


def _event_summary(event: dict[str, Any]) -> str:
    for key, value in event.items():
        if key.endswith("EventDetails") and isinstance(value, dict):
            if "name" in value:
                return str(value["name"])
            if "error" in value or "cause" in value:
                cause = str(value.get("cause") or "")
                try:  # a Lambda error payload: its message says it best
                    parsed = json.loads(cause)
                    if isinstance(parsed, dict) and "errorMessage" in parsed:
                        cause = str(parsed["errorMessage"])
                except ValueError:
                    pass
                return f"{value.get('error', '')}: {cause[:100]}" if cause else str(value.get("error", ""))
            if "resource" in value:
                return f"{value.get('resourceType', '')}:{value['resource']}"
    return ""


@sfn_app.command("history")
def history_cmd(
    execution: Annotated[str, typer.Argument(help="Execution ARN or name.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the GetExecutionHistory response.")] = False,
    home: HomeOption = None,
) -> None:
    """Show the execution's history events (AWS types, ids and previousEventId)."""
    from sconeflow.stepfunctions.responses import event_shape

    record, events = _service(settings_for(home)).history(execution)
    if as_json:
        print(json.dumps({"events": [event_shape(e) for e in events]}, indent=2, default=str))
        return
    table = Table(title=f"{record.name} ({record.status}, started {_fmt_time(record.start_date)})")
    for column in ("id", "prev", "type", "time (UTC)", "state / detail"):
        table.add_column(column, overflow="fold")
    for event in events:
        kind = event["type"]
        colour = (
            "red"
            if "Failed" in kind or "Aborted" in kind or "TimedOut" in kind
            else ("green" if "Succeeded" in kind else "white")
        )
        table.add_row(
            str(event["id"]),
            str(event["previousEventId"]),
            f"[{colour}]{kind}[/]",
            _fmt_time(event["timestamp"])[11:],
            _event_summary(event),
        )
    console.print(table)


@sfn_app.command("stop")
def stop_cmd(
    execution: Annotated[str, typer.Argument(help="Execution ARN or name.")],
    error: Annotated[str | None, typer.Option(help="Error code recorded on the abort.")] = None,
    cause: Annotated[str | None, typer.Option(help="Cause recorded on the abort.")] = None,
    home: HomeOption = None,
) -> None:
    """Abort a running execution (ExecutionAborted)."""
    record = _service(settings_for(home)).stop_execution(execution, error=error, cause=cause)
    console.print(f"{record.name}: {_status(record.status)} at {_fmt_time(record.stop_date)}")


@sfn_app.command("render")
def render_cmd(
    execution: Annotated[
        str, typer.Argument(help="Execution ARN or name (or a state machine with --machine).")
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="graph.png or graph.svg")] = Path(
        "graph.png"
    ),
    machine: Annotated[
        bool, typer.Option("--machine", help="Draw a state machine's design, no execution.")
    ] = False,
    home: HomeOption = None,
) -> None:
    """Draw the execution like the AWS console graph, each state coloured by what happened."""
    from sconeflow.stepfunctions.render import render_execution, render_graph

    service = _service(settings_for(home))
    if machine:
        record = service.describe_state_machine(execution)
        result = render_graph(
            record.definition, output, title=record.name, subtitle=f"{record.type} state machine"
        )
    else:
        result = render_execution(service, execution, output)
    console.print(f"wrote {result.path} ({result.width_px}x{result.height_px} px)")


# -- notifications ----------------------------------------------------------------------------------


@notifications_app.command("tail")
def tail_cmd(
    topic: Annotated[str | None, typer.Option(help="Only this topic name (default: all topics).")] = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep watching for new messages.")] = False,
    lines: Annotated[int, typer.Option("-n", min=0, help="Show the last N messages first.")] = 10,
    webhook: Annotated[str | None, typer.Option(help="Also POST each message shown to this URL.")] = None,
    retries: Annotated[int, typer.Option(min=0, help="Webhook retries per message.")] = 3,
    poll: Annotated[float, typer.Option(min=0.05, help="Seconds between polls with --follow.")] = 0.5,
    for_seconds: Annotated[
        float | None, typer.Option("--for", min=0, help="With --follow: stop after this many seconds.")
    ] = None,
    home: HomeOption = None,
) -> None:
    """Show the messages the workflow published to SNS topics, as they arrive with --follow."""
    from sconeflow.stepfunctions.topic_log import TopicLog, WebhookFailed, post_webhook

    settings = settings_for(home)
    log_ = TopicLog(settings)
    if webhook and not webhook.startswith(("http://", "https://")):
        raise UsageProblem(f"--webhook {webhook!r}: give an http:// or https:// URL")

    def show(note: Any) -> None:
        body = note.body
        message = note.message
        console.print(
            f"[bold]{body.get('Timestamp', '')}[/] [cyan]{note.topic}[/] "
            f"{body.get('Subject') or ''} [dim]{body.get('MessageId', '')}[/]",
            highlight=False,
        )
        if isinstance(message, dict):
            for key in ("execution", "error", "image_key", "cause"):
                if key in message:
                    value = str(message[key])
                    console.print(
                        f"  {key}: {value if len(value) < 300 else value[:300] + ' ...'}", highlight=False
                    )
            extra = {
                k: v for k, v in message.items() if k not in ("execution", "error", "image_key", "cause")
            }
            if extra:
                console.print(f"  {json.dumps(extra)[:300]}", highlight=False)
        else:
            console.print(f"  {message}", highlight=False)
        if webhook:
            try:
                attempts = post_webhook(webhook, note, retries=retries)
                console.print(
                    f"  [green]posted[/] to {webhook}"
                    + (f" after {attempts} attempts" if attempts > 1 else "")
                )
            except WebhookFailed as exc:
                err_console.print(f"  [red]WebhookFailed[/]: {exc}", highlight=False)

    existing = log_.read(topic, last=max(lines, 1))
    for note in existing[-lines:] if lines > 0 else []:
        show(note)
    if not follow:
        if not existing:
            console.print("no messages yet")
        return
    import threading

    after = existing[-1].key if existing else None
    stop = threading.Event()
    if for_seconds is not None:
        timer = threading.Timer(for_seconds, stop.set)
        timer.daemon = True
        timer.start()
    try:
        for note in log_.follow(topic, after=after, poll_s=poll, stop=stop):
            show(note)
    except KeyboardInterrupt:
        pass


__all__ = ["register"]
