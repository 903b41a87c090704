"""The ``sconeflow`` command line: a root Typer app that each stage registers its commands into."""

from __future__ import annotations

import importlib
import logging
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.logging import RichHandler
from rich.table import Table

from sconeflow import __version__
from sconeflow.cliutil import HomeOption, console, err_console, settings_for
from sconeflow.errors import SconeflowError

app = typer.Typer(
    name="sconeflow",
    help="The Scones Unlimited ML workflow on one machine: data, training, endpoint, Lambdas, "
    "Step Functions and monitoring, AWS-compatible.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)

# Each module exposes ``register(app: typer.Typer) -> None``. A module that is not there yet is skipped.
STAGE_MODULES = (
    "sconeflow.store_cli",
    "sconeflow.data.cli",
    "sconeflow.model.cli",
    "sconeflow.endpoint.cli",
    "sconeflow.lambda_runtime.cli",
    "sconeflow.gateway.cli",
    "sconeflow.stepfunctions.cli",
    "sconeflow.monitor.cli",
    "sconeflow.workflow.cli",
    "sconeflow.traffic.cli",
)


def _version(value: bool) -> None:
    if value:
        console.print(f"sconeflow {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    home: Annotated[
        Path | None,
        typer.Option("--home", help="sconeflow home (buckets, database, logs). Env: SCONEFLOW_HOME."),
    ] = None,
    log_level: Annotated[
        str, typer.Option("--log-level", envvar="SCONEFLOW_LOG_LEVEL", help="DEBUG, INFO, WARNING or ERROR.")
    ] = "WARNING",
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    if home:
        os.environ["SCONEFLOW_HOME"] = str(home.expanduser().resolve())
    if log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise typer.BadParameter(
            f"{log_level!r}: use DEBUG, INFO, WARNING or ERROR", param_hint="--log-level"
        )
    logging.basicConfig(
        level=log_level.upper(),
        format="%(message)s",
        handlers=[RichHandler(console=err_console, show_path=False, rich_tracebacks=False)],
        force=True,
    )


@app.command()
def info(home: HomeOption = None) -> None:
    """Print where everything lives (home, store, database, logs) and what is set up."""
    from sconeflow.db import Database

    settings = settings_for(home)
    table = Table(title=f"sconeflow {__version__}", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("where")
    table.add_row("home", str(settings.home))
    table.add_row("object store", settings.resolved_store_uri)
    table.add_row("default bucket", settings.bucket)
    table.add_row("metadata database", str(settings.db_path))
    table.add_row("logs", str(settings.logs_dir))
    table.add_row("run files", str(settings.run_dir))
    table.add_row("region / account", f"{settings.region} / {settings.account}")
    versions = Database(settings.db_path).schema_versions() if settings.db_path.exists() else {}
    table.add_row("schema", ", ".join(f"{k} v{v}" for k, v in sorted(versions.items())) or "(empty)")
    console.print(table)


def _register_stages() -> None:
    for module_name in STAGE_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and module_name.startswith(exc.name):
                continue
            raise
        module.register(app)


_register_stages()


def main() -> None:
    try:
        app()
    except SconeflowError as exc:
        err_console.print(f"[bold red]{exc.name}[/]: {exc}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err_console.print("[yellow]Interrupted.[/]")
        sys.exit(130)
    except OSError as exc:
        # A local path the user gave cannot be read or written (an output folder that is a file, a
        # read-only place, a full disk): one line like every named error, the traceback at DEBUG.
        if exc.filename is None or logging.getLogger().isEnabledFor(logging.DEBUG):
            raise
        err_console.print(
            f"[bold red]{type(exc).__name__}[/]: {_os_error_text(exc)}", highlight=False, soft_wrap=True
        )
        sys.exit(1)


def _os_error_text(exc: OSError) -> str:
    where = f"{exc.filename}" + (f" -> {exc.filename2}" if exc.filename2 else "")
    return f"{exc.strerror or exc}: {where}"
