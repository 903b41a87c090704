"""Fixtures every test package shares: an isolated SCONEFLOW_HOME, its store, and ../shared."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from sconeflow.config import Settings, load_settings
from sconeflow.store import LocalStore


def pytest_configure(config: pytest.Config) -> None:
    # A shell starts background jobs (``cmd &``, nohup in a script) with SIGINT ignored, and an ignored
    # signal is inherited across exec: the Ctrl-C tests' child CLIs would then never see their SIGINT.
    # A caught signal resets to the default on exec, so catching it here gives children the default.
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = REPO_ROOT.parent / "shared"
MINI_TARBALL = SHARED_DIR / "datasets" / "cifar-100-vehicles-mini.tar.gz"


@pytest.fixture
def shared_dir() -> Path:
    """``../shared`` beside the checkout; the test is skipped with a reason when it is absent."""
    if not SHARED_DIR.is_dir():
        pytest.skip(f"../shared is absent ({SHARED_DIR}); it holds the AWS-recorded fixtures and datasets")
    return SHARED_DIR


@pytest.fixture
def mini_tarball(shared_dir: Path) -> Path:
    if not MINI_TARBALL.is_file():
        pytest.skip(f"{MINI_TARBALL} is absent")
    return MINI_TARBALL


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """A fresh SCONEFLOW_HOME for one test (also exported, so child processes see it)."""
    home = tmp_path / "home"
    monkeypatch.setenv("SCONEFLOW_HOME", str(home))
    for name in ("SCONEFLOW_STORE", "SCONEFLOW_BUCKET", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    result = load_settings(home)
    result.ensure_dirs()
    return result


@pytest.fixture
def store(settings: Settings) -> LocalStore:
    return LocalStore(settings.buckets_dir)


def _processes_with_home_under(base: Path) -> list[int]:
    """PIDs of live processes whose SCONEFLOW_HOME lies under ``base`` (Linux /proc; else none)."""
    pids = []
    prefix = str(base)
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            environ = (proc / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        homes = [e[len(b"SCONEFLOW_HOME=") :] for e in environ if e.startswith(b"SCONEFLOW_HOME=")]
        if homes and homes[0].decode(errors="replace").startswith(prefix):
            pids.append(int(proc.name))
    return pids


@pytest.fixture(scope="session", autouse=True)
def _no_server_outlives_the_session(tmp_path_factory: pytest.TempPathFactory):
    """Background servers (endpoints, gateway, workers) are detached on purpose; a failing or
    interrupted test must still not leave one running after the test session."""
    base = tmp_path_factory.getbasetemp()
    yield
    from sconeflow.services import stop_pid

    leftovers = [pid for pid in _processes_with_home_under(base) if pid != os.getpid()]
    for pid in leftovers:
        stop_pid(pid, timeout=5)
