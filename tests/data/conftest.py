"""Data-stage fixtures: small synthetic CIFAR tarballs and a local HTTP server for downloads."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from sconeflow.data.synthetic import make_cifar_tarball


@pytest.fixture(scope="session")
def small_tarball(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two classes (bicycle, motorcycle), 12 train + 4 test rows each, 6 distractor rows per split."""
    path = tmp_path_factory.mktemp("cifar") / "cifar-100-python.tar.gz"
    return make_cifar_tarball(path, n_train=12, n_test=4, seed=1, distractors=6)


@dataclass
class FileServer:
    """A tiny HTTP server on 127.0.0.1 serving ``payload`` at ``/<name>`` (with Range support)."""

    payload: bytes = b""
    name: str = "cifar-100-python.tar.gz"
    drop_after: list[int] = field(default_factory=list)  # per request: close after N body bytes
    ignore_range: bool = False
    requests: list[dict[str, str]] = field(default_factory=list)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/{self.name}"


def _handler(server: FileServer) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            server.requests.append({k.lower(): v for k, v in self.headers.items()} | {"path": self.path})
            if self.path != f"/{server.name}":
                self.send_error(404)
                return
            body, start = server.payload, 0
            header = self.headers.get("Range")
            if header and not server.ignore_range:
                start = int(header.split("=")[1].split("-")[0])
                if start >= len(body):
                    self.send_response(416)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            else:
                self.send_response(200)
            chunk = body[start:]
            self.send_header("Content-Length", str(len(chunk)))
            self.send_header("Connection", "close")
            self.end_headers()
            if server.drop_after:
                limit = server.drop_after.pop(0)
                self.wfile.write(chunk[:limit])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(chunk)

    return Handler


@pytest.fixture
def file_server() -> Iterator[FileServer]:
    state = FileServer()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
