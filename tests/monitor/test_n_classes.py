"""N classes: a real 3-class model, its baseline, class mix and column checks (stretch goal 1)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from sconeflow.cli import app
from sconeflow.config import Settings
from sconeflow.monitor.baseline import create_baseline, load_baseline
from sconeflow.monitor.violations import run_monitoring
from sconeflow.store import LocalStore
from tests.monitor.conftest import output_text, recent_start, write_capture_files

THREE = ("bicycle", "motorcycle", "bus")


def test_three_class_model_baseline_traffic_and_report(
    settings: Settings, store: LocalStore, tmp_path: Path
) -> None:
    from sconeflow.data.prepare import prepare_dataset
    from sconeflow.data.synthetic import make_cifar_tarball, synthetic_images
    from sconeflow.model.artifact import load_classifier
    from sconeflow.model.recipe import TrainConfig
    from sconeflow.model.train import train

    tarball = make_cifar_tarball(tmp_path / "three.tar.gz", classes=THREE, n_train=20, n_test=2, seed=4)
    prepare_dataset(settings, source=tarball, classes=list(THREE), store=store)
    config = TrainConfig(
        epochs=1, widths=(8, 16, 16), ensemble_size=1, distill=False, evaluate_test=False, val_fraction=0.0
    )
    job = train(settings, config, store=store)
    result = create_baseline(settings, dataset=job.name)
    baseline = load_baseline(settings)
    assert result.item_count == 60
    assert baseline.classes == list(THREE)
    names = [f["name"] for f in baseline.statistics["features"]]
    assert names[-4:] == ["prob_bicycle", "prob_motorcycle", "prob_bus", "predicted_class"]

    classifier = load_classifier(job.name, settings=settings)
    rng = np.random.default_rng(9)
    images = np.concatenate([synthetic_images(label, 3, 10, rng) for label in range(3)])
    probs = classifier.predict_proba(images)
    write_capture_files(store, settings.bucket, "three", images, probs, start=recent_start(30))
    run = run_monitoring(settings, endpoint="three")
    assert run.table is not None and run.table.classes == list(THREE)
    assert not any(v["constraint_check_type"].endswith("column_check") for v in run.violations)

    out = tmp_path / "report"
    cli = CliRunner().invoke(app, ["monitor", "report", "-e", "three", "-o", str(out)])
    assert cli.exit_code == 0, cli.output
    page = (out / "report.html").read_text()
    predicted = np.array(THREE)[probs.argmax(axis=1)]
    for name in THREE:
        count = int((predicted == name).sum())
        assert re.search(rf'<td>{name}</td><td class="num">{count}</td>', page)

    # A model answering with only two probabilities against the three-class baseline.
    two = [output_text([0.5, 0.5])] * 20
    write_capture_files(store, settings.bucket, "two", images[:20], [], start=recent_start(20), outputs=two)
    checks = {
        (v["feature_name"], v["constraint_check_type"])
        for v in run_monitoring(settings, endpoint="two").violations
    }
    assert ("prob_bus", "missing_column_check") in checks


def test_captures_without_a_baseline_name_n_columns_from_the_dataset_then_the_endpoint_model(
    settings: Settings, store: LocalStore, tmp_path: Path
) -> None:
    """`monitor captures` before any baseline: column names come from the prepared dataset's
    classes.json, and for a known endpoint from its model's classes (not class_0, class_1, ...)."""
    import json

    from sconeflow.data.prepare import prepare_dataset
    from sconeflow.data.synthetic import make_cifar_tarball, synthetic_images
    from sconeflow.endpoint.models import DataCaptureConfig
    from sconeflow.endpoint.registry import EndpointRegistry
    from sconeflow.model.artifact import build_artifact, read_artifact

    tarball = make_cifar_tarball(tmp_path / "three.tar.gz", classes=THREE, n_train=6, n_test=2, seed=4)
    prepare_dataset(settings, source=tarball, classes=list(THREE), store=store)
    rng = np.random.default_rng(3)
    images = np.concatenate([synthetic_images(label, 3, 2, rng) for label in range(3)])
    probs = np.eye(3)[[0, 0, 1, 1, 2, 2]] * 0.9 + 0.1 / 3
    write_capture_files(store, settings.bucket, "three", images, probs, start=recent_start(6))

    def rows() -> list[dict]:
        result = CliRunner().invoke(app, ["monitor", "captures", "-e", "three", "--format", "jsonl"])
        assert result.exit_code == 0, result.output
        return [json.loads(line) for line in result.output.splitlines()]

    listed = rows()
    assert [r["predictedClass"] for r in listed] == [
        "bicycle",
        "bicycle",
        "motorcycle",
        "motorcycle",
        "bus",
        "bus",
    ]
    assert {"prob_bicycle", "prob_motorcycle", "prob_bus"} <= set(listed[0])

    # An endpoint whose model names its classes otherwise wins over the dataset's classes.json.
    onnx_bytes, metadata = read_artifact(_tiny_artifact(settings, store, tmp_path))
    renamed = build_artifact(onnx_bytes, {**metadata, "classes": ["pedal", "engine", "coach"]})
    path = tmp_path / "renamed.tar.gz"
    path.write_bytes(renamed)
    registry = EndpointRegistry(settings)
    registry.add_model("three-model", path.as_uri(), str(path))
    registry.add_config("three-config", "three-model", DataCaptureConfig())
    registry.add_endpoint("three", "three-config")
    assert [r["predictedClass"] for r in rows()][::2] == ["pedal", "engine", "coach"]


def _tiny_artifact(settings: Settings, store: LocalStore, tmp_path: Path) -> bytes:
    from sconeflow.model.recipe import TrainConfig
    from sconeflow.model.train import train

    config = TrainConfig.tiny(epochs=1, evaluate_test=False, val_fraction=0.0)
    job = train(settings, config, store=store)
    bucket, _, key = job.model_artifacts.removeprefix("s3://").partition("/")
    return store.get_object(bucket, key)
