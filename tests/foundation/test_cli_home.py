"""Every command takes --home (issue 2), and bad local paths give one named line, not a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import typer

from sconeflow.cli import app


def _leaves(command, path: tuple[str, ...] = ()):
    """Yield (path, command) for every leaf command of the click tree Typer builds."""
    children = getattr(command, "commands", None)
    if children is None:
        yield path, command
        return
    for name, child in children.items():
        yield from _leaves(child, (*path, name))


def test_every_command_accepts_home():
    root = typer.main.get_command(app)
    leaves = list(_leaves(root))
    assert len(leaves) > 30, [" ".join(p) for p, _ in leaves]  # every stage registered its commands
    missing = [
        " ".join(path)
        for path, command in leaves
        # hidden internal commands (endpoint serve, monitor schedule-worker) are included on purpose:
        # they are started with --home by their parent process, so they must take it too
        if not any("--home" in getattr(param, "opts", ()) for param in command.params)
    ]
    assert missing == [], f"commands without --home: {missing}"


def _run(*args: str, home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "SCONEFLOW_HOME": str(home), "COLUMNS": "300"}
    return subprocess.run(
        [sys.executable, "-m", "sconeflow", *args], capture_output=True, text=True, timeout=60, env=env
    )


def test_unusable_paths_give_one_named_line(tmp_path):
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    cases = [
        ("info", "--home", str(a_file)),  # the home is a file
        ("data", "synthesize", str(a_file / "x.tar.gz")),  # the output's folder is a file
    ]
    for args in cases:
        result = _run(*args, home=tmp_path / "home")
        assert result.returncode != 0, args
        assert "Traceback" not in result.stderr, (args, result.stderr)
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and ": " in lines[0], (args, result.stderr)
        assert str(a_file) in lines[0], (args, lines[0])


def test_a_bad_log_level_is_a_usage_error(tmp_path):
    env_result = subprocess.run(
        [sys.executable, "-m", "sconeflow", "info", "--home", str(tmp_path)],
        capture_output=True, text=True, timeout=60,
        env={**os.environ, "SCONEFLOW_LOG_LEVEL": "loud", "COLUMNS": "200"},
    )  # fmt: skip
    assert env_result.returncode == 2 and "Traceback" not in env_result.stderr
    assert "--log-level" in env_result.stderr


def test_every_visible_command_and_option_has_help():
    root = typer.main.get_command(app)
    missing = []
    for path, command in _leaves(root):
        if command.hidden:
            continue
        if not (command.help or "").strip():
            missing.append(" ".join(path))
        for param in command.params:
            if param.param_type_name == "option" and not param.hidden and not (param.help or "").strip():
                missing.append(f"{' '.join(path)} {param.opts[0]}")
    assert missing == [], f"no help text: {missing}"
