"""Download a file over HTTP(S) with progress, retries, resume (HTTP Range), checksum and a cache.

The file is downloaded to ``<cache>/<name>.part`` and renamed to ``<cache>/<name>`` only when
complete and (if an MD5 is given) verified, so a cached file is always whole. An interrupted
download resumes from the ``.part`` file with ``Range: bytes=<n>-``; a server that ignores the range
(answers 200) starts it over. A wrong checksum deletes the file and raises :class:`ChecksumMismatch`.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

from sconeflow.data.errors import ChecksumMismatch, DownloadError

log = logging.getLogger(__name__)

CIFAR100_URL = "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"
CIFAR100_MD5 = "eb9058c3a382ffc7106e4002c42a8d85"
_CHUNK = 1 << 16
DEFAULT_RETRIES = 5
DEFAULT_BACKOFF_S = 0.5

# progress(done_bytes, total_bytes_or_None)
ProgressFn = Callable[[int, int | None], None]


def md5_file(path: str | os.PathLike[str]) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def verify_md5(path: Path, expected: str | None) -> None:
    if expected is None:
        return
    actual = md5_file(path)
    if actual.lower() != expected.lower():
        raise ChecksumMismatch(f"{path.name} has MD5 {actual}, expected {expected.lower()}")


def _name_from_url(url: str) -> str:
    name = Path(urlparse(url).path).name
    return name or "download.bin"


def _fetch_once(url: str, part: Path, timeout: float, progress: ProgressFn | None) -> None:
    """One attempt: continue ``part`` from its current size. Raises on any transfer problem."""
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "sconeflow"})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # the part file is already complete (or longer than the file)
            return
        raise
    with response:
        status = response.status
        if have and status != 206:
            log.info("server ignored the Range request; restarting %s from zero", url)
            have = 0
        length = response.headers.get("Content-Length")
        total = have + int(length) if length is not None else None
        with open(part, "ab" if have else "wb") as out:
            done = have
            if progress:
                progress(done, total)
            while True:
                chunk = response.read(_CHUNK)
                if not chunk:
                    break
                out.write(chunk)
                done += len(chunk)
                if progress:
                    progress(done, total)
        if total is not None and done < total:
            raise http.client.IncompleteRead(b"", total - done)


def download(
    url: str,
    cache_dir: str | os.PathLike[str],
    *,
    md5: str | None = None,
    filename: str | None = None,
    retries: int | None = None,
    timeout: float = 30.0,
    backoff: float | None = None,
    progress: ProgressFn | None = None,
) -> Path:
    """Download ``url`` into ``cache_dir`` (or reuse a verified cached copy) and return its path."""
    retries = DEFAULT_RETRIES if retries is None else max(1, retries)
    backoff = DEFAULT_BACKOFF_S if backoff is None else backoff
    if urllib.parse.urlsplit(url).scheme not in ("http", "https", "ftp", "file"):
        raise DownloadError(f"cannot download {url!r}: not an http(s):// URL")
    cache = Path(cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    target = cache / (filename or _name_from_url(url))
    if target.is_file():
        try:
            verify_md5(target, md5)
            log.info("using cached %s", target)
            return target
        except ChecksumMismatch:
            log.warning("cached %s has a wrong checksum; downloading it again", target.name)
            target.unlink()
    part = target.with_name(target.name + ".part")
    last_error: BaseException | None = None
    for attempt in range(1, retries + 1):
        try:
            _fetch_once(url, part, timeout, progress)
            last_error = None
            break
        except urllib.error.HTTPError as exc:
            last_error = exc
            if 400 <= exc.code < 500 and exc.code not in (408, 429):
                break  # a client error will not go away by retrying
        except (TimeoutError, urllib.error.URLError, http.client.HTTPException, OSError) as exc:
            last_error = exc
        log.info("download attempt %d/%d of %s failed: %s", attempt, retries, url, last_error)
        if attempt < retries:
            time.sleep(backoff * 2 ** (attempt - 1))
    if last_error is not None:
        if isinstance(last_error, urllib.error.HTTPError):
            reason: object = f"HTTP {last_error.code} {last_error.reason}"
        else:
            reason = getattr(last_error, "reason", None) or last_error
        raise DownloadError(f"cannot download {url}: {reason}")
    try:
        verify_md5(part, md5)
    except ChecksumMismatch as exc:
        part.unlink(missing_ok=True)
        raise ChecksumMismatch(f"download of {url} is corrupt: {exc}") from None
    os.replace(part, target)
    return target
