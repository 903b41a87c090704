"""Background servers this home started (gateway, endpoints, schedules): start, find, stop.

Each running service has ``<home>/run/<name>.json`` with its PID, URL and log file. A service is a
``python -m sconeflow ...`` child in its own session, so it outlives the CLI command that started it
and can be found and stopped later by ``sconeflow down`` / ``sconeflow cleanup``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import sconeflow
from sconeflow.config import Settings
from sconeflow.errors import SconeflowError

log = logging.getLogger(__name__)


class ServiceError(SconeflowError):
    """A background server could not be started or stopped."""


@dataclass(frozen=True)
class ServiceRecord:
    name: str
    kind: str
    pid: int
    url: str
    log_path: str
    started_at: str

    @property
    def alive(self) -> bool:
        """Its process still runs: the PID is alive and was not handed to another process since."""
        return process_alive_since(self.pid, self.started_at)


def package_pythonpath() -> str:
    """PYTHONPATH that lets a child process import this very copy of sconeflow."""
    src = str(Path(sconeflow.__file__).resolve().parent.parent)
    current = os.environ.get("PYTHONPATH", "")
    return src if not current else src + os.pathsep + current


def child_env(settings: Settings, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = package_pythonpath()
    env["SCONEFLOW_HOME"] = str(settings.home)
    env.setdefault("PYTHONUNBUFFERED", "1")
    if extra:
        env.update(extra)
    return env


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child still "exists"; check /proc where available
    stat = Path(f"/proc/{pid}/stat")
    if stat.exists():
        with contextlib.suppress(OSError, IndexError):
            if stat.read_text().split(")")[-1].split()[0] == "Z":
                return False
    return True


# A run file is written after its process started, so a live process that started later than its run
# file got the PID afterwards: the service died without removing the file and the PID was reused (after a
# reboot, typically). The slack covers /proc's clock-tick rounding, not a real race: a PID is reused only
# after the whole PID space has been cycled through.
REUSED_PID_SLACK_S = 1.0


def process_start_time(pid: int) -> float | None:
    """When ``pid`` started, in seconds since the epoch (Linux /proc, to about 10 ms); None if unknown."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = int(fields[19])  # field 22, starttime: clock ticks since boot
        uptime = float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return time.time() - uptime + ticks / os.sysconf("SC_CLK_TCK")


def pid_reused(pid: int, recorded_at: str) -> bool:
    """True when the live process ``pid`` started after ``recorded_at`` (ISO time), i.e. it is not the
    process that was recorded then. False where that cannot be told (no /proc, unreadable time)."""
    started = process_start_time(pid)
    if started is None:
        return False
    try:
        recorded = datetime.fromisoformat(recorded_at).timestamp()
    except (TypeError, ValueError):
        return False
    return started > recorded + REUSED_PID_SLACK_S


def process_alive_since(pid: int, recorded_at: str) -> bool:
    """``pid`` runs the process that recorded it at ``recorded_at`` (ISO time): alive, and not a later
    process that was given the same PID (a run file, a training job or a demo run records its PID right
    after its process started)."""
    return pid_alive(pid) and not pid_reused(pid, recorded_at)


def _record_path(settings: Settings, name: str) -> Path:
    return settings.run_dir / f"{name}.json"


def write_record(settings: Settings, record: ServiceRecord) -> None:
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    path = _record_path(settings, record.name)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(record)))
    os.replace(tmp, path)


def read_record(settings: Settings, name: str) -> ServiceRecord | None:
    try:
        return ServiceRecord(**json.loads(_record_path(settings, name).read_text()))
    except (OSError, ValueError, TypeError):
        return None


def list_records(settings: Settings, kind: str | None = None) -> list[ServiceRecord]:
    if not settings.run_dir.is_dir():
        return []
    records = []
    for path in sorted(settings.run_dir.glob("*.json")):
        record = read_record(settings, path.stem)
        if record and (kind is None or record.kind == kind):
            records.append(record)
    return records


def remove_record(settings: Settings, name: str) -> None:
    _record_path(settings, name).unlink(missing_ok=True)


def wait_http_ok(url: str, timeout: float, *, pid: int | None = None) -> bool:
    """Poll ``url`` until it answers 200; False on timeout or when ``pid`` dies first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pid is not None and not pid_alive(pid):
            return False
        try:
            with urllib.request.urlopen(url, timeout=1.0) as response:
                if response.status == 200:
                    return True
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            pass
        time.sleep(0.05)
    return False


def start_service(
    settings: Settings,
    *,
    name: str,
    kind: str,
    args: list[str],
    url: str,
    health_url: str | None = None,
    timeout: float = 60.0,
    env: dict[str, str] | None = None,
) -> ServiceRecord:
    """Start ``python -m sconeflow <args>`` detached, wait until ``health_url`` answers 200."""
    existing = read_record(settings, name)
    if existing and existing.alive:
        raise ServiceError(f"service {name!r} is already running (pid {existing.pid}, {existing.url})")
    settings.logs_dir.mkdir(parents=True, exist_ok=True)
    log_path = settings.logs_dir / f"{name}.log"
    with log_path.open("ab") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "sconeflow", *args],
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=child_env(settings, env),
            start_new_session=True,
            close_fds=True,
        )
    record = ServiceRecord(
        name=name,
        kind=kind,
        pid=process.pid,
        url=url,
        log_path=str(log_path),
        started_at=datetime.now(UTC).isoformat(),
    )
    write_record(settings, record)
    if health_url and not wait_http_ok(health_url, timeout, pid=process.pid):
        tail = _tail(log_path)
        stop_pid(process.pid)
        with contextlib.suppress(ChildProcessError, OSError):
            process.wait(timeout=1)
        remove_record(settings, name)
        raise ServiceError(f"service {name!r} did not become healthy within {timeout:.0f}s; log tail: {tail}")
    return record


def stop_pid(pid: int, timeout: float = 10.0) -> bool:
    """SIGTERM, then SIGKILL after ``timeout``. True when the process is gone."""
    if not pid_alive(pid):
        return True
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, os.WNOHANG)
        if not pid_alive(pid):
            return True
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    time.sleep(0.1)
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)
    return not pid_alive(pid)


def stop_service(settings: Settings, name: str, timeout: float = 10.0) -> bool:
    """Stop a service by name; True if it was running. Safe to call twice.

    A run file whose PID now belongs to another process (see :func:`pid_reused`) is removed without
    signalling that process.
    """
    record = read_record(settings, name)
    if record is None:
        return False
    was_alive = record.alive
    if was_alive:
        stop_pid(record.pid, timeout)
    elif pid_alive(record.pid):
        log.warning(
            "run file of %s named pid %d, which now belongs to a process started after it; not signalled",
            name,
            record.pid,
        )
    remove_record(settings, name)
    return was_alive


def _tail(path: Path, limit: int = 600) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return " ".join(text[-limit:].split())
