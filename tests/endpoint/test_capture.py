"""The data-capture writer: SageMaker's record format, file naming and rolling, whole lines, drops."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from sconeflow.endpoint.capture import (
    CaptureEvent,
    CaptureWriter,
    build_record,
    encoding_for,
    format_inference_time,
    parse_destination,
    record_line,
)
from sconeflow.endpoint.errors import InvalidCaptureConfig
from sconeflow.endpoint.models import DataCaptureConfig
from sconeflow.store import LocalStore

from .capture_shape import FILE_RE, describe_record
from .helpers import encode

PNG = encode(__import__("numpy").zeros((32, 32, 3), dtype="uint8"))
CONFIG = DataCaptureConfig(enable_capture=True, destination_s3_uri="s3://bucket-x/data_capture")
T0 = 1_760_000_000.0  # 2025-10-09T08:53:20Z


def event(at: float, inference_id: str | None = None, output: bytes = b"[0.25, 0.75]") -> CaptureEvent:
    return CaptureEvent(
        PNG, "image/png", output, "application/json", "8bab5840-5583-40c1-b8c1-35f456ca6ce5", at, inference_id
    )


def aws_lines(shared_dir: Path) -> list[tuple[str, bytes]]:
    lines = []
    for path in sorted((shared_dir / "fixtures" / "sagemaker-data-capture").glob("*.jsonl")):
        for line in path.read_bytes().splitlines(keepends=True):
            lines.append((path.name, line))
    return lines


def test_record_matches_every_aws_recorded_record(shared_dir: Path) -> None:
    ours = describe_record(record_line(event(T0), CONFIG))
    recorded = aws_lines(shared_dir)
    assert len(recorded) == 225
    for name, line in recorded:
        theirs = describe_record(line)
        assert theirs == ours, name


def test_record_layout_bytes() -> None:
    line = record_line(event(T0, inference_id="req-7"), CONFIG)
    assert line.startswith(
        b'{"captureData":{"endpointInput":{"observedContentType":"image/png","mode":"INPUT","data":"'
    )
    assert line.endswith(
        b'"endpointOutput":{"observedContentType":"application/json","mode":"OUTPUT","data":"[0.25, 0.75]",'
        b'"encoding":"JSON"}},"eventMetadata":{"eventId":"8bab5840-5583-40c1-b8c1-35f456ca6ce5",'
        b'"inferenceId":"req-7","inferenceTime":"2025-10-09T08:53:20Z"},"eventVersion":"0"}\n'
    )
    assert line.count(b"\n") == 1


@pytest.mark.parametrize(
    ("config", "ev"),
    [
        (CONFIG, event(T0)),
        (CONFIG, event(T0 + 3599.5, inference_id='id "quoted" \\ é ☃')),
        (CONFIG, CaptureEvent(b'{"x": "\xc3\xa9"}', "application/json", b"1,2", "text/csv", "e", T0, "i")),
        (CONFIG, CaptureEvent(b"\xff\xfe", "application/json", b"[1]", "application/json", "e", T0)),
        (
            DataCaptureConfig(enable_capture=True, destination_s3_uri="s3://b/p", capture_output=False),
            event(T0, inference_id="x"),
        ),
        (
            DataCaptureConfig(enable_capture=True, destination_s3_uri="s3://b/p", capture_input=False),
            event(T0),
        ),
    ],
    ids=[
        "plain",
        "escaped-inference-id",
        "json-and-csv",
        "non-utf8-json-falls-back",
        "input-only",
        "output-only",
    ],
)
def test_formatted_line_is_exactly_the_json_encoding_of_the_record(
    config: DataCaptureConfig, ev: CaptureEvent
) -> None:
    """record_line formats instead of encoding a dict (cheaper); the bytes must not differ."""
    expected = json.dumps(build_record(ev, config), separators=(",", ":")).encode("utf-8") + b"\n"
    assert record_line(ev, config) == expected
    assert json.loads(record_line(ev, config)) == build_record(ev, config)


def test_inference_time_is_whole_second_utc() -> None:
    assert format_inference_time(T0 + 0.999) == "2025-10-09T08:53:20Z"


def test_encoding_follows_capture_content_type_header() -> None:
    assert encoding_for("image/png", CONFIG) == "BASE64"
    assert encoding_for("application/json", CONFIG) == "JSON"
    assert encoding_for("text/csv", CONFIG) == "CSV"
    raw_boto3 = DataCaptureConfig.from_api(
        {
            "EnableCapture": True,
            "InitialSamplingPercentage": 100,
            "DestinationS3Uri": "s3://b/p",
            "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
        }
    )
    assert encoding_for("application/json", raw_boto3) == "BASE64"  # no header: everything base64


def test_partial_capture_omits_the_other_block() -> None:
    config = DataCaptureConfig(enable_capture=True, destination_s3_uri="s3://b/p", capture_output=False)
    assert list(build_record(event(T0), config)["captureData"]) == ["endpointInput"]


def test_capture_config_validation() -> None:
    with pytest.raises(InvalidCaptureConfig):
        DataCaptureConfig(enable_capture=True, initial_sampling_percentage=101, destination_s3_uri="s3://b/p")
    with pytest.raises(InvalidCaptureConfig):
        DataCaptureConfig(enable_capture=True, destination_s3_uri="")
    with pytest.raises(InvalidCaptureConfig):
        parse_destination("https://example.com/x", "default")
    assert parse_destination("s3://my-bucket/a/b/", "default") == ("my-bucket", "a/b")


def test_writer_names_rolls_and_flushes_files(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    writer = CaptureWriter(store, "ep-1", CONFIG, default_bucket="unused", flush_seconds=0.05)
    times = [T0, T0 + 30, T0 + 59.9, T0 + 60.5, T0 + 200]  # 3 files: [0, 60), [60.5, 120.5), [200, ...)
    for at in times:
        assert writer.offer(event(at))
    writer.close()
    keys = sorted(info.key for info in store.iter_objects("bucket-x"))
    assert len(keys) == 3
    assert keys[0] == next(k for k in keys if "/53-20-000-" in k)
    for key in keys:
        prefix, name = key.rsplit("/", 1)
        assert prefix == "data_capture/ep-1/AllTraffic/2025/10/09/08"
        assert FILE_RE.search(name)
    counts = [len(store.get_object("bucket-x", k).splitlines()) for k in keys]
    assert sorted(counts) == [1, 1, 3]
    assert writer.written == 5 and writer.dropped == 0
    for key in keys:
        body = store.get_object("bucket-x", key)
        assert body.endswith(b"\n")
        first = json.loads(body.splitlines()[0])
        minute, second = key.rsplit("/", 1)[1].split("-")[:2]
        assert first["eventMetadata"]["inferenceTime"][14:19] == f"{minute}:{second}"
        # the writer skips the MD5; the store computes the ETag (S3's MD5) when the file is listed
        assert store.head_object("bucket-x", key).etag == hashlib.md5(body).hexdigest()


def test_writer_rolls_at_the_hour(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    writer = CaptureWriter(store, "ep", CONFIG, default_bucket="unused")
    hour_end = (T0 // 3600 + 1) * 3600
    writer.offer(event(hour_end - 5))
    writer.offer(event(hour_end + 5))
    writer.close()
    folders = sorted(info.key.rsplit("/", 2)[-2] for info in store.iter_objects("bucket-x"))
    assert folders == ["08", "09"]


def test_open_file_is_published_periodically_with_whole_lines(tmp_path: Path) -> None:
    import time

    store = LocalStore(tmp_path / "store")
    writer = CaptureWriter(store, "ep", CONFIG, default_bucket="unused", flush_seconds=0.05)
    now = time.time()
    for i in range(10):
        writer.offer(event(now + i * 0.001))
    deadline = time.monotonic() + 5
    while writer.written < 10 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert writer.written == 10  # visible before the file rolls or the writer closes
    (info,) = list(store.iter_objects("bucket-x"))
    assert store.get_object("bucket-x", info.key).count(b"\n") == 10
    writer.close()


def test_records_offered_after_close_are_counted_as_dropped(tmp_path: Path) -> None:
    writer = CaptureWriter(LocalStore(tmp_path / "s"), "ep", CONFIG, default_bucket="unused")
    writer.close()
    writer.close()  # twice is fine
    assert writer.offer(event(T0)) is False
    assert writer.dropped == 1


def test_a_refused_write_is_retried_and_nothing_is_lost(tmp_path: Path) -> None:
    import time

    store = LocalStore(tmp_path / "store")
    store.create_bucket("bucket-x")
    store.put_object("bucket-x", "data_capture/ep", b"a file where the endpoint's folder must go")
    writer = CaptureWriter(store, "ep", CONFIG, default_bucket="unused", flush_seconds=0.05)
    now = time.time()
    for i in range(3):
        writer.offer(event(now + i * 0.001))
    deadline = time.monotonic() + 5
    while writer.errors == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert writer.errors > 0 and writer.written == 0
    store.delete_object("bucket-x", "data_capture/ep")  # the obstacle goes away
    while writer.written < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    writer.close()
    assert writer.written == 3 and writer.dropped == 0
    (info,) = list(store.iter_objects("bucket-x", "data_capture/ep/"))
    assert store.get_object("bucket-x", info.key).count(b"\n") == 3


def test_uuid4_ids_have_the_uuid4_form_and_do_not_repeat() -> None:
    import uuid

    from sconeflow.endpoint.ids import new_uuid4

    ids = [new_uuid4() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    for text in ids[:200]:
        parsed = uuid.UUID(text)
        assert str(parsed) == text  # lowercase, hyphenated as str(uuid.uuid4()) writes it
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122


def test_writer_assigns_an_event_id_when_the_request_path_gives_none(tmp_path: Path) -> None:
    import uuid

    store = LocalStore(tmp_path / "store")
    writer = CaptureWriter(store, "ep", CONFIG, default_bucket="unused")
    for i in range(3):
        writer.offer(CaptureEvent(PNG, "image/png", b"[0.5, 0.5]", "application/json", None, T0 + i))
    writer.close()
    (info,) = list(store.iter_objects("bucket-x"))
    records = [json.loads(line) for line in store.get_object("bucket-x", info.key).splitlines()]
    ids = [r["eventMetadata"]["eventId"] for r in records]
    assert len(set(ids)) == 3 and all(uuid.UUID(i).version == 4 for i in ids)


def test_a_full_queue_drops_and_counts_instead_of_blocking(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    writer = CaptureWriter(store, "ep", CONFIG, default_bucket="unused", queue_size=5, collect_seconds=0.5)
    accepted = sum(writer.offer(event(T0)) for _ in range(50))  # the writer sleeps while they arrive
    writer.close()
    assert accepted >= 5 and writer.dropped == 50 - accepted
    assert writer.written == accepted


def test_simd_and_standard_base64_write_the_same_line(monkeypatch: pytest.MonkeyPatch) -> None:
    import base64

    from sconeflow.endpoint import capture

    fast = record_line(event(T0), CONFIG)
    monkeypatch.setattr(capture, "_b64", base64.b64encode)
    assert record_line(event(T0), CONFIG) == fast


@pytest.mark.parametrize(
    "uri",
    [
        "s3://b/prefix",
        "s3://My_Bucket/prefix",
        "s3://bad..name/p",
        "s3://ok-bucket/a//b",
        "s3://ok-bucket/../x",
    ],
)
def test_capture_destination_the_store_cannot_write_is_refused_at_deploy(settings, uri: str) -> None:
    """Accepted, it gave an InService endpoint whose writer lost every record (only a log warning)."""
    from sconeflow.endpoint.registry import EndpointRegistry, deploy

    with pytest.raises(InvalidCaptureConfig, match="capture destination"):
        parse_destination(uri, "default-bucket")
    with pytest.raises(InvalidCaptureConfig):
        deploy(settings, "no-such-model", name="bad-dest", capture_dest=uri, start=False)
    assert EndpointRegistry(settings).find("bad-dest") is None
