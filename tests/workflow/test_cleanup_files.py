"""``sconeflow cleanup --all`` and the home's files: every folder sconeflow writes goes, what it does not
know is kept and named, and an unreadable metadata database does not stop it."""

from __future__ import annotations

from sconeflow import services
from sconeflow.services import pid_alive
from sconeflow.workflow.cleanup import cleanup
from tests.workflow.helpers import run_cli


def test_cleanup_all_removes_the_reports_of_sconeflow_evaluate(settings) -> None:
    # `sconeflow evaluate` writes its PNG to <home>/reports/<model>-<split>.png unless given --png
    reports = settings.home / "reports"
    reports.mkdir()
    (reports / "job-1-test.png").write_bytes(b"\x89PNG")

    report = cleanup(settings, remove_all=True)

    assert any(line.startswith(f"{reports} (1 file(s)") for line in report.removed), report.removed
    assert report.kept == []
    assert not settings.home.exists()


def test_cleanup_all_names_what_it_kept_in_the_home(settings) -> None:
    (settings.home / "my-notes.txt").write_text("mine")

    report = cleanup(settings, remove_all=True)

    assert report.kept == [f"{settings.home} (it still holds my-notes.txt)"]
    assert sorted(p.name for p in settings.home.iterdir()) == ["my-notes.txt"]


def test_cleanup_all_stops_and_removes_everything_even_with_an_unreadable_database(settings) -> None:
    from sconeflow.gateway.cli import start_background
    from sconeflow.gateway.client import GATEWAY_SERVICE

    start_background(settings, "127.0.0.1", 0)
    gateway = services.read_record(settings, GATEWAY_SERVICE)
    assert gateway is not None
    settings.db_path.write_bytes(b"this is not an SQLite database, it was overwritten " * 20)
    try:
        result = run_cli(settings.home, "cleanup", "--all", timeout=120)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "Traceback" not in result.stderr
        assert f"stopped gateway {gateway.url} (pid {gateway.pid})" in result.stdout
        assert f"removed {settings.db_path} (metadata" in result.stdout
        assert "kept cannot open metadata database" in result.stdout
        assert not pid_alive(gateway.pid)
        assert not settings.home.exists()
    finally:
        services.stop_pid(gateway.pid)
