"""Every command's --help renders: the CLI uses Rich markup, so a bracket in a help text
(``s3://bucket[/prefix]``) is read as a tag and crashes the help screen unless escaped."""

from __future__ import annotations

from typing import Any

import click
import pytest
import typer
from typer.testing import CliRunner

from sconeflow.cli import app


def _command_paths() -> list[tuple[str, ...]]:
    root = typer.main.get_command(app)
    paths: list[tuple[str, ...]] = []

    def walk(command: Any, path: tuple[str, ...]) -> None:
        paths.append(path)
        if hasattr(command, "list_commands"):  # a group (typer's own, not always a click.Group)
            ctx = click.Context(command)
            for name in command.list_commands(ctx):  # the root group loads its stages lazily
                sub = command.get_command(ctx, name)
                if sub is not None:
                    walk(sub, (*path, name))

    walk(root, ())
    return paths


@pytest.mark.parametrize("path", _command_paths(), ids=lambda p: " ".join(p) or "sconeflow")
def test_help_renders(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "120"})
    assert result.exit_code == 0, f"{' '.join(path)} --help: {result.exception!r}\n{result.output}"
    assert "Usage:" in result.output
