"""Read SageMaker data-capture JSONL: from the object store, an ``s3://`` prefix or a local folder.

AWS writes ``<dest>/<endpoint>/<variant>/yyyy/mm/dd/hh/<mm-ss-mmm-uuid>.jsonl``, one compact JSON record
per line (see ``docs/aws-contracts.md`` section 1). This module finds the files (recursively, pruning
date partitions outside the requested time range), parses every line and keeps the records; a line that
is not a capture record is skipped and reported with its file and line number, never a crash.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sconeflow.config import Settings
from sconeflow.errors import SconeflowError
from sconeflow.store import ObjectStore, StoreError, open_store, parse_object_uri

log = logging.getLogger(__name__)

DEFAULT_CAPTURE_PREFIX = "data_capture"
DEFAULT_VARIANT = "AllTraffic"
_PARTITION_RE = re.compile(r"(?:^|/)(\d{4})/(\d{2})/(\d{2})/(\d{2})/[^/]+$")
# A capture file collects records for about 60 s after it opens, so it can spill past its hour.
_PARTITION_SLACK = timedelta(minutes=10)


class CaptureSourceError(SconeflowError):
    """The capture source (endpoint, s3:// prefix or folder) cannot be read."""


@dataclass(frozen=True, slots=True)
class MalformedLine:
    """A line that is not a data-capture record: where it is and why it was skipped."""

    source: str
    line: int
    reason: str


@dataclass(slots=True)
class CaptureRecord:
    """One captured invocation (input and output), as AWS recorded it."""

    event_id: str
    inference_time: datetime
    input_content_type: str | None
    input_encoding: str | None
    input_data: str | None
    output_content_type: str | None
    output_encoding: str | None
    output_data: str | None
    inference_id: str | None
    source: str
    line: int


@dataclass
class CaptureSet:
    """The records read from a source, in time order, plus the lines that were skipped."""

    records: list[CaptureRecord] = field(default_factory=list)
    malformed: list[MalformedLine] = field(default_factory=list)
    files: int = 0
    lines: int = 0

    def __len__(self) -> int:
        return len(self.records)

    def merge(self, other: CaptureSet) -> None:
        self.records.extend(other.records)
        self.malformed.extend(other.malformed)
        self.files += other.files
        self.lines += other.lines


def parse_inference_time(text: str) -> datetime:
    """``2025-10-04T08:44:11Z`` (also accepts fractional seconds and offsets) -> aware UTC datetime."""
    if not isinstance(text, str) or len(text) < 19:
        raise ValueError(f"inferenceTime {text!r} is not an ISO-8601 timestamp")
    try:
        value = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
    except (ValueError, OverflowError) as exc:  # e.g. day 30 of February, or out of range once in UTC
        raise ValueError(f"inferenceTime {text!r} is not a valid timestamp: {exc}") from None


def _block(capture: dict, name: str) -> tuple[str | None, str | None, str | None]:
    block = capture.get(name)
    if block is None:
        return None, None, None
    if not isinstance(block, dict):
        raise ValueError(f"captureData.{name} is not an object")
    data = block.get("data")
    if data is not None and not isinstance(data, str):
        raise ValueError(f"captureData.{name}.data is not a string")
    content_type, encoding = block.get("observedContentType"), block.get("encoding")
    if content_type is not None and not isinstance(content_type, str):
        raise ValueError(f"captureData.{name}.observedContentType is not a string")
    if encoding is not None and not isinstance(encoding, str):
        raise ValueError(f"captureData.{name}.encoding is not a string")
    return content_type, encoding, data


def parse_record(line: bytes | str, source: str = "<memory>", line_no: int = 1) -> CaptureRecord:
    """Parse one capture line; raises ``ValueError`` with a reason when it is not a capture record."""
    try:
        obj = json.loads(line)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"not JSON: {exc}") from None
    except RecursionError:
        raise ValueError("not JSON: nested too deeply to parse") from None
    if not isinstance(obj, dict):
        raise ValueError("not a JSON object")
    capture = obj.get("captureData")
    if not isinstance(capture, dict):
        raise ValueError("no captureData object")
    meta = obj.get("eventMetadata")
    if not isinstance(meta, dict):
        raise ValueError("no eventMetadata object")
    event_id = meta.get("eventId")
    if not isinstance(event_id, str) or not event_id:
        raise ValueError("eventMetadata.eventId is missing")
    when = parse_inference_time(meta.get("inferenceTime"))
    in_type, in_enc, in_data = _block(capture, "endpointInput")
    out_type, out_enc, out_data = _block(capture, "endpointOutput")
    if in_data is None and out_data is None:
        raise ValueError("captureData has neither endpointInput nor endpointOutput data")
    inference_id = meta.get("inferenceId")
    return CaptureRecord(
        event_id=event_id,
        inference_time=when,
        input_content_type=in_type,
        input_encoding=in_enc,
        input_data=in_data,
        output_content_type=out_type,
        output_encoding=out_enc,
        output_data=out_data,
        inference_id=inference_id if isinstance(inference_id, str) else None,
        source=source,
        line=line_no,
    )


def parse_lines(
    lines: Iterable[bytes | str],
    source: str,
    into: CaptureSet,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
) -> None:
    """Parse the lines of one file into ``into``; records outside [since, until) are dropped."""
    into.files += 1
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        into.lines += 1
        try:
            record = parse_record(line, source, number)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            into.malformed.append(MalformedLine(source, number, str(exc) or type(exc).__name__))
            continue
        if since is not None and record.inference_time < since:
            continue
        if until is not None and record.inference_time >= until:
            continue
        into.records.append(record)


def _partition_outside(key: str, since: datetime | None, until: datetime | None) -> bool:
    """True when a date-partitioned key's hour cannot hold records inside [since, until)."""
    if since is None and until is None:
        return False
    match = _PARTITION_RE.search(key)
    if not match:
        return False
    year, month, day, hour = (int(g) for g in match.groups())
    try:
        start = datetime(year, month, day, hour, tzinfo=UTC)
    except ValueError:
        return False
    end = start + timedelta(hours=1) + _PARTITION_SLACK
    return (since is not None and end <= since) or (until is not None and start >= until)


@dataclass(frozen=True)
class CaptureSource:
    """Where captures are read from: a store prefix (``bucket``/``prefix``) or a local path."""

    uri: str
    bucket: str | None = None
    prefix: str = ""
    path: Path | None = None


def endpoint_capture_uri(settings: Settings, endpoint: str) -> str:
    """The capture prefix of an endpoint: its DataCaptureConfig destination, else the default one."""
    destination = f"s3://{settings.bucket}/{DEFAULT_CAPTURE_PREFIX}"
    if settings.db_path.exists():
        try:
            from sconeflow.endpoint.registry import EndpointRegistry

            registry = EndpointRegistry(settings)
            record = registry.find(endpoint)
            if record is not None:
                config = registry.config(record.config_name)
                destination = config.data_capture.destination_s3_uri or destination
        except ImportError:  # the endpoint stage is optional for reading captures
            pass
        except SconeflowError as exc:
            log.debug("endpoint %s: no capture destination from the registry: %s", endpoint, exc)
    return destination.rstrip("/") + f"/{endpoint}/"


def resolve_source(
    settings: Settings, *, endpoint: str | None = None, source: str | None = None
) -> CaptureSource:
    """``--endpoint NAME`` or ``--source URI`` (``s3://bucket/prefix``, ``bucket/prefix``, a folder)."""
    if endpoint and source:
        raise CaptureSourceError("give either --endpoint or --source, not both")
    if endpoint:
        source = endpoint_capture_uri(settings, endpoint)
    if not source:
        source = f"s3://{settings.bucket}/{DEFAULT_CAPTURE_PREFIX}/"
    if source.startswith("file://"):
        return CaptureSource(source, path=Path(source[len("file://") :]))
    if not source.startswith("s3://"):
        local = Path(source).expanduser()
        if local.exists() or source.startswith((".", "/", "~")):
            return CaptureSource(source, path=local)
    bucket, prefix = parse_object_uri(source, settings.bucket)
    if not bucket:
        raise CaptureSourceError(f"capture source {source!r} names no bucket")
    return CaptureSource(source, bucket=bucket, prefix=prefix)


def _iter_local_files(path: Path) -> Iterator[Path]:
    if path.is_file():
        yield path
        return
    if not path.is_dir():
        raise CaptureSourceError(f"capture folder {path} does not exist")
    yield from sorted(p for p in path.rglob("*.jsonl") if p.is_file())


def iter_capture_sets(
    settings: Settings,
    source: CaptureSource,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    store: ObjectStore | None = None,
) -> Iterator[CaptureSet]:
    """One :class:`CaptureSet` per capture file (records in file order), files in key order.

    Lets a caller reduce each file (e.g. to features) and drop its payloads: memory stays bounded.
    """
    if source.path is not None:
        for file in _iter_local_files(source.path):
            part = CaptureSet()
            if _partition_outside(file.as_posix(), since, until):
                continue
            try:
                data = file.read_bytes()
            except OSError as exc:
                part.malformed.append(MalformedLine(str(file), 0, f"unreadable: {exc}"))
                yield part
                continue
            parse_lines(data.splitlines(), str(file), part, since=since, until=until)
            yield part
        return
    assert source.bucket is not None
    store = store or open_store(settings.resolved_store_uri)
    try:
        if not store.bucket_exists(source.bucket):
            raise CaptureSourceError(
                f"bucket {source.bucket!r} of capture source {source.uri} does not exist"
            )
        keys = [info.key for info in store.iter_objects(source.bucket, source.prefix)]
    except StoreError as exc:
        raise CaptureSourceError(f"cannot list {source.uri}: {exc}") from exc
    for key in keys:
        if not key.endswith(".jsonl") or _partition_outside(key, since, until):
            continue
        part = CaptureSet()
        where = f"s3://{source.bucket}/{key}"
        try:
            data = store.get_object(source.bucket, key)
        except StoreError as exc:
            part.malformed.append(MalformedLine(where, 0, f"unreadable: {exc}"))
            yield part
            continue
        parse_lines(data.splitlines(), where, part, since=since, until=until)
        yield part


def read_captures(
    settings: Settings,
    source: CaptureSource,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    store: ObjectStore | None = None,
) -> CaptureSet:
    """Every capture record under ``source`` within [since, until), sorted by inference time."""
    result = CaptureSet()
    for part in iter_capture_sets(settings, source, since=since, until=until, store=store):
        result.merge(part)
    result.records.sort(key=lambda r: (r.inference_time, r.source, r.line))
    if result.malformed:
        log.warning(
            "skipped %d malformed capture line(s); first: %s", len(result.malformed), result.malformed[0]
        )
    return result


def capture_key(endpoint: str, when: datetime, file_id: str, variant: str = DEFAULT_VARIANT) -> str:
    """The AWS key (below the destination prefix) of a capture file opened at ``when``."""
    when = when.astimezone(UTC)
    return (
        f"{endpoint}/{variant}/{when:%Y/%m/%d/%H}/{when:%M-%S}-{when.microsecond // 1000:03d}-{file_id}.jsonl"
    )


def format_record(
    *,
    input_b64: str,
    output_text: str,
    event_id: str,
    inference_time: datetime,
    input_content_type: str = "image/png",
    output_content_type: str = "application/json",
) -> str:
    """One capture line, byte for byte as AWS writes it (compact JSON, AWS key order, ``\\n``)."""
    record = {
        "captureData": {
            "endpointInput": {
                "observedContentType": input_content_type,
                "mode": "INPUT",
                "data": input_b64,
                "encoding": "BASE64",
            },
            "endpointOutput": {
                "observedContentType": output_content_type,
                "mode": "OUTPUT",
                "data": output_text,
                "encoding": "JSON",
            },
        },
        "eventMetadata": {
            "eventId": event_id,
            "inferenceTime": inference_time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
        "eventVersion": "0",
    }
    return json.dumps(record, separators=(",", ":")) + "\n"
