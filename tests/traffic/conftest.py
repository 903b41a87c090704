"""Fixtures of the traffic generator's tests: a REAL prepared test split (the data stage's
``prepare_dataset`` over a small synthetic CIFAR tarball) and a tiny real HTTP server speaking the
SageMaker Runtime ``InvokeEndpoint`` route, whose answers each test scripts (to get the malformed and
failing answers a healthy endpoint never gives)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from sconeflow.config import Settings
from sconeflow.store import LocalStore

CLASSES = ("bicycle", "motorcycle")
CLASSES_HEADER = json.dumps(list(CLASSES))


@dataclass(frozen=True)
class Answer:
    """One scripted answer: HTTP status, body, extra headers, and a delay before answering."""

    body: bytes
    status: int = 200
    headers: dict[str, str] = field(default_factory=lambda: {"X-Sconeflow-Classes": CLASSES_HEADER})
    delay: float = 0.0


def ok(probs: str = "[0.1, 0.9]", delay: float = 0.0) -> Answer:
    return Answer(probs.encode(), delay=delay)


def client_error(code: str = "ValidationError", delay: float = 0.0) -> Answer:
    """A 4xx the way the runtime API sends one (rest-json: the error type header and a message body)."""
    return Answer(
        json.dumps({"message": "scripted failure"}).encode(),
        status=400,
        headers={"x-amzn-ErrorType": code},
        delay=delay,
    )


class ScriptedEndpoint:
    """A real HTTP server on 127.0.0.1 answering ``POST /endpoints/<name>/invocations`` with the
    scripted answers in turn (cycling), counting the requests."""

    def __init__(self, name: str = "scripted") -> None:
        self.name = name
        self.answers: list[Answer] = [ok()]
        self.requests = 0
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                with outer._lock:
                    answer = outer.answers[outer.requests % len(outer.answers)]
                    outer.requests += 1
                if self.path != f"/endpoints/{outer.name}/invocations":
                    answer = Answer(b"{}", status=404, headers={"x-amzn-ErrorType": "NotFound"})
                time.sleep(answer.delay)
                self.send_response(answer.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer.body)))
                for key, value in answer.headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(answer.body)

            def log_message(self, format: str, *args: object) -> None:  # quiet
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def endpoint() -> Iterator[ScriptedEndpoint]:
    server = ScriptedEndpoint()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="package")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A home with a prepared dataset (test split of 2 x 3 images); returns (home, bucket)."""
    from sconeflow.config import load_settings
    from sconeflow.data.prepare import prepare_dataset
    from sconeflow.data.synthetic import make_cifar_tarball

    workdir = tmp_path_factory.mktemp("traffic-data")
    home = workdir / "home"
    settings = load_settings(home)
    settings.ensure_dirs()
    store = LocalStore(settings.buckets_dir)
    tarball = make_cifar_tarball(workdir / "synthetic.tar.gz", classes=CLASSES, n_train=4, n_test=3)
    prepare_dataset(settings, source=tarball, classes=list(CLASSES), store=store)
    return home, settings.bucket


@pytest.fixture
def pool_settings(prepared: tuple[Path, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    from sconeflow.config import load_settings

    home, _ = prepared
    monkeypatch.setenv("SCONEFLOW_HOME", str(home))
    return load_settings(home)
