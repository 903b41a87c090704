"""Baseline: statistics.json / constraints.json in Model Monitor's schema, from a real model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from sconeflow.cli import app
from sconeflow.config import Settings
from sconeflow.monitor.baseline import (
    BaselineError,
    BaselineNotFound,
    create_baseline,
    kll_sketch,
    load_baseline,
    sketch_points,
)
from sconeflow.store import LocalStore
from tests.monitor.conftest import CLASSES, N_TRAIN, MonitorModel


def _grey(images: np.ndarray) -> np.ndarray:
    return images[..., 0] * 0.299 + images[..., 1] * 0.587 + images[..., 2] * 0.114


def test_statistics_schema_and_numbers(monitor_model: MonitorModel, classifier) -> None:  # type: ignore[no-untyped-def]
    stats = json.loads((monitor_model.baseline_dir / "statistics.json").read_text())
    images = monitor_model.train_images.astype(np.float64)
    n = len(images)
    assert n == N_TRAIN * len(CLASSES)
    assert stats["version"] == 0.0
    assert stats["dataset"] == {"item_count": n}
    features = {f["name"]: f for f in stats["features"]}
    image = ["image_width", "image_height", "brightness_r", "brightness_g", "brightness_b", "contrast"]
    outputs = ["sharpness", "confidence", "prob_bicycle", "prob_motorcycle", "predicted_class"]
    assert list(features) == image + outputs
    assert features["image_width"]["inferred_type"] == "Integral"
    assert features["contrast"]["inferred_type"] == "Fractional"
    # Independent computations over the same images.
    probs = classifier.predict_proba(monitor_model.train_images)
    expected = {
        "brightness_r": images[..., 0].mean(axis=(1, 2)),
        "brightness_b": images[..., 2].mean(axis=(1, 2)),
        "contrast": np.array([g.std() for g in _grey(images)]),
        "confidence": probs.max(axis=1).astype(np.float64),
        "prob_motorcycle": probs[:, 1].astype(np.float64),
    }
    for name, values in expected.items():
        block = features[name]["numerical_statistics"]
        assert block["common"] == {"num_present": n, "num_missing": 0}
        assert block["mean"] == pytest.approx(values.mean(), rel=1e-5)
        assert block["sum"] == pytest.approx(values.sum(), rel=1e-5)
        assert block["std_dev"] == pytest.approx(values.std(), rel=1e-4)
        assert block["min"] == pytest.approx(values.min(), rel=1e-5)
        assert block["max"] == pytest.approx(values.max(), rel=1e-5)
        kll = block["distribution"]["kll"]
        assert len(kll["buckets"]) == 10
        assert sum(b["count"] for b in kll["buckets"]) == n
        assert kll["buckets"][0]["lower_bound"] == pytest.approx(values.min(), rel=1e-5)
        assert kll["buckets"][-1]["upper_bound"] == pytest.approx(values.max(), rel=1e-5)
        assert kll["sketch"]["parameters"] == {"c": 0.64, "k": 2048.0}
        assert len(kll["sketch"]["data"][0]) == n
    predicted = features["predicted_class"]
    assert predicted["inferred_type"] == "String"
    counts = {
        b["value"]: b["count"]
        for b in predicted["string_statistics"]["distribution"]["categorical"]["buckets"]
    }
    names = np.array(CLASSES)[probs.argmax(axis=1)]
    assert counts == {c: int((names == c).sum()) for c in set(names)}


def test_constraints_suggested(monitor_model: MonitorModel) -> None:
    constraints = json.loads((monitor_model.baseline_dir / "constraints.json").read_text())
    assert constraints["version"] == 0.0
    for feature in constraints["features"]:
        assert feature["completeness"] == 1.0
        if feature["inferred_type"] in ("Integral", "Fractional"):
            assert feature["num_constraints"] == {"is_non_negative": True}
    predicted = next(f for f in constraints["features"] if f["name"] == "predicted_class")
    assert set(predicted["string_constraints"]["domains"]) <= set(CLASSES)
    config = constraints["monitoring_config"]
    assert config["evaluate_constraints"] == "Enabled"
    assert config["distribution_constraints"]["comparison_threshold"] == 0.1
    # Spark-style pretty printing: "key" : value
    assert '"version" : 0.0' in (monitor_model.baseline_dir / "constraints.json").read_text()


def test_kll_sketch_compacts_large_inputs() -> None:
    values = np.sort(np.random.default_rng(0).normal(size=100_000))
    sketch = kll_sketch(values)
    assert sum(len(level) for level in sketch) <= 2048
    points, weights = sketch_points(sketch)
    assert weights.sum() == pytest.approx(len(values), rel=0.01)
    assert np.median(np.repeat(points, weights.astype(int))) == pytest.approx(0.0, abs=0.02)


def test_cli_baseline_into_the_store_and_from_a_prefix(
    settings: Settings, store: LocalStore, monitor_model: MonitorModel, tmp_path: Path
) -> None:
    from sconeflow.data.prepare import prepare_dataset
    from sconeflow.data.synthetic import make_cifar_tarball

    tarball = make_cifar_tarball(tmp_path / "d.tar.gz", classes=CLASSES, n_train=10, n_test=2, seed=3)
    prepare_dataset(settings, source=tarball, classes=list(CLASSES), store=store)
    with pytest.raises(BaselineError, match="which model"):
        create_baseline(settings, dataset=settings.bucket)  # no --model and no training job here
    result = CliRunner().invoke(
        app, ["monitor", "baseline", "--dataset", settings.bucket, "--model", str(monitor_model.artifact)]
    )
    assert result.exit_code == 0, result.output
    baseline = load_baseline(settings)
    assert baseline.item_count == 20
    assert baseline.classes == list(CLASSES)
    assert store.head_object(settings.bucket, "monitoring/baseline/statistics.json").size > 0
    # A prefix of PNGs works too.
    result = create_baseline(
        settings,
        dataset=f"s3://{settings.bucket}/test",
        model=str(monitor_model.artifact),
        output=str(tmp_path / "b"),
    )
    assert result.item_count == 4


def test_baseline_errors(settings: Settings, monitor_model: MonitorModel, tmp_path: Path) -> None:
    with pytest.raises(BaselineError, match="does not exist"):
        create_baseline(settings, dataset="no-such-bucket", model=str(monitor_model.artifact))
    with pytest.raises(BaselineNotFound):
        load_baseline(settings, str(tmp_path / "nothing"))
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "statistics.json").write_text("{not json")
    (tmp_path / "bad" / "constraints.json").write_text("{}")
    with pytest.raises(BaselineError, match="not valid JSON"):
        load_baseline(settings, str(tmp_path / "bad"))
    result = CliRunner().invoke(app, ["monitor", "baseline", "--dataset", "no-such-bucket", "-m", "x"])
    assert result.exit_code != 0


def test_baseline_from_a_training_job_name(monitor_model: MonitorModel, tmp_path: Path) -> None:
    from sconeflow.model.jobs import TrainingJobs
    from tests.monitor.conftest import _with_home

    with _with_home(monitor_model.home) as session_settings:
        job = TrainingJobs(session_settings).list()[0]
        result = create_baseline(session_settings, dataset=job.name, output=str(tmp_path / "b"))
        latest = create_baseline(
            session_settings, dataset=session_settings.bucket, output=str(tmp_path / "c")
        )
    assert result.item_count == N_TRAIN * len(CLASSES)
    assert job.name in result.dataset
    assert latest.model == result.model  # no --model: the latest completed training job
    assert result.classes == list(CLASSES)


def test_files_are_written_like_the_spark_container(monitor_model: MonitorModel) -> None:
    """Jackson's default pretty printer, as in the real Model Monitor files."""
    text = (monitor_model.baseline_dir / "constraints.json").read_text()
    assert text.startswith('{\n  "version" : 0.0,\n  "features" : [ {\n    "name" : "image_width",\n')
    assert '\n  }, {\n    "name" : "image_height",' in text
    assert '"num_constraints" : {\n      "is_non_negative" : true\n    }' in text
    assert not text.endswith("\n")
    stats = (monitor_model.baseline_dir / "statistics.json").read_text()
    assert '"parameters" : {\n' in stats and '"c" : 0.64,' in stats and '"k" : 2048.0' in stats
    assert json.loads(stats)["dataset"]["item_count"] == N_TRAIN * len(CLASSES)


def test_java_double_formatting() -> None:
    from sconeflow.monitor.jsonfmt import jackson_dumps, java_double

    assert [java_double(x) for x in (1.0, 0.25, 3.2e-4, 1e7, 99.64592817400101, 0.001, -2.5e-9)] == [
        "1.0", "0.25", "3.2E-4", "1.0E7", "99.64592817400101", "0.001", "-2.5E-9",
    ]  # fmt: skip
    assert jackson_dumps({"a": [], "b": {}, "c": [[1.0], [True, None]], "d": "é"}) == (
        '{\n  "a" : [ ],\n  "b" : { },\n  "c" : [ [ 1.0 ], [ true, null ] ],\n  "d" : "é"\n}'
    )
