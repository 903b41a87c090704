"""``sconeflow cleanup [--all]``: stop what this home started, delete endpoints, optionally remove everything.

Without ``--all``: monitor schedules, endpoint servers (endpoints are deleted; captures stay), the gateway,
every other service with a run file, and any stray sconeflow process of this home (a Lambda worker or
execution runner whose parent died, a ``sconeflow traffic`` run) are stopped, and the executions still
RUNNING are stopped (``RunnerStopped``). With ``--all`` also: the workflow's objects in the bucket (data,
models, captures, monitoring, notifications, the traffic generator's uploads), the files ``sconeflow
demo`` wrote, the metadata database, logs, run files and caches; the home folder itself goes when nothing
else is left in it. Safe to run twice: the second run finds nothing and says so.

Only processes that are provably this home's are signalled: a run file whose PID now belongs to another
process (the service died and the PID was reused) is removed and reported, and that process is left alone.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

from sconeflow import services
from sconeflow.config import Settings
from sconeflow.db import DatabaseError

log = logging.getLogger(__name__)

# What the workflow writes into the bucket (data, models, captures, monitoring, SNS topic log, and the
# shifted images `sconeflow traffic --workflow` uploads for its executions: traffic/<run id>/...).
WORKFLOW_PREFIXES = (
    "train/",
    "test/",
    "train.lst",
    "test.lst",
    "classes.json",
    "models/",
    "data_capture/",
    "monitoring/",
    "sns-topics/",
    "traffic/",
)
# lambda-code: zips unpacked by `lambda register --zip` (sconeflow.lambda_runtime.deploy.code_root);
# reports: the PNGs `sconeflow evaluate` writes by default (<home>/reports/<model>-<split>.png)
HOME_ENTRIES = ("demo", "notebook", "logs", "run", "cache", "lambda-code", "reports")
DB_SUFFIXES = ("", "-wal", "-shm", "-journal")


@dataclass
class CleanupReport:
    stopped: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)  # endpoints
    removed: list[str] = field(default_factory=list)  # data, models, captures, files
    kept: list[str] = field(default_factory=list)  # things that were left alone, and why

    @property
    def nothing_done(self) -> bool:
        return not (self.stopped or self.deleted or self.removed)


def cleanup(settings: Settings, *, remove_all: bool = False) -> CleanupReport:
    """Stop and delete what this home started; with ``remove_all`` also remove its data and files."""
    report = CleanupReport()
    has_db = settings.db_path.exists()
    capture_prefixes: list[tuple[str, str]] = []
    demo_outputs: list[tuple[Path, list[str]]] = []
    _check_run_files(settings, report)  # before anything is signalled: never a reused PID
    if has_db:
        try:
            _stop_schedules(settings, report)
            capture_prefixes = _capture_destinations(settings)
            _delete_endpoints(settings, report)
            demo_outputs = _demo_outputs(settings)
        except DatabaseError as exc:  # unreadable: the run files and /proc still find what runs
            has_db = False
            report.kept.append(f"{exc}; endpoints, schedules and executions on record were not read")
    _stop_services(settings, report)
    _stop_strays(settings, report)
    if has_db:
        _stop_executions(settings, report)
    if remove_all:
        _remove_bucket_data(settings, capture_prefixes, report)
        _remove_demo_outputs(settings, demo_outputs, report)
        _remove_home_files(settings, report)
    return report


# -- which processes are this home's -----------------------------------------------------------

# interpreter options that take a separate value (``python -X dev -m sconeflow``)
_PYTHON_VALUE_OPTIONS = frozenset({"-X", "-W", "-Q"})


def _runs_sconeflow(argv: list[str]) -> bool:
    """True when ``argv`` runs sconeflow itself: the ``sconeflow`` script, or ``python -m sconeflow[.x]``.

    Not merely a command line that mentions sconeflow (``tail -f ~/.sconeflow/logs/gateway.log``, an
    editor on ``src/sconeflow/...``): such a process is never this home's to stop."""
    if not argv:
        return False
    program = Path(argv[0]).name
    if program == "sconeflow":
        return True
    if not program.startswith(("python", "pypy")):  # `less .../bin/sconeflow` runs no sconeflow
        return False
    args = iter(argv[1:])
    for arg in args:
        if arg == "-m":
            module = next(args, "")
        elif arg.startswith("-m") and not arg.startswith("--"):
            module = arg[2:]
        elif arg in _PYTHON_VALUE_OPTIONS:
            next(args, None)
            continue
        elif arg.startswith("-") and arg != "-":
            if arg == "-c":
                return False
            continue
        else:  # the script the interpreter runs (a console script: <venv>/bin/sconeflow)
            return Path(arg).name == "sconeflow"
        return module == "sconeflow" or module.startswith("sconeflow.")
    return False


def _home_arg(argv: list[str]) -> str | None:
    """The last ``--home`` of a sconeflow command line (a command's own comes after the root one)."""
    found = None
    for i, arg in enumerate(argv):
        if arg == "--home" and i + 1 < len(argv):
            found = argv[i + 1]
        elif arg.startswith("--home="):
            found = arg[len("--home=") :]
    return found


def _process_home(pid: int, argv: list[str], environ: dict[str, str]) -> Path | None:
    """The SCONEFLOW_HOME a sconeflow process uses, as ``load_settings`` would resolve it there."""
    value = _home_arg(argv) or environ.get("SCONEFLOW_HOME") or ""
    if not value:
        if not environ.get("HOME"):
            return None
        value = os.path.join(environ["HOME"], ".sconeflow")
    if value == "~" or value.startswith("~/"):
        if not environ.get("HOME"):
            return None
        value = environ["HOME"] + value[1:]
    if not os.path.isabs(value):
        try:
            value = os.path.join(os.readlink(f"/proc/{pid}/cwd"), value)
        except OSError:
            return None
    return Path(os.path.realpath(value))


def _read_process(pid: int) -> tuple[list[str], dict[str, str]] | None:
    """(argv, environment) of a live process (Linux /proc); None when it cannot be read."""
    try:
        raw_argv = Path(f"/proc/{pid}/cmdline").read_bytes()
        raw_env = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return None
    argv = [a.decode(errors="replace") for a in raw_argv.split(b"\0")]
    while argv and not argv[-1]:
        argv.pop()
    environ = {}
    for item in raw_env.split(b"\0"):
        name, sep, value = item.decode(errors="replace").partition("=")
        if sep:
            environ[name] = value
    return argv, environ


def _is_home_process(settings: Settings, pid: int) -> str | None:
    """The command line of ``pid`` if it is a sconeflow process of this home, else None."""
    read = _read_process(pid)
    if read is None:
        return None
    argv, environ = read
    if not _runs_sconeflow(argv) or _process_home(pid, argv, environ) != settings.home:
        return None
    return " ".join(argv)


def _record_is_ours(settings: Settings, record: services.ServiceRecord) -> bool:
    """Whether the live process a run file names is the one that wrote it (not a reused PID)."""
    if record.pid in _ancestors():
        return False  # this very process (an in-process gateway) or its parent: never signal ourselves
    if not Path("/proc").is_dir():
        return True  # no way to tell: trust the run file, as `sconeflow down` does
    if _is_home_process(settings, record.pid) is not None:
        return True
    if services.process_start_time(record.pid) is None:
        return False
    return not services.pid_reused(record.pid, record.started_at)


def _check_run_files(settings: Settings, report: CleanupReport) -> None:
    """Drop run files that no longer name this home's process, so nothing below signals that PID."""
    for record in services.list_records(settings):
        where = f"{settings.run_dir / (record.name + '.json')}"
        if not services.pid_alive(record.pid):
            services.remove_record(settings, record.name)
            report.removed.append(f"stale run file {where} ({record.kind}, pid {record.pid} had exited)")
        elif record.pid in _ancestors():
            services.remove_record(settings, record.name)
            report.kept.append(
                f"pid {record.pid} running: the {record.kind} {record.name} runs in this very process (or a "
                f"parent of it), which cleanup does not signal; removed {where} only"
            )
        elif not _record_is_ours(settings, record):
            services.remove_record(settings, record.name)
            command = _command_line(record.pid)
            report.kept.append(
                f"pid {record.pid} running: it is not the {record.kind} {record.name} its run file named "
                f"(the PID was reused{': ' + _short(command) if command else ''}); removed {where} only"
            )


def _command_line(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()


# -- stopping -----------------------------------------------------------------------------------


def _stop_schedules(settings: Settings, report: CleanupReport) -> None:
    from sconeflow.monitor.schedule import Schedules, service_name, stop_schedule

    for schedule in Schedules(settings).list():
        record = services.read_record(settings, service_name(schedule.name))
        running = record is not None and record.alive
        if running or schedule.status != "Stopped":
            stop_schedule(settings, schedule.name)
        if running:
            report.stopped.append(f"monitor schedule {schedule.name} (pid {record.pid})")  # type: ignore[union-attr]


def _capture_destinations(settings: Settings) -> list[tuple[str, str]]:
    """(bucket, prefix) of every endpoint's capture destination, read before the endpoints go."""
    from sconeflow.endpoint.registry import EndpointRegistry
    from sconeflow.errors import SconeflowError
    from sconeflow.store import parse_object_uri

    out = []
    registry = EndpointRegistry(settings)
    for name in registry.names():
        try:
            destination = registry.view(name).config.data_capture.destination_s3_uri
        except SconeflowError:
            continue
        if destination:
            bucket, prefix = parse_object_uri(destination, settings.bucket)
            if bucket:
                out.append((bucket, prefix.strip("/") + "/" if prefix.strip("/") else ""))
    return out


def _delete_endpoints(settings: Settings, report: CleanupReport) -> None:
    from sconeflow.endpoint.registry import EndpointRegistry, delete, service_name

    for name in EndpointRegistry(settings).names():
        record = services.read_record(settings, service_name(name))
        where = f", server pid {record.pid} stopped" if record is not None and record.alive else ""
        delete(settings, name)
        report.deleted.append(f"endpoint {name}{where}")


def _stop_services(settings: Settings, report: CleanupReport) -> None:
    from sconeflow.gateway.client import GATEWAY_SERVICE

    gateway = services.read_record(settings, GATEWAY_SERVICE)
    if gateway is not None and services.stop_service(settings, GATEWAY_SERVICE):
        report.stopped.append(f"gateway {gateway.url} (pid {gateway.pid})")
    for record in services.list_records(settings):
        if services.stop_service(settings, record.name):
            report.stopped.append(f"{record.kind} {record.name} (pid {record.pid})")


def _ancestors() -> set[int]:
    pids = {os.getpid()}
    pid = os.getppid()
    while pid > 1 and pid not in pids:
        pids.add(pid)
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            pid = int(stat.rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return pids


def home_processes(settings: Settings) -> list[tuple[int, str]]:
    """(pid, command line) of live sconeflow processes of this home (``--home`` or SCONEFLOW_HOME, Linux
    /proc): ``sconeflow ...`` / ``python -m sconeflow[.x] ...`` only, never this process or its parents."""
    proc = Path("/proc")
    if not proc.is_dir():
        return []
    skip = _ancestors()
    found = []
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) in skip:
            continue
        pid = int(entry.name)
        cmdline = _is_home_process(settings, pid)
        if cmdline is not None and services.pid_alive(pid):
            found.append((pid, cmdline))
    return found


def _stop_strays(settings: Settings, report: CleanupReport) -> None:
    strays = home_processes(settings)
    for pid, _ in strays:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 5.0
    for pid, cmdline in strays:
        while services.pid_alive(pid) and time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError, OSError):
                os.waitpid(pid, os.WNOHANG)
            time.sleep(0.05)
        if services.pid_alive(pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        report.stopped.append(f"stray process {pid} ({_short(cmdline)})")


def _stop_executions(settings: Settings, report: CleanupReport) -> None:
    """End the executions still RUNNING (their runners are stopped by now), as ``sconeflow down`` does."""
    from sconeflow.stepfunctions.service import StepFunctionsService

    service = StepFunctionsService(settings)
    # the store's list, not the service's: that one would first mark those whose runner just went RunnerDied
    for record in service.store.list_executions(status="RUNNING"):
        ended = service.stop_execution(
            record.arn, error="RunnerStopped", cause="Stopped by `sconeflow cleanup`."
        )
        if ended.status == "ABORTED":
            report.stopped.append(f"execution {record.arn}")


def _short(cmdline: str, limit: int = 80) -> str:
    text = cmdline.replace(os.sep.join(("", "usr", "bin", "")), "")
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- removing -----------------------------------------------------------------------------------


def _remove_bucket_data(
    settings: Settings, capture_prefixes: list[tuple[str, str]], report: CleanupReport
) -> None:
    from sconeflow.store import NoSuchBucket, StoreError, open_store

    if not settings.store_uri and not settings.buckets_dir.is_dir():
        return  # a local store that was never used (opening it would create it)
    store = open_store(settings.resolved_store_uri)
    targets: dict[str, list[str]] = {settings.bucket: list(WORKFLOW_PREFIXES)}
    for bucket, prefix in capture_prefixes:
        if prefix:  # never a whole foreign bucket
            targets.setdefault(bucket, []).append(prefix)
    for bucket, prefixes in targets.items():
        try:
            if not store.bucket_exists(bucket):
                continue
            for prefix in dict.fromkeys(prefixes):
                keys = [
                    info.key
                    for info in store.iter_objects(bucket, prefix)
                    if prefix.endswith("/") or info.key == prefix
                ]
                for key in keys:
                    store.delete_object(bucket, key)
                if keys:
                    what = f"{len(keys)} object(s)" if prefix.endswith("/") else "1 object"
                    report.removed.append(f"s3://{bucket}/{prefix} ({what})")
            left = sum(1 for _ in store.iter_objects(bucket, ""))
            if left:
                report.kept.append(f"s3://{bucket}: {left} object(s) the workflow did not write")
            elif bucket == settings.bucket:
                store.delete_bucket(bucket)
                report.removed.append(f"bucket {bucket}")
        except NoSuchBucket:
            continue
        except StoreError as exc:
            report.kept.append(f"s3://{bucket}: {exc}")


def _demo_outputs(settings: Settings) -> list[tuple[Path, list[str]]]:
    from sconeflow.workflow.runs import DemoRuns

    out = []
    for run in DemoRuns(settings).list():
        out.append((Path(run.output_dir), list(run.summary.get("files", []))))
    return out


def _remove_demo_outputs(
    settings: Settings, outputs: list[tuple[Path, list[str]]], report: CleanupReport
) -> None:
    """Files the demo wrote outside the home (a custom --output-dir); the home's own go with the home."""
    for directory, files in outputs:
        if directory.is_relative_to(settings.home):
            continue
        count = 0
        for name in files:
            path = Path(name)
            if path.is_relative_to(directory) and path.is_file():
                path.unlink()
                count += 1
        for sub in (
            sorted((p for p in directory.rglob("*") if p.is_dir()), reverse=True)
            if directory.is_dir()
            else []
        ):
            with contextlib.suppress(OSError):
                sub.rmdir()
        with contextlib.suppress(OSError):
            directory.rmdir()
        if count:
            report.removed.append(f"{directory} ({count} demo file(s))")


def _tree_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _human(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def _remove_home_files(settings: Settings, report: CleanupReport) -> None:
    home = settings.home
    for name in HOME_ENTRIES:
        path = home / name
        if not path.is_dir():
            continue
        files = sum(1 for p in path.rglob("*") if not p.is_dir())
        size = _tree_size(path)
        shutil.rmtree(path)
        if files:
            report.removed.append(f"{path} ({files} file(s), {_human(size)})")
    db_files = [Path(str(settings.db_path) + suffix) for suffix in DB_SUFFIXES]
    existing = [p for p in db_files if p.exists()]
    if existing:
        size = sum(p.stat().st_size for p in existing)
        for path in existing:
            path.unlink()
        report.removed.append(f"{settings.db_path} (metadata: jobs, endpoints, executions; {_human(size)})")
    buckets = settings.buckets_dir
    if buckets.is_dir() and not any(buckets.iterdir()):
        buckets.rmdir()
    if home.is_dir() and not any(home.iterdir()):
        home.rmdir()
    elif home.is_dir():
        left = sorted(p.name for p in home.iterdir())
        if left != [buckets.name]:  # the objects a bucket keeps are reported with the bucket
            report.kept.append(f"{home} (it still holds {', '.join(left)})")
