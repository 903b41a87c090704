"""Model Monitor data capture: SageMaker's JSON Lines records, written by a background thread.

Record layout (byte-compatible with the AWS-recorded files, see ``aws-contracts.md`` 1.1)::

    {"captureData":{"endpointInput":{"observedContentType":..,"mode":"INPUT","data":..,"encoding":..},
     "endpointOutput":{...,"mode":"OUTPUT",...}},"eventMetadata":{"eventId":..,"inferenceTime":..},
     "eventVersion":"0"}

Files go to ``<dest>/<endpoint>/AllTraffic/yyyy/mm/dd/hh/<mm-ss-mmm-uuid4>.jsonl``: a file is named
after the moment it was opened and collects records for ``roll_seconds`` (60 s, as SageMaker's files do;
also rolled at ``roll_bytes`` so that a busy endpoint never holds a huge file in memory).

The request path only appends a small tuple to a bounded queue (``offer``); it never blocks and never
touches the store. When the queue is full the record is dropped and counted. The writer thread builds
the lines, and publishes the open file to the store every ``flush_seconds`` (whole lines only: each
publish is one atomic ``put_object`` of the complete file so far) and when it rolls. ``close()``
drains the queue and publishes everything accepted.
"""

from __future__ import annotations

import base64
import functools
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any, NamedTuple

from sconeflow.endpoint.errors import InvalidCaptureConfig
from sconeflow.endpoint.ids import new_uuid4
from sconeflow.endpoint.models import VARIANT_NAME, DataCaptureConfig
from sconeflow.store import (
    InvalidBucketName,
    InvalidKey,
    ObjectStore,
    parse_object_uri,
    validate_bucket_name,
    validate_key,
)

try:
    from pybase64 import b64encode as _b64  # SIMD: ~10x the standard library's speed on a 3 KB PNG
except ImportError:  # optional: the same bytes, only slower
    _b64 = base64.b64encode

log = logging.getLogger(__name__)

DEFAULT_QUEUE_SIZE = 20_000
# The writer wakes at most this often: waking per request made it compete for the GIL with the event
# loop and the inference thread on every request (capture cost 12-20% of throughput in the bench).
DEFAULT_COLLECT_SECONDS = 0.05
DEFAULT_ROLL_SECONDS = 60.0
DEFAULT_ROLL_BYTES = 1024 * 1024  # each publish rewrites (and hashes) the open file: keep that burst small
DEFAULT_FLUSH_SECONDS = 2.0


class CaptureEvent(NamedTuple):
    """What the request path hands to the writer (a tuple: cheap to build, no encoding yet)."""

    input_body: bytes
    input_content_type: str
    output_body: bytes
    output_content_type: str
    event_id: str | None  # None: the writer assigns a fresh UUID4 (off the request path)
    inference_time: float  # epoch seconds
    inference_id: str | None = None


def encoding_for(content_type: str, config: DataCaptureConfig) -> str:
    """``JSON``/``CSV`` when the media type is listed in CaptureContentTypeHeader, else ``BASE64``."""
    return _encoding(content_type, config.json_content_types, config.csv_content_types)


@functools.lru_cache(maxsize=256)
def _encoding(content_type: str, json_types: tuple[str, ...], csv_types: tuple[str, ...]) -> str:
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind in (t.lower() for t in json_types):
        return "JSON"
    if kind in (t.lower() for t in csv_types):
        return "CSV"
    return "BASE64"


def _payload(body: bytes, content_type: str, mode: str, config: DataCaptureConfig) -> dict[str, str]:
    encoding = encoding_for(content_type, config)
    if encoding != "BASE64":
        try:
            data = body.decode("utf-8")
        except UnicodeDecodeError:
            encoding = "BASE64"
    if encoding == "BASE64":
        data = base64.b64encode(body).decode("ascii")
    return {"observedContentType": content_type, "mode": mode, "data": data, "encoding": encoding}


_last_second: tuple[int, str] = (-1, "")  # replaced whole, so concurrent writers never mix two seconds


def format_inference_time(epoch: float) -> str:
    """Whole-second UTC, ``YYYY-MM-DDTHH:MM:SSZ`` (real capture files carry no milliseconds)."""
    global _last_second
    second = int(epoch)
    cached = _last_second
    if cached[0] == second:  # one strftime per second, not per record
        return cached[1]
    text = datetime.fromtimestamp(second, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    _last_second = (second, text)
    return text


def build_record(event: CaptureEvent, config: DataCaptureConfig) -> dict[str, Any]:
    capture: dict[str, Any] = {}
    if config.capture_input:
        capture["endpointInput"] = _payload(event.input_body, event.input_content_type, "INPUT", config)
    if config.capture_output:
        capture["endpointOutput"] = _payload(event.output_body, event.output_content_type, "OUTPUT", config)
    metadata: dict[str, str] = {"eventId": event.event_id or new_uuid4()}
    if event.inference_id:
        metadata["inferenceId"] = event.inference_id
    metadata["inferenceTime"] = format_inference_time(event.inference_time)
    return {"captureData": capture, "eventMetadata": metadata, "eventVersion": "0"}


_quote = json.encoder.encode_basestring_ascii  # json.dumps of one str (C), as the compact encoder writes it


@functools.lru_cache(maxsize=256)  # content types come from clients: the cache stays bounded
def _payload_frame(content_type: str, mode: str, encoding: str) -> tuple[bytes, bytes]:
    """The bytes around a payload's data for one content type, mode and encoding (cached: few exist)."""
    return (
        f'{{"observedContentType":{_quote(content_type)},"mode":"{mode}","data":'.encode("ascii"),
        f',"encoding":"{encoding}"}}'.encode("ascii"),
    )


def _payload_bytes(body: bytes, content_type: str, mode: str, config: DataCaptureConfig) -> list[bytes]:
    encoding = encoding_for(content_type, config)
    if encoding != "BASE64":
        try:
            data = _quote(body.decode("utf-8")).encode("ascii")
        except UnicodeDecodeError:
            encoding = "BASE64"
    if encoding == "BASE64":  # the base64 alphabet never needs escaping in JSON
        data = b'"' + _b64(body) + b'"'
    head, tail = _payload_frame(content_type, mode, encoding)
    return [head, data, tail]


def record_line(event: CaptureEvent, config: DataCaptureConfig) -> bytes:
    """One record as SageMaker writes it: compact JSON, one line, ``\\n``-terminated.

    The same bytes as ``json.dumps(build_record(...), separators=(",", ":"))`` (a test holds them
    equal), assembled from bytes instead of encoding a nested dict: the writer's CPU per record is
    mostly the base64 of the input.
    """
    parts = [b'{"captureData":{']
    if config.capture_input:
        parts.append(b'"endpointInput":')
        parts += _payload_bytes(event.input_body, event.input_content_type, "INPUT", config)
    if config.capture_output:
        parts.append(b',"endpointOutput":' if config.capture_input else b'"endpointOutput":')
        parts += _payload_bytes(event.output_body, event.output_content_type, "OUTPUT", config)
    event_id = event.event_id or new_uuid4()
    inference = f',"inferenceId":{_quote(event.inference_id)}' if event.inference_id else ""
    parts.append(
        f'}},"eventMetadata":{{"eventId":{_quote(event_id)}{inference},'
        f'"inferenceTime":"{format_inference_time(event.inference_time)}"}},"eventVersion":"0"}}\n'.encode(
            "ascii"
        )
    )
    return b"".join(parts)


def capture_file_key(prefix: str, endpoint: str, opened: float, variant: str = VARIANT_NAME) -> str:
    """``<prefix>/<endpoint>/<variant>/yyyy/mm/dd/hh/<mm-ss-mmm-uuid4>.jsonl`` for a file opened then."""
    moment = datetime.fromtimestamp(opened, tz=UTC)
    millis = moment.microsecond // 1000
    name = f"{moment:%M-%S}-{millis:03d}-{new_uuid4()}.jsonl"
    parts = [p for p in (prefix.strip("/"), endpoint, variant, f"{moment:%Y/%m/%d/%H}", name) if p]
    return "/".join(parts)


def parse_destination(uri: str, default_bucket: str) -> tuple[str, str]:
    """``s3://bucket/prefix`` (or ``bucket/prefix``) -> (bucket, prefix) in the store."""
    text = uri.strip()
    if text.startswith(("https://", "file://")):
        raise InvalidCaptureConfig(f"capture destination {uri!r}: use s3://bucket/prefix (in the store)")
    bucket, prefix = parse_object_uri(text, default_bucket)
    if not bucket:
        raise InvalidCaptureConfig(f"capture destination {uri!r} names no bucket")
    prefix = prefix.strip("/")
    try:  # refused here, at deploy/update: in the writer every record would be lost, only logged
        validate_bucket_name(bucket)
        validate_key(f"{prefix}/endpoint/AllTraffic/capture.jsonl" if prefix else "capture.jsonl")
    except (InvalidBucketName, InvalidKey) as exc:
        raise InvalidCaptureConfig(f"capture destination {uri!r}: {exc}") from None
    return bucket, prefix


def read_capture_lines(lines: Iterable[bytes | str]) -> Iterator[dict[str, Any]]:
    """Parse capture JSON Lines (ours or AWS's) into records; blank lines are skipped."""
    for line in lines:
        text = line.decode("utf-8") if isinstance(line, bytes) else line
        if text.strip():
            yield json.loads(text)


class _OpenFile:
    def __init__(self, key: str, opened: float) -> None:
        self.key = key
        self.opened = opened
        self.chunks: list[bytes] = []
        self.size = 0
        self.records = 0
        self.published_records = 0
        self.last_publish = opened

    @property
    def dirty(self) -> bool:
        return self.records != self.published_records


class CaptureWriter:
    """A background writer of capture records for one endpoint (thread-safe ``offer``)."""

    def __init__(
        self,
        store: ObjectStore,
        endpoint: str,
        config: DataCaptureConfig,
        *,
        default_bucket: str,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        roll_seconds: float = DEFAULT_ROLL_SECONDS,
        roll_bytes: int = DEFAULT_ROLL_BYTES,
        flush_seconds: float = DEFAULT_FLUSH_SECONDS,
        collect_seconds: float = DEFAULT_COLLECT_SECONDS,
        clock: Any = time.time,
    ) -> None:
        self.store = store
        self.endpoint = endpoint
        self.config = config
        self.bucket, self.prefix = parse_destination(config.destination_s3_uri, default_bucket)
        self.roll_seconds = roll_seconds
        self.roll_bytes = roll_bytes
        self.flush_seconds = flush_seconds
        self.collect_seconds = collect_seconds
        self._clock = clock
        self.queue_size = queue_size
        # A deque, not a queue.Queue: appending is one C call with no lock or condition variable on the
        # request path; the writer polls it every ``collect_seconds`` while records flow and sleeps on
        # ``_wake`` (set by ``offer`` only when the writer said it is idle) otherwise.
        self._events: deque[CaptureEvent] = deque()
        self._wake = threading.Event()
        self._idle = False
        self._file: _OpenFile | None = None
        self._pending: list[_OpenFile] = []
        self._lock = threading.Lock()
        self.written = 0  # records published to the store
        self.dropped = 0  # records refused because the queue was full (or the writer closed)
        self.errors = 0  # failed store writes (records are kept and retried)
        self.files: list[str] = []
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=f"capture-{endpoint}", daemon=True)
        self._thread.start()

    # -- request path -------------------------------------------------------------------------
    def offer(self, event: CaptureEvent) -> bool:
        """Queue one record without blocking; False (and counted) when it had to be dropped."""
        if self._closed or len(self._events) >= self.queue_size:
            with self._lock:
                self.dropped += 1
            return False
        self._events.append(event)
        if self._idle:
            self._wake.set()
        return True

    @property
    def queued(self) -> int:
        return len(self._events)

    # -- writer thread ------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            self.ensure_bucket()
        except Exception as exc:
            log.warning("capture bucket %s could not be created: %s", self.bucket, exc)
        events = self._events
        while True:
            if not events:
                if self._closed:
                    break
                self._idle = True
                if not events:  # an offer between the check and the flag would otherwise wait a timeout
                    self._wake.wait(self._timeout())
                self._idle = False
                self._wake.clear()
                if not events:
                    self._maybe_flush()
                    continue
            if self.collect_seconds > 0 and not self._closed:
                time.sleep(self.collect_seconds)  # let records gather: one wake-up per burst
            popleft = events.popleft
            self._append_all([popleft() for _ in range(min(len(events), 4096))])
            self._maybe_flush()
        self._final_flush()

    def _timeout(self) -> float:
        if self._file is None:
            return 1.0
        now = self._clock()
        due = min(self._file.opened + self.roll_seconds, now + self.flush_seconds)
        return max(0.01, min(self.flush_seconds, due - now))

    def _append_all(self, events: list[CaptureEvent]) -> None:
        for event in events:
            try:
                line = record_line(event, self.config)
            except Exception:  # a record that cannot be built must not stop the writer
                log.exception("capture record could not be built; dropped")
                with self._lock:
                    self.dropped += 1
                continue
            now = event.inference_time  # files are named and rolled by their records' time
            current = self._file
            if current is not None and (
                now - current.opened >= self.roll_seconds
                or current.size >= self.roll_bytes
                or int(now // 3600) != int(current.opened // 3600)  # never straddle an hour folder
            ):
                self._retire(current)
                current = None
            if current is None:
                current = _OpenFile(capture_file_key(self.prefix, self.endpoint, now), now)
                self._file = current
                self.files.append(current.key)
            current.chunks.append(line)
            current.size += len(line)
            current.records += 1

    def _retire(self, current: _OpenFile) -> None:
        """Publish a finished file; one the store refused is kept and retried."""
        self._publish(current)
        if current.dirty:
            self._pending.append(current)
        if self._file is current:
            self._file = None

    def _maybe_flush(self) -> None:
        for pending in list(self._pending):
            self._publish(pending)
            if not pending.dirty:
                self._pending.remove(pending)
        current = self._file
        if current is None:
            return
        now = self._clock()
        if now - current.opened >= self.roll_seconds:
            self._retire(current)
        elif current.dirty and now - current.last_publish >= self.flush_seconds:
            self._publish(current)

    def _publish(self, current: _OpenFile) -> None:
        if not current.dirty:
            return
        try:
            self.store.put_object(  # the ETag (MD5, ~30% of this thread's CPU) is computed when listed
                self.bucket,
                current.key,
                b"".join(current.chunks),
                content_type="application/jsonl",
                defer_etag=True,
            )
        except Exception as exc:
            self.errors += 1
            log.warning("capture file s3://%s/%s could not be written: %s", self.bucket, current.key, exc)
            return
        with self._lock:
            self.written += current.records - current.published_records
        current.published_records = current.records
        current.last_publish = self._clock()

    def _final_flush(self) -> None:
        files = [*self._pending, *([self._file] if self._file is not None else [])]
        for current in files:
            for attempt in range(3):
                self._publish(current)
                if not current.dirty:
                    break
                time.sleep(0.2 * (attempt + 1))
            if current.dirty:
                log.error(
                    "capture file s3://%s/%s lost %d records",
                    self.bucket,
                    current.key,
                    current.records - current.published_records,
                )
        self._pending = []
        self._file = None

    def close(self, timeout: float = 20.0) -> None:
        """Stop accepting, write every accepted record, publish the open file. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self._wake.set()
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning("capture writer for %s did not finish within %.0fs", self.endpoint, timeout)

    def ensure_bucket(self) -> None:
        create = getattr(self.store, "create_bucket", None)
        if create is not None:
            create(self.bucket, exist_ok=True)
