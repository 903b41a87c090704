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


def _qualified(service: Any, ref: str) -> str:
    """What the service takes for ``ref``: a name or ARN unchanged; ``name:3`` / ``name:PROD`` as the
    version / alias ARN of that state machine (a state machine name cannot hold ``:``)."""
    if ref.startswith("arn:") or ":" not in ref:
        return ref
    name, _, qualifier = ref.partition(":")
    if not name or not qualifier or ":" in qualifier:
        raise UsageProblem(
            f"{ref!r}: give a state machine name or ARN, NAME:VERSION, NAME:ALIAS, or a version or alias ARN"
        )
    return f"{service.describe_state_machine(name).arn}:{qualifier}"


def _is_qualified(ref: str) -> bool:
    from sconeflow.stepfunctions.executions import version_arn_of
    from sconeflow.stepfunctions.service import alias_arn_of

    return version_arn_of(ref) is not None or alias_arn_of(ref) is not None


def _unqualified_machine(service: Any, ref: str, command: str) -> Any:
    """The state machine ``ref`` names by name or unqualified ARN; a version or alias is a UsageProblem."""
    target = _qualified(service, ref)
    if _is_qualified(target):
        raise UsageProblem(
            f"{ref!r}: `sconeflow sfn {command}` takes a state machine name or ARN, not a version or alias"
        )
    return service.describe_state_machine(target)


def _version_number(version_arn: str | None) -> str:
    return version_arn.rpartition(":")[2] if version_arn else ""


def _ran(record: Any) -> str:
    """Which version (and alias) an execution ran: ``2``, ``2 via PROD``, or ``-`` (unqualified ARN)."""
    if record.version_arn is None:
        return "-"
    text = _version_number(record.version_arn)
    if record.alias_arn is not None:
        text += f" via {record.alias_arn.rpartition(':')[2]}"
    return text


def _routing_text(routing: list[tuple[str, int]]) -> str:
    return " + ".join(f"version {_version_number(arn)} ({weight}%)" for arn, weight in routing)


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
    if record.version_arn is not None:
        table.add_row("version", f"{_version_number(record.version_arn)} ({record.version_arn})")
    if record.alias_arn is not None:
        table.add_row("alias", record.alias_arn)
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
    name: Annotated[
        str,
        typer.Argument(
            help="State machine name or ARN; NAME:VERSION (or a version ARN) deletes that version."
        ),
    ],
    home: HomeOption = None,
) -> None:
    """Delete a state machine with its versions and aliases (running executions are stopped; history is
    kept), or one published version."""
    from sconeflow.stepfunctions.executions import version_arn_of
    from sconeflow.stepfunctions.service import alias_arn_of

    service = _service(settings_for(home))
    target = _qualified(service, name)
    if version_arn_of(target) is not None:
        service.describe_state_machine(version_arn_of(target)[0])  # an unknown machine is named
        if service.store.get_version(*version_arn_of(target)) is None:
            raise UsageProblem(f"{name!r}: no such version (`sconeflow sfn versions` lists them)")
        service.delete_version(target)  # ConflictException while an alias routes to it
        console.print(f"deleted version {target}", soft_wrap=True)
        return
    if alias_arn_of(target) is not None:
        raise UsageProblem(
            f"{name!r} is an alias: delete it with `sconeflow sfn alias delete {name}` "
            "(`sconeflow sfn delete MACHINE` deletes the state machine)"
        )
    machine = service.delete_state_machine(target)
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
    machine_record = service.machine_of(machine)
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
    machine: Annotated[
        str,
        typer.Argument(
            help="State machine name or ARN; NAME:VERSION, NAME:ALIAS or a version or alias ARN runs "
            "that version (an alias picks one of its versions by weight)."
        ),
    ],
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
    target = _qualified(service, machine)
    if wait:
        record = service.run_to_end(target, input_text, name=name)
        if quiet:
            return
        _finish(record)
        return
    from sconeflow.stepfunctions.service import check_input, check_name

    name = check_name(name or str(uuid.uuid4()), "execution name")
    check_input(input_text)
    machine_record = service.machine_of(target)  # StateMachineDoesNotExist for an unknown version/alias
    # a version or alias ARN is passed on as it is: the execution must run that version, not the latest
    start_arn = target if _is_qualified(target) else machine_record.arn
    url = _gateway_url(settings)
    if url is not None:
        from sconeflow.gateway.client import boto3_client

        client = boto3_client(settings, "stepfunctions", url=url)
        response = client.start_execution(stateMachineArn=start_arn, input=input_text, name=name)
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
            arn = _start_detached(settings, start_arn, input_text, name).arn
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
    machine: Annotated[
        str | None,
        typer.Option(
            "--machine",
            "-m",
            help="Only this state machine; NAME:VERSION only that version's, NAME:ALIAS only those "
            "started through the alias.",
        ),
    ] = None,
    status: Annotated[str | None, typer.Option(help="Only this status (RUNNING, SUCCEEDED, ...).")] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many (newest first).")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print the ListExecutions response.")] = False,
    home: HomeOption = None,
) -> None:
    """List executions, newest first, with the version (and alias) each ran (a run whose process died
    shows ABORTED, not RUNNING)."""
    from sconeflow.stepfunctions.executions import STATUSES

    if status and status.upper() not in (*STATUSES, "PENDING_REDRIVE"):
        raise UsageProblem(f"--status {status!r}: use one of {', '.join(STATUSES)}")
    settings = settings_for(home)
    service = _service(settings)
    records = service.list_executions(
        _qualified(service, machine) if machine else None,
        status=status.upper() if status else None,
        limit=limit,
    )
    if as_json:
        from sconeflow.stepfunctions.responses import list_item_shape

        print(json.dumps({"executions": [list_item_shape(r) for r in records]}, indent=2))
        return
    table = Table(title="executions")
    ran = [_ran(record) for record in records]
    for column in ("name", "state machine", "version", "status", "started", "duration", "error"):
        # "2 via PROD" whole even on a narrow terminal; the rest folds
        width = max(map(len, ran), default=7) if column == "version" else None
        table.add_column(column, overflow="fold", min_width=width)
    for record, version in zip(records, ran, strict=True):
        table.add_row(
            record.name,
            record.state_machine_name,
            version,
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


# -- versions and aliases ---------------------------------------------------------------------------


alias_app = typer.Typer(
    name="alias",
    help="State machine aliases: a name that routes executions to one or two published versions by weight.",
    no_args_is_help=True,
)
sfn_app.add_typer(alias_app, name="alias")


def _epoch(value: datetime | None) -> float | None:
    return value.timestamp() if value is not None else None


@sfn_app.command("publish")
def publish_cmd(
    machine: Annotated[str, typer.Argument(help="State machine name or ARN.")],
    description: Annotated[
        str | None, typer.Option("--description", help="Version description (up to 256 characters).")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the PublishStateMachineVersion response.")
    ] = False,
    home: HomeOption = None,
) -> None:
    """Publish the current revision as the next version (1, 2, 3 ...); a revision published before
    keeps its version (as PublishStateMachineVersion answers)."""
    service = _service(settings_for(home))
    record = _unqualified_machine(service, machine, "publish")
    before = {v.version for v in service.list_versions(record.arn)}
    version = service.publish_version(record.arn, description=description)
    if as_json:
        print(json.dumps({"creationDate": _epoch(version.created), "stateMachineVersionArn": version.arn}))
        return
    if version.version in before:
        console.print(
            f"revision {version.revision} of {record.name} is already version {version.version} "
            f"(nothing published): {version.arn}",
            soft_wrap=True,
        )
    else:
        console.print(
            f"[green]published[/] version {version.version} of {record.name} "
            f"(revision {version.revision}): {version.arn}",
            soft_wrap=True,
        )


@sfn_app.command("versions")
def versions_cmd(
    machine: Annotated[str, typer.Argument(help="State machine name or ARN.")],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the ListStateMachineVersions response.")
    ] = False,
    home: HomeOption = None,
) -> None:
    """List a state machine's published versions, newest first, with the aliases routing to each."""
    service = _service(settings_for(home))
    record = _unqualified_machine(service, machine, "versions")
    versions = service.list_versions(record.arn)
    if as_json:
        items = [{"stateMachineVersionArn": v.arn, "creationDate": _epoch(v.created)} for v in versions]
        print(json.dumps({"stateMachineVersions": items}, indent=2))
        return
    routed: dict[str, list[str]] = {}
    for alias in service.list_aliases(record.arn):
        for arn, weight in alias.routing:
            routed.setdefault(arn, []).append(f"{alias.name} ({weight}%)")
    table = Table(title=f"versions of {record.name} (current revision {record.revision})")
    for column in ("version", "revision", "created", "description", "aliases", "arn"):
        table.add_column(column, overflow="fold")
    for v in versions:
        table.add_row(
            str(v.version),
            f"{v.revision} (current)" if v.revision == record.revision else str(v.revision),
            _fmt_time(v.created),
            v.description or "",
            ", ".join(routed.get(v.arn, [])),
            v.arn,
        )
    console.print(table)
    if not versions:
        console.print(
            f"no published versions: `sconeflow sfn publish {record.name}` publishes one", soft_wrap=True
        )


def _alias_arn(service: Any, machine: str, alias: str | None) -> str:
    """The alias ARN of MACHINE ALIAS, or of MACHINE alone given as NAME:ALIAS or an alias ARN."""
    from sconeflow.stepfunctions.service import alias_arn_of

    if alias is None:
        target = _qualified(service, machine)
        parsed = alias_arn_of(target)
        if parsed is None:
            raise UsageProblem(f"{machine!r}: name the alias as MACHINE ALIAS, MACHINE:ALIAS or its ARN")
        service.describe_state_machine(parsed[0])  # an unknown state machine is named as such
        return target
    record = _unqualified_machine(service, machine, "alias")
    return f"{record.arn}:{alias}"


def _parse_routes(machine_arn: str, routes: list[str] | None) -> list[dict[str, Any]] | None:
    """``--route VERSION=WEIGHT`` (one or two; a single ``--route VERSION`` is weight 100) as a
    ``routingConfiguration``. VERSION: a version number or a version ARN."""
    if not routes:
        return None
    if len(routes) > 2:
        raise UsageProblem(f"--route given {len(routes)} times: an alias routes to one or two versions")
    items: list[dict[str, Any]] = []
    for route in routes:
        version, sep, weight_text = route.partition("=")
        version = version.strip()
        if not sep and len(routes) == 1:
            weight_text = "100"
        try:
            weight = int(weight_text.strip())
        except ValueError:
            raise UsageProblem(
                f"--route {route!r}: use VERSION=WEIGHT, e.g. --route 2=90 --route 1=10 "
                "(weights 0-100 summing to 100)"
            ) from None
        if version.isdigit():
            version = f"{machine_arn}:{version}"
        elif not version.startswith("arn:"):
            raise UsageProblem(f"--route {route!r}: VERSION is a version number (or a version ARN)")
        items.append({"stateMachineVersionArn": version, "weight": weight})
    return items


def _print_alias(alias: Any) -> None:
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    table.add_row("alias", alias.arn)
    table.add_row("routing", _routing_text(alias.routing))
    table.add_row("description", alias.description or "")
    table.add_row("created", _fmt_time(alias.created))
    table.add_row("updated", _fmt_time(alias.updated))
    console.print(table)


AliasArg = Annotated[
    str, typer.Argument(help="State machine name or ARN (or MACHINE:ALIAS, or the alias ARN, alone).")
]
AliasNameArg = Annotated[str | None, typer.Argument(help="Alias name (when MACHINE names the machine).")]
RouteOption = Annotated[
    list[str] | None,
    typer.Option(
        "--route",
        help="VERSION=WEIGHT, once or twice: weights 0-100 summing to 100 (one --route VERSION: all of it).",
    ),
]
DescriptionOption = Annotated[
    str | None, typer.Option("--description", help="Alias description (up to 256 characters).")
]


@alias_app.command("create")
def alias_create_cmd(
    machine: AliasArg,
    alias: AliasNameArg = None,
    route: RouteOption = None,
    description: DescriptionOption = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the CreateStateMachineAlias response.")
    ] = False,
    home: HomeOption = None,
) -> None:
    """Create an alias routing to one or two published versions.

    E.g. `sconeflow sfn alias create scones PROD --route 2=90 --route 1=10`."""
    service = _service(settings_for(home))
    arn = _alias_arn(service, machine, alias)
    machine_arn, _, name = arn.rpartition(":")
    routing = _parse_routes(machine_arn, route)
    if routing is None:
        raise UsageProblem("give --route VERSION=WEIGHT (once or twice), e.g. --route 1=100")
    record, created = service.create_alias(name, routing, description)
    if as_json:
        print(json.dumps({"stateMachineAliasArn": record.arn, "creationDate": _epoch(record.created)}))
        return
    if created:
        console.print(
            f"[green]created[/] alias {record.arn}: {_routing_text(record.routing)}", soft_wrap=True
        )
    else:
        console.print(
            f"alias {record.arn} already exists as given: {_routing_text(record.routing)}", soft_wrap=True
        )


@alias_app.command("update")
def alias_update_cmd(
    machine: AliasArg,
    alias: AliasNameArg = None,
    route: RouteOption = None,
    description: DescriptionOption = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the UpdateStateMachineAlias response.")
    ] = False,
    home: HomeOption = None,
) -> None:
    """Change an alias's routing (--route, replacing all of it) and/or its --description."""
    service = _service(settings_for(home))
    arn = _alias_arn(service, machine, alias)
    if route is None and description is None:
        raise UsageProblem("nothing to change: give --route VERSION=WEIGHT and/or --description")
    record = service.update_alias(
        arn, description=description, routing=_parse_routes(arn.rpartition(":")[0], route)
    )
    if as_json:
        print(json.dumps({"updateDate": _epoch(record.updated)}))
        return
    console.print(f"[green]updated[/] alias {record.arn}: {_routing_text(record.routing)}", soft_wrap=True)


@alias_app.command("describe")
def alias_describe_cmd(
    machine: AliasArg,
    alias: AliasNameArg = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the DescribeStateMachineAlias response.")
    ] = False,
    home: HomeOption = None,
) -> None:
    """Show an alias: its routing (versions and weights), description and dates."""
    from sconeflow.stepfunctions.responses import alias_shape

    service = _service(settings_for(home))
    record = service.describe_alias(_alias_arn(service, machine, alias))
    if as_json:
        print(json.dumps(alias_shape(record), indent=2))
        return
    _print_alias(record)


@alias_app.command("delete")
def alias_delete_cmd(
    machine: AliasArg,
    alias: AliasNameArg = None,
    home: HomeOption = None,
) -> None:
    """Delete an alias (its versions and the executions started through it stay)."""
    from sconeflow.stepfunctions.service import ResourceNotFound

    service = _service(settings_for(home))
    arn = _alias_arn(service, machine, alias)
    try:
        service.describe_alias(arn)
    except ResourceNotFound:
        # as DeleteStateMachineAlias: an alias that does not exist is no error
        console.print(f"no alias {arn}: nothing deleted", soft_wrap=True)
        return
    service.delete_alias(arn)
    console.print(f"deleted alias {arn}", soft_wrap=True)


@alias_app.command("list")
def alias_list_cmd(
    machine: Annotated[
        str,
        typer.Argument(help="State machine name or ARN; NAME:VERSION lists the aliases routing to it."),
    ],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the ListStateMachineAliases response.")
    ] = False,
    home: HomeOption = None,
) -> None:
    """List a state machine's aliases, oldest first, with their routing."""
    from sconeflow.stepfunctions.service import alias_arn_of

    service = _service(settings_for(home))
    target = _qualified(service, machine)
    if alias_arn_of(target) is not None:
        raise UsageProblem(f"{machine!r} is an alias: `sconeflow sfn alias describe {machine}` shows it")
    if not _is_qualified(target):  # a name: the service filters by anything but the machine's ARN
        target = service.describe_state_machine(target).arn
    aliases = service.list_aliases(target)
    if as_json:
        items = [{"stateMachineAliasArn": a.arn, "creationDate": _epoch(a.created)} for a in aliases]
        print(json.dumps({"stateMachineAliases": items}, indent=2))
        return
    table = Table(title=f"aliases of {machine}")
    for column in ("name", "routing", "description", "updated", "arn"):
        table.add_column(column, overflow="fold")
    for a in aliases:
        table.add_row(a.name, _routing_text(a.routing), a.description or "", _fmt_time(a.updated), a.arn)
    console.print(table)


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
