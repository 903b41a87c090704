"""The root CLI: --version, --help listing every group, info."""

from __future__ import annotations

import os
import subprocess
import sys

from typer.testing import CliRunner

from sconeflow import __version__
from sconeflow.cli import app

runner = CliRunner()


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"sconeflow {__version__}"


def test_help_lists_every_registered_group():
    result = runner.invoke(app, ["--help"], terminal_width=200)
    assert result.exit_code == 0
    groups = [c.name for c in app.registered_groups]
    assert {"store", "data"} <= set(groups)
    for name in [*groups, "info"]:
        assert name in result.stdout


def test_info_prints_where_everything_lives(settings):
    env = {**os.environ, "COLUMNS": "400"}
    result = subprocess.run(
        [sys.executable, "-m", "sconeflow", "info", "--home", str(settings.home)],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    for path in (settings.home, settings.buckets_dir, settings.db_path, settings.logs_dir):
        assert str(path) in result.stdout
    assert settings.bucket in result.stdout
