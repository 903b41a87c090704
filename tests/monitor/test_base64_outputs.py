"""A response body captured with ``"encoding":"BASE64"`` (an endpoint config without
CaptureContentTypeHeader base64-encodes every payload) is decoded and read by its
``observedContentType``: CSV as CSV, JSON as JSON."""

from __future__ import annotations

import base64
import json

import numpy as np

from sconeflow.monitor.captures import parse_record
from sconeflow.monitor.features import parse_probabilities, table_from_records

from .conftest import png_bytes


def _line(output: bytes, content_type: str) -> str:
    """One capture line in AWS's format with both payloads BASE64."""
    image = png_bytes(np.full((4, 4, 3), 90, np.uint8))
    record = {
        "captureData": {
            "endpointInput": {
                "observedContentType": "image/png",
                "mode": "INPUT",
                "data": base64.b64encode(image).decode("ascii"),
                "encoding": "BASE64",
            },
            "endpointOutput": {
                "observedContentType": content_type,
                "mode": "OUTPUT",
                "data": base64.b64encode(output).decode("ascii"),
                "encoding": "BASE64",
            },
        },
        "eventMetadata": {
            "eventId": "8bab5840-5583-40c1-b8c1-35f456ca6ce5",
            "inferenceTime": "2025-10-04T08:44:11Z",
        },
        "eventVersion": "0",
    }
    return json.dumps(record, separators=(",", ":"))


def test_base64_csv_output_is_read_as_csv() -> None:
    records = [
        parse_record(_line(b"0.25,0.75", "text/csv")),
        parse_record(_line(b"0.9,0.1\n", "text/csv; charset=utf-8")),
        parse_record(_line(b"\xef\xbb\xbf0.4,0.6", "TEXT/CSV")),  # a BOM, a type in capitals
    ]
    table = table_from_records(records, ["bicycle", "motorcycle"])
    assert table.predicted == ["motorcycle", "bicycle", "motorcycle"]
    assert table.numeric["confidence"].tolist() == [0.75, 0.9, 0.6]
    assert table.numeric["prob_bicycle"].tolist() == [0.25, 0.9, 0.4]
    assert table.numeric["brightness_r"].tolist() == [90, 90, 90]
    assert table.output_columns is not None and table.output_columns.tolist() == [2, 2, 2]


def test_base64_csv_fixes_the_class_count_without_a_baseline() -> None:
    table = table_from_records([parse_record(_line(b"0.2,0.3,0.5", "text/csv"))])
    assert table.classes == ["class_0", "class_1", "class_2"]
    assert table.predicted == ["class_2"]


def test_base64_json_output_is_read_as_json() -> None:
    records = [
        parse_record(_line(b"[0.3, 0.7]", "application/json")),
        parse_record(_line(b'{"probabilities": [0.6, 0.4]}', "application/json; charset=utf-8")),
        parse_record(_line(b"[[0.2, 0.8]]", "application/octet-stream")),  # no type hint: JSON
    ]
    table = table_from_records(records, ["bicycle", "motorcycle"])
    assert table.predicted == ["motorcycle", "bicycle", "motorcycle"]
    assert table.numeric["confidence"].tolist() == [0.7, 0.6, 0.8]


def test_base64_output_that_is_neither_is_missing_not_a_crash() -> None:
    encoded = base64.b64encode(b"\xff\xfe\x00binary").decode()
    assert parse_probabilities(encoded, "BASE64", "text/csv") == (None, False)
    assert parse_probabilities("%%%not base64", "BASE64", "text/csv") == (None, False)
    table = table_from_records([parse_record(_line(b"", "text/csv"))], ["bicycle", "motorcycle"])
    assert table.predicted == [None] and np.isnan(table.numeric["confidence"][0])
