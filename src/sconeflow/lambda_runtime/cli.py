"""``sconeflow lambda list|invoke|logs|package|register|update|delete``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from sconeflow.cliutil import HomeOption, console, err_console, settings_for
from sconeflow.config import Settings
from sconeflow.errors import SconeflowError

if TYPE_CHECKING:
    from sconeflow.lambda_runtime.registry import AliasConfig

lambda_app = typer.Typer(
    name="lambda",
    help="Local AWS Lambda: the three workflow functions (and yours) in warm worker processes.",
    no_args_is_help=True,
)


class PayloadError(SconeflowError):
    """The --payload argument cannot be read."""


class UsageProblem(SconeflowError):
    """A command-line argument cannot be used."""


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
    """List the registered functions ($LATEST) with their published versions and aliases."""
    from sconeflow.lambda_runtime.registry import FunctionRegistry
    from sconeflow.lambda_runtime.responses import function_configuration

    settings = settings_for(home)
    registry = FunctionRegistry(settings)
    functions = registry.list()
    if as_json:
        console.print_json(
            json.dumps({"Functions": [function_configuration(settings, f) for f in functions]})
        )
        return
    table = Table(title="Lambda functions")
    # whole function names (to copy into other commands) even on a narrow terminal; the rest folds
    table.add_column("name", no_wrap=True, min_width=max((len(f.name) for f in functions), default=4))
    for column in ("handler", "timeout", "memory", "concurrency", "environment", "versions", "aliases"):
        table.add_column(column, overflow="fold")
    for f in functions:
        env = ", ".join(f"{k}={v}" for k, v in f.environment.items())
        versions = _ranges([int(v.version) for v in registry.list_versions(f.name)[1:]])  # not $LATEST
        aliases = ", ".join(_alias_text(a) for a in registry.list_aliases(f.name))
        table.add_row(
            f.name,
            f.handler,
            f"{f.timeout}s",
            f"{f.memory_size} MB",
            str(f.concurrency),
            env,
            versions or "-",
            aliases or "-",
        )
    console.print(table)


def _ranges(numbers: list[int]) -> str:
    """``[1, 2, 3, 5]`` -> ``1-3, 5`` (published versions, ascending)."""
    spans: list[list[int]] = []
    for n in numbers:
        if spans and n == spans[-1][1] + 1:
            spans[-1][1] = n
        else:
            spans.append([n, n])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)


def _alias_text(alias: AliasConfig) -> str:
    return f"{alias.name} -> {_routing_text(alias)}"


def _routing_text(alias: AliasConfig) -> str:
    """``3`` or, for a weighted alias, ``3 (90%), 2 (10%)``."""
    if not alias.routing:
        return alias.function_version
    rest = 1.0 - sum(alias.routing.values())
    parts = [f"{alias.function_version} ({rest * 100:g}%)"]
    parts += [f"{version} ({weight * 100:g}%)" for version, weight in alias.routing.items()]
    return ", ".join(parts)


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
            f"{name}: {qualifier} is an alias; delete it with `sconeflow lambda alias delete {name}` "
            f"(`sconeflow lambda delete {function}` deletes the function)"
        )
    if qualifier is not None:
        registry.delete_version(function, qualifier)
        console.print(f"deleted version {qualifier} of {function}")
        return
    registry.delete(function)
    console.print(f"deleted {function}")


# -- versions and aliases ---------------------------------------------------------------------------

alias_app = typer.Typer(
    name="alias",
    help="Function aliases: a name (e.g. live) that points to $LATEST or a published version.",
    no_args_is_help=True,
)
lambda_app.add_typer(alias_app, name="alias")


def _function_only(settings: Settings, name: str, command: str) -> str:
    """The function ``name`` names (name or ARN); a qualifier other than $LATEST is a UsageProblem."""
    from sconeflow.lambda_runtime.registry import LATEST, parse_function_name

    function, qualifier = parse_function_name(name, settings=settings)
    if qualifier not in (None, LATEST):
        raise UsageProblem(
            f"{name}: `sconeflow lambda {command}` takes the function (name or ARN), not a version or alias"
        )
    return function


def _alias_ref(settings: Settings, name: str, alias: str | None) -> tuple[str, str]:
    """(function, alias) of NAME ALIAS, or of NAME alone given as ``name:alias`` or an alias ARN."""
    from sconeflow.lambda_runtime.registry import LATEST, parse_function_name

    function, qualifier = parse_function_name(name, settings=settings)
    if alias is None:
        if qualifier is None or qualifier == LATEST or qualifier.isdigit():
            raise UsageProblem(f"{name}: name the alias as NAME ALIAS, NAME:ALIAS or its ARN")
        return function, qualifier
    if qualifier is not None:
        raise UsageProblem(f"{name}: give the function without a qualifier when ALIAS is given ({alias})")
    return function, alias


def _print_alias(settings: Settings, alias: AliasConfig) -> None:
    from sconeflow.lambda_runtime.registry import function_arn

    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    table.add_row("alias", function_arn(settings, alias.function, alias.name))
    table.add_row("version", _routing_text(alias))
    table.add_row("description", alias.description)
    table.add_row("revision id", alias.revision_id)
    console.print(table)


@lambda_app.command()
def publish(
    name: Annotated[str, typer.Argument(help="Function name or ARN.")],
    description: Annotated[
        str | None, typer.Option("--description", help="Version description (default: the function's).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the PublishVersion response.")] = False,
    home: HomeOption = None,
) -> None:
    """Publish $LATEST as the next version (1, 2, ...); an unchanged $LATEST publishes nothing and
    answers the newest version (as PublishVersion does)."""
    from sconeflow.lambda_runtime.registry import FunctionRegistry
    from sconeflow.lambda_runtime.responses import function_configuration

    settings = settings_for(home)
    function = _function_only(settings, name, "publish")
    registry = FunctionRegistry(settings)
    before = {v.version for v in registry.list_versions(function)}
    published = registry.publish_version(function, description=description)
    if as_json:
        console.print_json(json.dumps(function_configuration(settings, published)))
        return
    arn = published.arn(settings, published.version)
    if published.version in before:
        console.print(
            f"{function} is unchanged since version {published.version} (nothing published): {arn}",
            soft_wrap=True,
        )
    else:
        console.print(f"[green]published[/] version {published.version} of {function}: {arn}", soft_wrap=True)


@lambda_app.command()
def versions(
    name: Annotated[str, typer.Argument(help="Function name or ARN.")],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the ListVersionsByFunction response.")
    ] = False,
    home: HomeOption = None,
) -> None:
    """List $LATEST and the published versions, with the aliases pointing to each."""
    from sconeflow.lambda_runtime.registry import FunctionRegistry
    from sconeflow.lambda_runtime.responses import function_configuration

    settings = settings_for(home)
    function = _function_only(settings, name, "versions")
    registry = FunctionRegistry(settings)
    configs = registry.list_versions(function)
    if as_json:
        items = [function_configuration(settings, v, v.version) for v in configs]
        console.print_json(json.dumps({"Versions": items}))
        return
    pointed: dict[str, list[str]] = {}
    for alias in registry.list_aliases(function):
        pointed.setdefault(alias.function_version, []).append(alias.name)
        for extra, weight in alias.routing.items():
            pointed.setdefault(extra, []).append(f"{alias.name} ({weight * 100:g}%)")
    table = Table(title=f"versions of {function}")
    for column in ("version", "description", "code sha256", "last modified", "aliases", "arn"):
        table.add_column(column, overflow="fold")
    for v in configs:
        table.add_row(
            v.version,
            v.description,
            v.code_facts()[0],
            v.last_modified,
            ", ".join(pointed.get(v.version, [])),
            v.arn(settings, v.version),
        )
    console.print(table)


FunctionArg = Annotated[
    str, typer.Argument(help="Function name or ARN (or NAME:ALIAS, or the alias ARN, alone).")
]
AliasNameArg = Annotated[str | None, typer.Argument(help="Alias name (when NAME names the function).")]
DescriptionOption = Annotated[str | None, typer.Option("--description", help="Alias description.")]
RouteOption = Annotated[
    str | None,
    typer.Option(
        "--route",
        help="VERSION=WEIGHT: also route this share of invocations to another published version "
        "(WEIGHT 0-1, e.g. 2=0.1, or a percentage, 2=10%); on update, --route none removes it.",
    ),
]


def _parse_route(route: str | None, *, allow_none: bool) -> dict[str, float] | None:
    """``--route VERSION=WEIGHT`` as RoutingConfig.AdditionalVersionWeights (None: not given)."""
    if route is None:
        return None
    if allow_none and route.strip().lower() in ("none", ""):
        return {}
    version, sep, weight_text = route.partition("=")
    version, weight_text = version.strip(), weight_text.strip()
    try:
        weight = float(weight_text[:-1]) / 100 if weight_text.endswith("%") else float(weight_text)
    except ValueError:
        weight = -1.0
    if not sep or not version.isdigit() or not 0 <= weight < 1:
        raise UsageProblem(
            f"--route {route!r}: use VERSION=WEIGHT with a published version number and a weight from 0 "
            "to below 1 (or a percentage below 100%), e.g. --route 2=0.1 or --route 2=10%"
            + ("; --route none removes the routing" if allow_none else "")
        )
    return {version: weight}


@alias_app.command("create")
def alias_create(
    name: FunctionArg,
    alias: AliasNameArg = None,
    version: Annotated[
        str | None, typer.Option("--version", help="The version it points to: a number or $LATEST.")
    ] = None,
    description: DescriptionOption = None,
    route: RouteOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the CreateAlias response.")] = False,
    home: HomeOption = None,
) -> None:
    """Create an alias pointing to a version (and, with --route, a share of the calls to another).

    E.g. `sconeflow lambda alias create classify_image live --version 2 --route 1=0.1`."""
    from sconeflow.lambda_runtime.registry import FunctionRegistry
    from sconeflow.lambda_runtime.responses import alias_configuration

    settings = settings_for(home)
    function, alias_name = _alias_ref(settings, name, alias)
    if version is None:
        raise UsageProblem("give --version: the version the alias points to (a number or $LATEST)")
    routing = _parse_route(route, allow_none=False)
    created = FunctionRegistry(settings).create_alias(
        function, alias_name, version, description or "", routing=routing
    )
    if as_json:
        console.print_json(json.dumps(alias_configuration(settings, created)))
        return
    console.print(
        f"[green]created[/] alias {alias_name} of {function} -> version {_routing_text(created)}",
        soft_wrap=True,
    )


@alias_app.command("update")
def alias_update(
    name: FunctionArg,
    alias: AliasNameArg = None,
    version: Annotated[
        str | None, typer.Option("--version", help="Point it to this version (a number or $LATEST).")
    ] = None,
    description: DescriptionOption = None,
    route: RouteOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the UpdateAlias response.")] = False,
    home: HomeOption = None,
) -> None:
    """Point an alias to another version (--version), change its weighted --route and/or its
    --description."""
    from sconeflow.lambda_runtime.registry import FunctionRegistry
    from sconeflow.lambda_runtime.responses import alias_configuration

    settings = settings_for(home)
    function, alias_name = _alias_ref(settings, name, alias)
    if version is None and description is None and route is None:
        raise UsageProblem("nothing to change: give --version, --route and/or --description")
    updated = FunctionRegistry(settings).update_alias(
        function,
        alias_name,
        function_version=version,
        description=description,
        routing=_parse_route(route, allow_none=True),
    )
    if as_json:
        console.print_json(json.dumps(alias_configuration(settings, updated)))
        return
    console.print(
        f"[green]updated[/] alias {alias_name} of {function} -> version {_routing_text(updated)}",
        soft_wrap=True,
    )


@alias_app.command("get")
def alias_get(
    name: FunctionArg,
    alias: AliasNameArg = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the GetAlias response.")] = False,
    home: HomeOption = None,
) -> None:
    """Show an alias: the version it points to, its description and RevisionId."""
    from sconeflow.lambda_runtime.registry import FunctionRegistry
    from sconeflow.lambda_runtime.responses import alias_configuration

    settings = settings_for(home)
    found = FunctionRegistry(settings).get_alias(*_alias_ref(settings, name, alias))
    if as_json:
        console.print_json(json.dumps(alias_configuration(settings, found)))
        return
    _print_alias(settings, found)


@alias_app.command("delete")
def alias_delete(name: FunctionArg, alias: AliasNameArg = None, home: HomeOption = None) -> None:
    """Delete an alias (the version it points to stays)."""
    from sconeflow.lambda_runtime.registry import FunctionRegistry

    settings = settings_for(home)
    function, alias_name = _alias_ref(settings, name, alias)
    FunctionRegistry(settings).delete_alias(function, alias_name)
    console.print(f"deleted alias {alias_name} of {function}", soft_wrap=True)


@alias_app.command("list")
def alias_list(
    name: Annotated[str, typer.Argument(help="Function name or ARN.")],
    version: Annotated[
        str | None, typer.Option("--version", help="Only the aliases pointing to this version.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the ListAliases response.")] = False,
    home: HomeOption = None,
) -> None:
    """List a function's aliases and the versions they point to."""
    from sconeflow.lambda_runtime.registry import FunctionRegistry, function_arn
    from sconeflow.lambda_runtime.responses import alias_configuration

    settings = settings_for(home)
    function = _function_only(settings, name, "alias list")
    aliases = FunctionRegistry(settings).list_aliases(function, version)
    if as_json:
        console.print_json(json.dumps({"Aliases": [alias_configuration(settings, a) for a in aliases]}))
        return
    table = Table(title=f"aliases of {function}")
    for column in ("name", "version", "description", "arn"):
        table.add_column(column, overflow="fold")
    for a in aliases:
        table.add_row(a.name, _routing_text(a), a.description, function_arn(settings, function, a.name))
    console.print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(lambda_app, name="lambda")
