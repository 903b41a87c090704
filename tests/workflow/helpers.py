"""Helpers of the workflow tests: run the CLI in a child process, find processes of a home."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from sconeflow.services import pid_alive


def run_cli(home: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``python -m sconeflow ARGS --home HOME`` in a child, as a user would run it."""
    env = dict(os.environ)
    env.update({"SCONEFLOW_HOME": str(home), "COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"})
    return subprocess.run(
        [sys.executable, "-m", "sconeflow", *args, "--home", str(home)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )


def run_file_pids(home: Path) -> dict[str, int]:
    """name -> PID of every run file under ``<home>/run``."""
    out = {}
    for path in sorted((home / "run").glob("*.json")):
        try:
            out[path.stem] = int(json.loads(path.read_text())["pid"])
        except (OSError, ValueError, KeyError):
            continue
    return out


def live_home_processes(home: Path) -> list[int]:
    """PIDs of live processes (not this one) whose environment names this SCONEFLOW_HOME."""
    marker = f"SCONEFLOW_HOME={home}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if marker in environ and pid_alive(int(entry.name)):
            found.append(int(entry.name))
    return found
