"""Reading capture JSONL: the AWS-recorded fixtures, our date-partitioned layout, malformed lines."""

from __future__ import annotations

import base64
import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from sconeflow.cli import app
from sconeflow.config import Settings
from sconeflow.monitor.captures import (
    CaptureSourceError,
    capture_key,
    format_record,
    parse_record,
    read_captures,
    resolve_source,
)
from sconeflow.store import LocalStore
from tests.monitor.conftest import FIXTURES, write_capture_files


def _fixture_lines(shared_dir: Path) -> list[tuple[Path, bytes]]:
    lines = []
    for path in sorted((shared_dir / FIXTURES).glob("*.jsonl")):
        for line in path.read_bytes().splitlines():
            if line.strip():
                lines.append((path, line))
    return lines


def test_reads_every_aws_recorded_record(settings: Settings, shared_dir: Path) -> None:
    expected = _fixture_lines(shared_dir)
    source = resolve_source(settings, source=str(shared_dir / FIXTURES))
    captures = read_captures(settings, source)
    assert captures.files == 111
    assert len(captures) == len(expected) == 225
    assert captures.malformed == []
    # Independent count of the input content types and of the event ids.
    types = Counter(
        json.loads(line)["captureData"]["endpointInput"]["observedContentType"] for _, line in expected
    )
    assert Counter(r.input_content_type for r in captures.records) == types
    assert {r.event_id for r in captures.records} == {
        json.loads(line)["eventMetadata"]["eventId"] for _, line in expected
    }
    times = [r.inference_time for r in captures.records]
    assert times == sorted(times)


def test_format_record_is_byte_identical_to_aws(shared_dir: Path) -> None:
    """Re-serialising every real record with our writer gives AWS's bytes back."""
    for _, line in _fixture_lines(shared_dir):
        record = parse_record(line)
        text = format_record(
            input_b64=record.input_data or "",
            output_text=record.output_data or "",
            event_id=record.event_id,
            inference_time=record.inference_time,
            input_content_type=record.input_content_type or "",
            output_content_type=record.output_content_type or "",
        )
        assert text.encode("utf-8") == line + b"\n"


def test_capture_key_layout() -> None:
    when = datetime(2025, 10, 4, 8, 44, 11, 981000, tzinfo=UTC)
    assert capture_key("ep", when, "04c92c7e") == "ep/AllTraffic/2025/10/04/08/44-11-981-04c92c7e.jsonl"


def test_malformed_lines_are_skipped_and_reported(settings: Settings, store: LocalStore) -> None:
    start = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    images = np.zeros((4, 32, 32, 3), dtype=np.uint8)
    keys = write_capture_files(
        store, settings.bucket, "ep", images, [[0.9, 0.1]] * 4, start=start, per_file=4
    )
    good = store.get_object(settings.bucket, keys[0]).decode()
    bad_lines = [
        "this is not json",
        "[1, 2, 3]",
        '{"captureData":{},"eventMetadata":{"inferenceTime":"2026-01-02T03:04:05Z"},"eventVersion":"0"}',
        '{"captureData":{"endpointInput":{"data":"AA==","encoding":"BASE64"}},'
        '"eventMetadata":{"eventId":"x","inferenceTime":"yesterday"},"eventVersion":"0"}',
        '{"captureData":"oops","eventMetadata":{"eventId":"x","inferenceTime":"2026-01-02T03:04:05Z"}}',
        '{"truncated": ',
    ]
    mixed = good.splitlines()[:2] + bad_lines[:3] + [""] + good.splitlines()[2:] + bad_lines[3:]
    store.put_object(settings.bucket, keys[0], ("\n".join(mixed) + "\n").encode())
    store.put_object(
        settings.bucket, "data_capture/ep/AllTraffic/2026/01/02/03/binary.jsonl", b"\xff\xfe\x00garbage\n"
    )
    captures = read_captures(settings, resolve_source(settings, endpoint="ep"))
    assert len(captures) == 4
    assert len(captures.malformed) == len(bad_lines) + 1
    by_line = {(m.source.rsplit("/", 1)[-1], m.line): m.reason for m in captures.malformed}
    first_file = keys[0].rsplit("/", 1)[-1]
    assert (first_file, 3) in by_line and "not JSON" in by_line[(first_file, 3)]
    assert "not a JSON object" in by_line[(first_file, 4)]
    assert "eventId" in by_line[(first_file, 5)]
    assert ("binary.jsonl", 1) in by_line
    assert all(m.source.startswith(f"s3://{settings.bucket}/data_capture/ep/") for m in captures.malformed)


def test_lines_that_break_the_parser_are_skipped_not_fatal(settings: Settings, tmp_path: Path) -> None:
    """A JSON value nested past the recursion limit and an inferenceTime that leaves the datetime range
    once converted to UTC are malformed lines like any other: the file's good records are kept."""
    good = format_record(
        input_b64="AA==",
        output_text="[0.9, 0.1]",
        event_id="e-good",
        inference_time=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    ).encode()
    deep = b"[" * 100_000 + b"]" * 100_000
    late = good.replace(b"2026-01-02T03:04:05Z", b"9999-12-31T23:59:59-01:00").strip()
    no_such_day = good.replace(b"2026-01-02T03:04:05Z", b"2026-02-30T00:00:00Z").strip()
    (tmp_path / "mixed.jsonl").write_bytes(good + deep + b"\n" + late + b"\n" + no_such_day + b"\n" + good)
    captures = read_captures(settings, resolve_source(settings, source=str(tmp_path)))
    assert [r.line for r in captures.records] == [1, 5]
    reasons = {m.line: m.reason for m in captures.malformed}
    assert sorted(reasons) == [2, 3, 4]
    assert "not JSON" in reasons[2]
    assert "9999-12-31T23:59:59-01:00" in reasons[3] and "inferenceTime" in reasons[3]
    assert "2026-02-30T00:00:00Z" in reasons[4]


def test_since_until_and_recursive_partitions(settings: Settings, store: LocalStore) -> None:
    start = datetime(2026, 3, 1, 22, 50, 0, tzinfo=UTC)
    images = np.zeros((40, 32, 32, 3), dtype=np.uint8)
    # 40 records 1 minute apart: 22:50 .. 23:29, files every 10 records (two hour partitions).
    write_capture_files(
        store,
        settings.bucket,
        "ep",
        images,
        [[0.5, 0.5]] * 40,
        start=start,
        step=timedelta(minutes=1),
        per_file=10,
    )
    source = resolve_source(settings, source=f"s3://{settings.bucket}/data_capture/ep")
    assert len(read_captures(settings, source)) == 40
    window = read_captures(
        settings,
        source,
        since=datetime(2026, 3, 1, 23, 0, tzinfo=UTC),
        until=datetime(2026, 3, 1, 23, 10, tzinfo=UTC),
    )
    assert len(window) == 10
    assert all(datetime(2026, 3, 1, 23, 0, tzinfo=UTC) <= r.inference_time for r in window.records)
    later = read_captures(settings, source, since=datetime(2026, 3, 2, 1, tzinfo=UTC))
    assert len(later) == 0 and later.files == 0  # every partition pruned


def test_source_errors(settings: Settings, tmp_path: Path) -> None:
    with pytest.raises(CaptureSourceError):
        read_captures(settings, resolve_source(settings, source=str(tmp_path / "missing")))
    with pytest.raises(CaptureSourceError):
        read_captures(settings, resolve_source(settings, source="s3://no-such-bucket/data_capture/"))
    with pytest.raises(CaptureSourceError):
        resolve_source(settings, endpoint="a", source="s3://b/c")


def test_cli_captures_jsonl_on_fixtures(settings: Settings, shared_dir: Path) -> None:
    result = CliRunner().invoke(
        app, ["monitor", "captures", "--source", str(shared_dir / FIXTURES), "--format", "jsonl"]
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert len(rows) == 225
    first = _fixture_lines(shared_dir)
    expected = {json.loads(line)["eventMetadata"]["eventId"]: json.loads(line) for _, line in first}
    for row in rows[:10]:
        record = expected[row["eventId"]]
        probs = json.loads(record["captureData"]["endpointOutput"]["data"])
        assert row["confidence"] == pytest.approx(max(probs))
        assert row["predictedClass"] == ("bicycle", "motorcycle")[int(np.argmax(probs))]
        assert row["inputBytes"] == len(base64.b64decode(record["captureData"]["endpointInput"]["data"]))
        assert row["image_width"] == 32 and row["image_height"] == 32


def test_cli_captures_table(settings: Settings, shared_dir: Path) -> None:
    result = CliRunner().invoke(
        app, ["monitor", "captures", "--source", str(shared_dir / FIXTURES), "-n", "3"]
    )
    assert result.exit_code == 0, result.output
    assert "225 records in 111 files" in " ".join(result.stdout.split())


def test_load_feature_table_equals_read_then_table(settings: Settings, shared_dir: Path) -> None:
    """The bounded-memory path (file by file) gives the same rows, in the same order."""
    from sconeflow.monitor.features import load_feature_table, table_from_records

    source = resolve_source(settings, source=str(shared_dir / FIXTURES))
    table, summary = load_feature_table(settings, source)
    reference = table_from_records(read_captures(settings, source).records)
    assert summary.files == 111 and summary.records == [] and summary.malformed == []
    assert table.event_ids == reference.event_ids
    assert table.classes == reference.classes == ["bicycle", "motorcycle"]
    assert table.predicted == reference.predicted
    for name, values in reference.numeric.items():
        np.testing.assert_array_equal(table.numeric[name], values)
    np.testing.assert_array_equal(table.times, reference.times)


def test_cli_captures_of_an_unknown_endpoint_says_so(settings: Settings, store) -> None:
    """A mistyped --endpoint finds nothing: it says where it looked and that no such endpoint exists."""
    store.create_bucket(settings.bucket)
    result = CliRunner().invoke(app, ["monitor", "captures", "--endpoint", "no-such-endpoint"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "no capture records under s3://" in text and "no endpoint named 'no-such-endpoint'" in text
    assert "mean confidence -;" in text


def test_cli_captures_refuses_an_unknown_format_before_reading(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["monitor", "captures", "--source", str(tmp_path / "missing"), "--format", "csv"]
    )
    assert result.exit_code == 2, result.output
    assert "--format" in result.output and "'table' or 'jsonl'" in result.output
    assert "missing" not in result.output  # the source was never opened
