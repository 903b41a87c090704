"""Downloads against a local HTTP server: cache, checksum, resume after a dropped connection, errors."""

from __future__ import annotations

import hashlib
import os
import socket

import pytest

from sconeflow.data.download import download
from sconeflow.data.errors import ChecksumMismatch, DownloadError

PAYLOAD = os.urandom(300_000)
MD5 = hashlib.md5(PAYLOAD).hexdigest()


def test_download_verifies_and_caches(file_server, tmp_path):
    file_server.payload = PAYLOAD
    seen = []
    path = download(
        file_server.url, tmp_path, md5=MD5, progress=lambda done, total: seen.append((done, total))
    )
    assert path.read_bytes() == PAYLOAD and path.name == "cifar-100-python.tar.gz"
    assert seen[-1] == (len(PAYLOAD), len(PAYLOAD))
    assert not list(tmp_path.glob("*.part"))
    again = download(file_server.url, tmp_path, md5=MD5)
    assert again == path and len(file_server.requests) == 1  # served from the cache


def test_dropped_connection_resumes_with_a_range_request(file_server, tmp_path):
    file_server.payload = PAYLOAD
    file_server.drop_after = [100_000, 50_000]
    path = download(file_server.url, tmp_path, md5=MD5, backoff=0)
    assert path.read_bytes() == PAYLOAD
    ranges = [r.get("range") for r in file_server.requests]
    assert ranges == [None, "bytes=100000-", "bytes=150000-"]


def test_interrupted_part_file_is_resumed_by_a_later_call(file_server, tmp_path):
    file_server.payload = PAYLOAD
    (tmp_path / "cifar-100-python.tar.gz.part").write_bytes(PAYLOAD[:123_456])
    path = download(file_server.url, tmp_path, md5=MD5)
    assert path.read_bytes() == PAYLOAD
    assert [r.get("range") for r in file_server.requests] == ["bytes=123456-"]


def test_server_ignoring_range_restarts_from_zero(file_server, tmp_path):
    file_server.payload = PAYLOAD
    file_server.ignore_range = True
    (tmp_path / "cifar-100-python.tar.gz.part").write_bytes(b"garbage" * 100)
    assert download(file_server.url, tmp_path, md5=MD5).read_bytes() == PAYLOAD


def test_wrong_checksum_is_a_named_error_and_leaves_no_file(file_server, tmp_path):
    file_server.payload = PAYLOAD
    with pytest.raises(ChecksumMismatch, match="MD5"):
        download(file_server.url, tmp_path, md5="0" * 32)
    assert list(tmp_path.iterdir()) == []


def test_corrupt_cached_file_is_downloaded_again(file_server, tmp_path):
    file_server.payload = PAYLOAD
    (tmp_path / "cifar-100-python.tar.gz").write_bytes(b"stale")
    assert download(file_server.url, tmp_path, md5=MD5).read_bytes() == PAYLOAD


def test_unreachable_url_is_a_named_error(tmp_path):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(DownloadError, match="cannot download"):
        download(f"http://127.0.0.1:{port}/x.tar.gz", tmp_path, retries=2, backoff=0, timeout=2)
    assert not (tmp_path / "x.tar.gz").exists()


def test_http_404_is_not_retried(file_server, tmp_path):
    with pytest.raises(DownloadError, match="404"):
        download(f"http://127.0.0.1:{file_server.port}/missing.tar.gz", tmp_path, backoff=0)
    assert len(file_server.requests) == 1


def test_a_url_that_is_not_a_url_is_a_download_error(tmp_path):
    from sconeflow.data.download import DownloadError, download

    with pytest.raises(DownloadError, match="not an http"):
        download("cifar-100-python.tar.gz", tmp_path, retries=1)
