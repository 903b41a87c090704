"""A baseline whose statistics.json / constraints.json is valid JSON of the wrong shape (hand-edited, or
from elsewhere) is a BaselineError naming the bad value, not a TypeError/KeyError in the middle of a
monitoring run (which recorded it as InternalServerError with a traceback)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from sconeflow.cli import app
from sconeflow.config import Settings
from sconeflow.monitor.baseline import BaselineError, load_baseline

runner = CliRunner()
Doc = dict[str, Any]


def _feature(doc: Doc, name: str) -> Doc:
    return next(f for f in doc["features"] if f["name"] == name)


def _set_item_count(doc: Doc) -> None:
    doc["dataset"]["item_count"] = "many"


def _feature_not_object(doc: Doc) -> None:
    doc["features"].insert(0, "confidence")


def _mean_text(doc: Doc) -> None:
    _feature(doc, "confidence")["numerical_statistics"]["mean"] = "high"


def _sketch_text(doc: Doc) -> None:
    _feature(doc, "confidence")["numerical_statistics"]["distribution"]["kll"]["sketch"]["data"] = [["a"]]


def _buckets_text(doc: Doc) -> None:
    _feature(doc, "predicted_class")["string_statistics"]["distribution"]["categorical"]["buckets"] = ["x"]


def _completeness_text(doc: Doc) -> None:
    _feature(doc, "confidence")["completeness"] = "high"


def _threshold_text(doc: Doc) -> None:
    doc["monitoring_config"]["distribution_constraints"]["comparison_threshold"] = "0.1"


def _config_list(doc: Doc) -> None:
    doc["monitoring_config"] = []


def _domains_text(doc: Doc) -> None:
    _feature(doc, "predicted_class")["string_constraints"] = {"domains": "bicycle"}


CASES: list[tuple[str, Callable[[Doc], None], str]] = [
    ("statistics.json", _set_item_count, "statistics.json dataset.item_count is not a number: 'many'"),
    (
        "statistics.json",
        _feature_not_object,
        'statistics.json features[0] is not an object with a "name" string',
    ),
    ("statistics.json", _mean_text, "statistics.json feature 'confidence'.mean is not a number"),
    ("statistics.json", _sketch_text, "'confidence' distribution.kll.sketch.data is not a list of lists"),
    ("statistics.json", _buckets_text, "'predicted_class' distribution.categorical.buckets is not a list"),
    ("constraints.json", _completeness_text, "feature 'confidence'.completeness is not a number: 'high'"),
    ("constraints.json", _threshold_text, "distribution_constraints.comparison_threshold is not a number"),
    ("constraints.json", _config_list, "constraints.json.monitoring_config is not an object"),
    ("constraints.json", _domains_text, "'predicted_class' string_constraints.domains is not a list"),
]


def _corrupt(baseline_dir: Path, file: str, change: Callable[[Doc], None]) -> None:
    path = baseline_dir / file
    document = json.loads(path.read_text())
    change(document)
    path.write_text(json.dumps(document))


def test_the_real_baseline_loads(settings: Settings, baseline_dir: Path) -> None:
    baseline = load_baseline(settings, str(baseline_dir))
    assert baseline.classes == ["bicycle", "motorcycle"] and baseline.item_count > 0


@pytest.mark.parametrize(("file", "change", "words"), CASES, ids=[c[1].__name__ for c in CASES])
def test_a_baseline_of_the_wrong_shape_is_a_named_error(
    settings: Settings, baseline_dir: Path, file: str, change: Callable[[Doc], None], words: str
) -> None:
    _corrupt(baseline_dir, file, change)
    with pytest.raises(BaselineError, match="is not one Model Monitor can use") as caught:
        load_baseline(settings, str(baseline_dir))
    assert words in str(caught.value)


def test_a_monitoring_run_fails_with_the_named_error(
    settings: Settings, baseline_dir: Path, tmp_path: Path, shared_dir: Path
) -> None:
    _corrupt(baseline_dir, "constraints.json", _completeness_text)
    source = shared_dir / "fixtures" / "sagemaker-data-capture"
    args = ["monitor", "run", "--source", str(source), "--window", "all", "--baseline", str(baseline_dir)]
    result = runner.invoke(app, [*args, "-o", str(tmp_path / "reports")])
    assert result.exit_code != 0
    text = str(result.exception)
    assert "BaselineError" in text and "'confidence'.completeness is not a number" in text
    assert "InternalServerError" not in text
