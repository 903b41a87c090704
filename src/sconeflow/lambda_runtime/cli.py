"""``sconeflow lambda list|invoke|logs|package|register|update|delete``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from sconeflow.cliutil import HomeOption, console, err_console, settings_for
from sconeflow.errors import SconeflowError

lambda_app = typer.Typer(
    name="lambda",
    help="Local AWS Lambda: the three workflow functions (and yours) in warm worker processes.",
    no_args_is_help=True,
)


class PayloadError(SconeflowError):
    """The --payload argument cannot be read."""


def _read_payload(value: str | None) -> bytes:
    if value is None:
        return b"{}"
    if value == "-":
        return sys.stdin.buffer.read()
    if value.startswith("@"):
        path = Path(value[1:]).expanduser()
        try:
            return path.read_bytes()
        except OSError as exc:
            raise PayloadError(f"cannot read payload file {path}: {exc.strerror or exc}") from exc
    return value.encode("utf-8")


def _parse_env(pairs: list[str] | None) -> dict[str, str]:
    env: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise PayloadError(f"--env expects KEY=VALUE, got {pair!r}")
        env[key] = value
    return env


@lambda_app.command("list")
def list_functions(
    as_json: Annotated[bool, typer.Option("--json", help="Print the AWS ListFunctions shape.")] = False,
    home: HomeOption = None,
) -> None:
    """List the registered functions."""
    from sconeflow.lambda_runtime.registry import FunctionRegistry
    from sconeflow.lambda_runtime.responses import function_configuration

    settings = settings_for(home)
    functions = FunctionRegistry(settings).list()
    if as_json:
        console.print_json(
            json.dumps({"Functions": [function_configuration(settings, f) for f in functions]})
        )
        return
    table = Table(title="Lambda functions")
    # whole function names (to copy into other commands) even on a narrow terminal; the rest folds
    table.add_column("name", no_wrap=True, min_width=max((len(f.name) for f in functions), default=4))
    for column in ("handler", "timeout", "memory", "concurrency", "environment"):
        table.add_column(column, overflow="fold")
    for f in functions:
        env = ", ".join(f"{k}={v}" for k, v in f.environment.items())
        table.add_row(f.name, f.handler, f"{f.timeout}s", f"{f.memory_size} MB", str(f.concurrency), env)
    console.print(table)


@lambda_app.command()
def invoke(
    name: Annotated[str, typer.Argument(help="Function name, name:qualifier or ARN.")],
    payload: Annotated[
        str | None, typer.Option("--payload", "-p", help="JSON text, @file, or - for stdin (default {}).")
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write the response payload here.")] = None,
    invocation_type: Annotated[
        str, typer.Option("--invocation-type", help="RequestResponse, Event or DryRun.")
    ] = "RequestResponse",
    show_log: Annotated[
        bool, typer.Option("--log", help="Print the invocation's log (LogType Tail).")
    ] = False,
    home: HomeOption = None,
) -> None:
    """Invoke a function; the response payload goes to stdout (or --out), the status to stderr."""
    import base64

    from sconeflow.lambda_runtime.runtime import LambdaRuntime

    settings = settings_for(home)
    data = _read_payload(payload)
    with LambdaRuntime(settings) as runtime:
        result = runtime.invoke(name, data, invocation_type, log_type="Tail" if show_log else None)
    if show_log and result.log_result:
        err_console.print(
            base64.b64decode(result.log_result).decode("utf-8", "replace"),
            highlight=False,
            markup=False,
            end="",
        )
    if out is not None:
        out.write_bytes(result.payload)
    elif result.payload:
        sys.stdout.buffer.write(result.payload + b"\n")
        sys.stdout.flush()
    summary = {
        "StatusCode": result.status_code,
        "ExecutedVersion": result.executed_version,
        "RequestId": result.request_id,
    }
    if result.function_error:
        summary["FunctionError"] = result.function_error
        try:
            error = json.loads(result.payload)
            detail = f"{error.get('errorType')}: {error.get('errorMessage')}"
        except ValueError:
            detail = result.payload.decode("utf-8", "replace")
        err_console.print(
            f"[bold red]FunctionError[/] {result.function_error}: {detail}",
            highlight=False,
            markup=True,
            soft_wrap=True,
        )
        raise typer.Exit(1)
    err_console.print(json.dumps(summary), highlight=False, markup=False)


@lambda_app.command()
def logs(
    name: Annotated[str, typer.Argument(help="Function name.")],
    last: Annotated[int, typer.Option("--last", "-n", min=1, help="How many invocations to show.")] = 5,
    request_id: Annotated[str | None, typer.Option("--request-id", help="Only this invocation.")] = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new invocations.")] = False,
    follow_for: Annotated[float | None, typer.Option("--follow-for", hidden=True)] = None,
    home: HomeOption = None,
) -> None:
    """Show the logs of recent invocations (START / output / END / REPORT); --follow for new ones."""
    import time

    from sconeflow.lambda_runtime.logs import LogStore
    from sconeflow.lambda_runtime.registry import FunctionRegistry, parse_function_name

    settings = settings_for(home)
    function, _ = parse_function_name(name, settings=settings)
    FunctionRegistry(settings).get(function)
    store = LogStore(settings)
    offset = store.size(function)
    records = store.read(function, request_id=request_id, last=None if request_id else last)
    if not records and not follow:
        err_console.print(f"no invocations of {function} logged yet")
        return
    _print_logs(function, records)
    if not follow:
        return
    deadline = time.monotonic() + follow_for if follow_for is not None else None
    try:
        while deadline is None or time.monotonic() < deadline:
            time.sleep(0.25)
            records, offset = store.read_from(function, offset)
            _print_logs(function, [r for r in records if not request_id or r.request_id == request_id])
    except KeyboardInterrupt:
        pass


def _print_logs(function: str, records: list) -> None:  # type: ignore[type-arg]
    for record in records:
        console.print(
            f"[dim]{record.timestamp}  /aws/lambda/{function}  {record.log_stream}[/]",
            highlight=False,
            soft_wrap=True,
        )
        console.print(record.text, highlight=False, markup=False, end="", soft_wrap=True)


@lambda_app.command()
def package(
    name: Annotated[
        str, typer.Argument(help="Function name, name:version, name:alias or ARN (default $LATEST).")
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="Zip file to write.")] = Path("function.zip"),
    home: HomeOption = None,
) -> None:
    """Build the zip to upload to AWS Lambda (handler file(s) at the zip's root)."""
    from sconeflow.lambda_runtime.packaging import build_package
    from sconeflow.lambda_runtime.registry import FunctionRegistry, parse_function_name

    settings = settings_for(home)
    function, qualifier = parse_function_name(name, settings=settings)
    config = FunctionRegistry(settings).get(function, qualifier)
    names = build_package(config, output)
    console.print(
        f"wrote {output} ({output.stat().st_size} bytes): {', '.join(names)}; handler {config.handler}"
    )


EnvOption = Annotated[list[str] | None, typer.Option("--env", "-e", help="KEY=VALUE (repeatable).")]


@lambda_app.command("register")
def register_function(
    name: Annotated[str, typer.Argument(help="Function name.")],
    handler: Annotated[str, typer.Option("--handler", help="module.function")],
    code: Annotated[Path | None, typer.Option("--code", help="Folder holding the handler module.")] = None,
    zip_file: Annotated[
        Path | None,
        typer.Option("--zip", help="A deployment zip (as uploaded to AWS Lambda) instead of --code."),
    ] = None,
    env: EnvOption = None,
    timeout: Annotated[int, typer.Option("--timeout", help="Seconds (1-900).")] = 3,
    memory: Annotated[int, typer.Option("--memory", help="MB (128-10240).")] = 128,
    concurrency: Annotated[int, typer.Option("--concurrency", help="Most warm workers at once.")] = 4,
    description: Annotated[str, typer.Option("--description", help="Free text, as in CreateFunction.")] = "",
    replace: Annotated[bool, typer.Option("--replace", help="Replace an existing function.")] = False,
    home: HomeOption = None,
) -> None:
    """Register a function (code folder or zip + handler), like CreateFunction.

    Without --code/--zip the handler comes from the built-in handlers, e.g. register the classic name
    `serializeImageData` with `--handler serialize_image_data.lambda_handler`.
    """
    from sconeflow.lambda_runtime.registry import FunctionConfig, FunctionRegistry

    settings = settings_for(home)
    code_dir = str(code) if code else None
    if zip_file is not None:
        from sconeflow.lambda_runtime.deploy import unpack_zip
        from sconeflow.lambda_runtime.registry import parse_function_name

        if code is not None:
            raise PayloadError("give --code or --zip, not both")
        try:
            data = zip_file.read_bytes()
        except OSError as exc:
            raise PayloadError(f"cannot read {zip_file}: {exc.strerror or exc}") from exc
        code_dir = str(unpack_zip(settings, parse_function_name(name)[0], data))
    config = FunctionConfig(
        name=name,
        handler=handler,
        code_dir=code_dir,
        environment=_parse_env(env),
        timeout=timeout,
        memory_size=memory,
        concurrency=concurrency,
        description=description,
    )
    saved = FunctionRegistry(settings).register(config, replace_existing=replace)
    console.print(f"registered {saved.name} ({saved.handler}, {saved.code_path})")


@lambda_app.command()
def update(
    name: Annotated[str, typer.Argument(help="Function name or ARN ($LATEST: versions never change).")],
    env: EnvOption = None,
    unset_env: Annotated[list[str] | None, typer.Option("--unset-env", help="Remove a variable.")] = None,
    handler: Annotated[str | None, typer.Option("--handler", help="New handler: module.function.")] = None,
    code: Annotated[Path | None, typer.Option("--code", help="New code folder.")] = None,
    timeout: Annotated[int | None, typer.Option("--timeout", help="Seconds (1-900).")] = None,
    memory: Annotated[int | None, typer.Option("--memory", help="MB (128-10240).")] = None,
    concurrency: Annotated[
        int | None, typer.Option("--concurrency", help="Most warm workers at once.")
    ] = None,
    home: HomeOption = None,
) -> None:
    """Change a function's settings, e.g. `sconeflow lambda update classify_image --env ENDPOINT_NAME=...`."""
    from sconeflow.lambda_runtime.registry import LATEST, FunctionRegistry, parse_function_name

    settings = settings_for(home)
    function, qualifier = parse_function_name(name, settings=settings)
    if qualifier not in (None, LATEST):
        raise PayloadError(
            f"{name}: only $LATEST can be updated (a published version never changes); "
            f"update {function} and publish a new version"
        )
    saved = FunctionRegistry(settings).update(
        function,
        environment=_parse_env(env),
        unset_env=unset_env,
        handler=handler,
        code_dir=str(code) if code else None,
        timeout=timeout,
        memory_size=memory,
        concurrency=concurrency,
    )
    env_text = ", ".join(f"{k}={v}" for k, v in saved.environment.items()) or "(no variables)"
    console.print(
        f"updated {saved.name}: timeout {saved.timeout}s, memory {saved.memory_size} MB, {env_text}"
    )


@lambda_app.command()
def delete(
    name: Annotated[
        str,
        typer.Argument(help="Function name or ARN; name:VERSION (or a qualified ARN) deletes that version."),
    ],
    home: HomeOption = None,
) -> None:
    """Delete a function with its versions and aliases (its logs stay), or one published version."""
    from sconeflow.lambda_runtime.registry import LATEST, FunctionRegistry, parse_function_name

    settings = settings_for(home)
    function, qualifier = parse_function_name(name, settings=settings)
    registry = FunctionRegistry(settings)
    if qualifier == LATEST:
        raise PayloadError(
            f"{name}: $LATEST version cannot be deleted without deleting the function "
            f"(`sconeflow lambda delete {function}` deletes the function)"
        )
    if qualifier is not None and any(a.name == qualifier for a in registry.list_aliases(function)):
        raise PayloadError(
            f"{name}: {qualifier} is an alias; delete it with the Lambda API's DeleteAlias "
            f"(`sconeflow lambda delete {function}` deletes the function)"
        )
    if qualifier is not None:
        registry.delete_version(function, qualifier)
        console.print(f"deleted version {qualifier} of {function}")
        return
    registry.delete(function)
    console.print(f"deleted {function}")


def register(app: typer.Typer) -> None:
    app.add_typer(lambda_app, name="lambda")
