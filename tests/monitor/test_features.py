"""Feature extraction: image statistics and output parsing, against independent computations."""

from __future__ import annotations

import base64
import io
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from PIL import Image

from sconeflow.monitor.captures import parse_record
from sconeflow.monitor.features import parse_probabilities, table_from_records
from sconeflow.monitor.timeutil import InvalidDuration, parse_duration, parse_time, resolve_window
from tests.monitor.conftest import png_bytes


def _record(data: bytes, output: str, encoding: str = "JSON", content_type: str = "image/png"):  # type: ignore[no-untyped-def]
    from sconeflow.monitor.captures import format_record

    line = format_record(
        input_b64=base64.b64encode(data).decode(),
        output_text=output,
        event_id="e",
        inference_time=datetime(2026, 1, 1, tzinfo=UTC),
        input_content_type=content_type,
    )
    if encoding == "BASE64":
        line = line.replace('"encoding":"JSON"', '"encoding":"BASE64"')
    return parse_record(line)


def test_image_statistics_match_pixel_loops() -> None:
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, size=(5, 7, 3), dtype=np.uint8)
    table = table_from_records([_record(png_bytes(image), "[0.25, 0.75]")])
    pixels = image.astype(float)
    grey = [[0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2] for p in row] for row in pixels]
    flat = [g for row in grey for g in row]
    mean = sum(flat) / len(flat)
    contrast = (sum((g - mean) ** 2 for g in flat) / len(flat)) ** 0.5
    lap = [
        grey[y - 1][x] + grey[y + 1][x] + grey[y][x - 1] + grey[y][x + 1] - 4 * grey[y][x]
        for y in range(1, 4)
        for x in range(1, 6)
    ]
    lap_mean = sum(lap) / len(lap)
    sharpness = sum((v - lap_mean) ** 2 for v in lap) / len(lap)
    n = table.numeric
    assert n["image_width"][0] == 7 and n["image_height"][0] == 5
    for i, channel in enumerate("rgb"):
        assert n[f"brightness_{channel}"][0] == pytest.approx(pixels[..., i].mean())
    assert n["contrast"][0] == pytest.approx(contrast)
    assert n["sharpness"][0] == pytest.approx(sharpness)
    assert n["confidence"][0] == 0.75
    assert table.predicted == ["motorcycle"]


def test_rgba_and_jpeg_inputs_decode() -> None:
    rgba = np.dstack([np.full((8, 8, 3), 100, np.uint8), np.full((8, 8), 7, np.uint8)])
    jpeg = io.BytesIO()
    Image.fromarray(np.full((8, 8, 3), 200, np.uint8)).save(jpeg, format="JPEG", quality=95)
    table = table_from_records(
        [
            _record(png_bytes(rgba), "[0.1, 0.9]", content_type="application/x-image"),
            _record(jpeg.getvalue(), "[0.1, 0.9]", content_type="image/jpeg"),
        ]
    )
    assert table.numeric["brightness_g"][0] == 100
    assert table.numeric["brightness_g"][1] == pytest.approx(200, abs=2)


def test_output_parsing_variants() -> None:
    assert parse_probabilities("[0.93, 0.06]", "JSON") == ([0.93, 0.06], False)
    encoded = base64.b64encode(b"[0.2, 0.8]").decode()
    assert parse_probabilities(encoded, "BASE64") == ([0.2, 0.8], False)
    assert parse_probabilities('{"probabilities": [0.4, 0.6]}', "JSON") == ([0.4, 0.6], False)
    assert parse_probabilities("[[0.4, 0.6]]", "JSON") == ([0.4, 0.6], False)
    probs, wrong = parse_probabilities('["a", 0.5]', "JSON")
    assert wrong and probs is not None and np.isnan(probs[0])
    assert parse_probabilities("not json", "JSON") == (None, False)
    assert parse_probabilities("[]", "JSON") == (None, False)
    assert parse_probabilities("[" * 100_000 + "]" * 100_000, "JSON") == (None, False)
    assert parse_probabilities(None, None) == (None, False)


def test_csv_encoded_outputs_are_read() -> None:
    """SageMaker stores an output whose type is in CsvContentTypes as the raw body text with
    "encoding":"CSV" (the AWS Model Monitor notebook's capture: "data":"0.036397725343704224")."""
    assert parse_probabilities("0.2,0.8", "CSV") == ([0.2, 0.8], False)
    assert parse_probabilities("0.036397725343704224", "CSV") == ([0.036397725343704224], False)
    assert parse_probabilities("0.3, 0.7\n", "CSV") == ([0.3, 0.7], False)
    probs, wrong = parse_probabilities("yes,0.5", "CSV")
    assert wrong and probs is not None and np.isnan(probs[0]) and probs[1] == 0.5
    assert parse_probabilities("", "CSV") == (None, False)
    record = _record(png_bytes(np.zeros((4, 4, 3), np.uint8)), "0.25,0.75")
    record.output_encoding, record.output_content_type = "CSV", "text/csv; charset=utf-8"
    table = table_from_records([record])
    assert table.predicted == ["motorcycle"]
    assert table.numeric["confidence"].tolist() == [0.75]


def test_not_an_image_and_three_classes() -> None:
    table = table_from_records(
        [
            _record(b"garbage", "[0.2, 0.3, 0.5]"),
            _record(png_bytes(np.zeros((4, 4, 3), np.uint8)), "[0.6, 0.3, 0.1]"),
        ]
    )
    assert table.classes == ["class_0", "class_1", "class_2"]
    assert np.isnan(table.numeric["brightness_r"][0]) and table.numeric["brightness_r"][1] == 0
    assert table.predicted == ["class_2", "class_0"]
    assert table.numeric["prob_class_1"].tolist() == [0.3, 0.3]
    named = table_from_records([_record(b"x", "[0.2, 0.3, 0.5]")], ["bicycle", "motorcycle", "bus"])
    assert named.predicted == ["bus"]


def test_durations_and_times() -> None:
    assert parse_duration("1h") == timedelta(hours=1)
    assert parse_duration("1h30m") == timedelta(minutes=90)
    assert parse_duration("PT15M") == timedelta(minutes=15)
    assert parse_duration("P1D") == timedelta(days=1)
    assert parse_duration("45s") == timedelta(seconds=45)
    for bad in ("", "soon", "0s", "1x", "PT"):
        with pytest.raises(InvalidDuration):
            parse_duration(bad)
    now = datetime(2026, 1, 1, 12, tzinfo=UTC)
    assert parse_time("2025-10-04T08:44:11Z") == datetime(2025, 10, 4, 8, 44, 11, tzinfo=UTC)
    assert parse_time("2h ago", now=now) == datetime(2026, 1, 1, 10, tzinfo=UTC)
    assert parse_time("now", now=now) == now
    assert resolve_window("1h", None, None, now=now) == (now - timedelta(hours=1), now)
    assert resolve_window("all", None, None, now=now) == (None, None)
    with pytest.raises(InvalidDuration):
        resolve_window(None, "2026-01-02", "2026-01-01")
    with pytest.raises(InvalidDuration):
        parse_time("tomorrow-ish")
