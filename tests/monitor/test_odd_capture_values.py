"""Capture lines with values AWS never writes: a non-string content type or encoding is a skipped
malformed line (not a traceback in ``monitor captures``), a NaN/Infinity probability is a wrong type (not
a number that turns every mean into NaN or Infinity), and ``--classes`` must name each column once."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from sconeflow.cli import app
from sconeflow.config import Settings
from sconeflow.monitor.captures import CaptureSet, parse_lines, parse_record
from sconeflow.monitor.features import parse_probabilities, table_from_records

from .conftest import png_bytes

runner = CliRunner()
IMAGE = base64.b64encode(png_bytes(np.full((4, 4, 3), 90, np.uint8))).decode("ascii")


def _line(
    event: str,
    *,
    output: str = "[0.2, 0.8]",
    out_type: object = "application/json",
    out_encoding: object = "JSON",
    in_type: object = "image/png",
) -> str:
    """One capture line in AWS's key order, with the given (possibly odd) values."""
    source = {"observedContentType": in_type, "mode": "INPUT", "data": IMAGE, "encoding": "BASE64"}
    answer = {"observedContentType": out_type, "mode": "OUTPUT", "data": output, "encoding": out_encoding}
    record = {
        "captureData": {"endpointInput": source, "endpointOutput": answer},
        "eventMetadata": {"eventId": event, "inferenceTime": "2025-10-04T08:44:11Z"},
        "eventVersion": "0",
    }
    return json.dumps(record, separators=(",", ":"))


def test_non_string_content_type_or_encoding_is_a_malformed_line() -> None:
    into = CaptureSet()
    lines = [
        _line("a", in_type={"a": 1}),
        _line("b", out_type=5),
        _line("c", out_encoding=["JSON"]),
        _line("d"),
    ]
    parse_lines(lines, "mem.jsonl", into)
    assert [r.event_id for r in into.records] == ["d"]
    assert [(m.line, m.reason) for m in into.malformed] == [
        (1, "captureData.endpointInput.observedContentType is not a string"),
        (2, "captureData.endpointOutput.observedContentType is not a string"),
        (3, "captureData.endpointOutput.encoding is not a string"),
    ]


def test_captures_command_skips_them_instead_of_a_traceback(settings: Settings, tmp_path: Path) -> None:
    folder = tmp_path / "captures" / "ep" / "AllTraffic" / "2025" / "10" / "04" / "08"
    folder.mkdir(parents=True)
    (folder / "44-11-000-x.jsonl").write_text(_line("a", in_type={"a": 1}) + "\n" + _line("b") + "\n")
    result = runner.invoke(app, ["monitor", "captures", "--source", str(tmp_path / "captures")])
    assert result.exit_code == 0, result.output
    assert "1 records in 1 files" in result.stdout and "malformed lines skipped: 1" in result.stdout


@pytest.mark.parametrize(
    ("text", "encoding"),
    [("[Infinity, 0.5]", "JSON"), ("[NaN, 0.5]", "JSON"), ("[-Infinity, 0.5]", "JSON"), ("inf,0.5", "CSV")],
)
def test_non_finite_probabilities_are_a_wrong_type(text: str, encoding: str) -> None:
    probs, wrong = parse_probabilities(text, encoding)
    assert wrong and probs is not None and np.isnan(probs[0]) and probs[1] == 0.5
    table = table_from_records([parse_record(_line("x", output=text, out_encoding=encoding))], ["a", "b"])
    assert table.type_errors["confidence"] == 1 and table.type_errors["prob_a"] == 1
    assert table.predicted == [None] and np.isnan(table.numeric["confidence"][0])
    assert table.numeric["prob_b"].tolist() == [0.5]


@pytest.mark.parametrize(("classes", "words"), [("a,a", "a named more than once"), (",,", "names no class")])
def test_captures_classes_must_name_each_column_once(
    settings: Settings, tmp_path: Path, classes: str, words: str
) -> None:
    folder = tmp_path / "captures"
    folder.mkdir()
    (folder / "x.jsonl").write_text(_line("a") + "\n")
    result = runner.invoke(app, ["monitor", "captures", "--source", str(folder), "--classes", classes])
    assert result.exit_code == 2 and words in result.output
    ok = runner.invoke(app, ["monitor", "captures", "--source", str(folder), "--classes", " a , b ,"])
    assert ok.exit_code == 0 and "{'a': 0, 'b': 1}" in ok.stdout
