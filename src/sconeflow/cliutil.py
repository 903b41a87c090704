"""Shared pieces of the command-line interface: the --home option, settings, console, progress bars.

Stage modules register their commands with ``register(app)`` and import only light modules at import
time (heavy ones such as torch inside the command), so ``sconeflow --help`` stays fast.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from sconeflow.config import Settings, load_settings

console = Console()
err_console = Console(stderr=True)

HomeOption = Annotated[
    Path | None,
    typer.Option(
        "--home", help="sconeflow home (buckets, database, logs). Env: SCONEFLOW_HOME.", show_default=False
    ),
]


def settings_for(home: Path | None = None) -> Settings:
    """Settings for a command: its own --home, else the root --home / SCONEFLOW_HOME, else ~/.sconeflow."""
    settings = load_settings(home if home else os.environ.get("SCONEFLOW_HOME") or None)
    settings.ensure_dirs()
    return settings


def progress(transient: bool = False) -> Progress:
    """The standard progress bar for anything that takes over a second."""
    return Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=transient,
        disable=not err_console.is_terminal and os.environ.get("SCONEFLOW_PROGRESS") != "1",
    )


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Inside the block, ``kill <pid>`` (SIGTERM) raises KeyboardInterrupt as Ctrl-C does, so a command
    undoes or records its work (a prepare's writes, a training job marked Stopped) instead of dying
    at once. Only the main thread can set signal handlers; elsewhere the block runs unchanged."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
