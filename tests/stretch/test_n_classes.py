"""More classes (stretch goal 1) end to end on synthetic CIFAR-format data: ``data prepare --classes`` and
``--coarse vehicles_1,vehicles_2``, training, evaluation (per-class metrics, an N x N confusion matrix),
the endpoint (N probabilities in class order, class names in model.json and in a response header).
Monitoring's class mix for N classes: ``test_monitor_drift.py``."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import numpy as np
import pytest
from botocore.config import Config
from typer.testing import CliRunner

from sconeflow.cli import app
from sconeflow.config import Settings
from sconeflow.data.cifar_names import COARSE_GROUPS
from sconeflow.store import LocalStore

from .conftest import CLASSES, N_TEST, N_TRAIN, Deployed

runner = CliRunner()
VEHICLES = [*COARSE_GROUPS["vehicles_1"], *COARSE_GROUPS["vehicles_2"]]


def test_three_class_dataset_model_and_evaluation(deployed: Deployed, tmp_path: Path) -> None:
    from sconeflow.model.artifact import load_classifier

    settings, store = deployed.settings, deployed.store
    document = json.loads(store.get_object(settings.bucket, "classes.json"))
    assert document["classes"] == list(CLASSES)
    manifest = store.get_object(settings.bucket, "train.lst").decode().splitlines()
    assert len(manifest) == 3 * N_TRAIN and {line.split("\t")[1] for line in manifest} == {"0", "1", "2"}

    classifier = load_classifier(deployed.job, settings=settings)
    assert classifier.classes == list(CLASSES)
    assert classifier.metadata["classes"] == list(CLASSES) and classifier.metadata["num_classes"] == 3

    result = runner.invoke(
        app, ["evaluate", "--model", deployed.job, "--json", "--png", str(tmp_path / "eval.png")]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["classes"] == list(CLASSES) and list(report["per_class"]) == list(CLASSES)
    matrix = np.array(report["confusion_matrix"]["matrix"])
    assert matrix.shape == (3, 3) and matrix.sum(axis=1).tolist() == [N_TEST] * 3
    assert report["accuracy"] >= 0.8  # well-separated synthetic classes
    for metrics in report["per_class"].values():
        assert metrics["support"] == N_TEST and 0.0 <= metrics["f1"] <= 1.0
    assert (tmp_path / "eval.png").read_bytes().startswith(b"\x89PNG")

    bus_key = next(i.key for i in store.iter_objects(settings.bucket, "test/") if "bus" in i.key)
    image = tmp_path / "bus.png"
    image.write_bytes(store.get_object(settings.bucket, bus_key))
    predicted = runner.invoke(app, ["predict", str(image), "--model", deployed.job, "--json"])
    assert predicted.exit_code == 0, predicted.output
    line = json.loads(predicted.stdout)
    assert list(line["probabilities"]) == list(CLASSES) and line["class"] in CLASSES


def test_endpoint_returns_n_probabilities_in_class_order(deployed: Deployed) -> None:
    from sconeflow.data.dataset import load_split
    from sconeflow.endpoint.registry import resolve_endpoint_url

    settings = deployed.settings
    client = boto3.client(
        "sagemaker-runtime",
        endpoint_url=resolve_endpoint_url(settings, deployed.endpoint),
        region_name=settings.region,
        config=Config(retries={"max_attempts": 1}),
    )
    split = load_split(deployed.store, settings.bucket, "test")
    correct = 0
    for key, label in zip(split.keys, split.labels, strict=True):
        response = client.invoke_endpoint(
            EndpointName=deployed.endpoint,
            ContentType="image/png",
            Body=deployed.store.get_object(settings.bucket, key),
        )
        probs = json.loads(response["Body"].read())
        assert len(probs) == 3 and sum(probs) == pytest.approx(1.0, abs=1e-5)
        header = response["ResponseMetadata"]["HTTPHeaders"]["x-sconeflow-classes"]
        assert json.loads(header) == list(CLASSES)
        correct += int(np.argmax(probs) == label)
    assert correct >= 0.8 * len(split.keys)
    described = runner.invoke(app, ["endpoint", "describe", deployed.endpoint])
    assert described.exit_code == 0, described.output


@pytest.mark.timeout(300)
def test_coarse_vehicle_groups_prepare_train_and_evaluate_ten_classes(
    settings: Settings, store: LocalStore, tmp_path: Path
) -> None:
    from sconeflow.data.synthetic import make_cifar_tarball
    from sconeflow.model.artifact import load_classifier
    from sconeflow.model.recipe import TrainConfig
    from sconeflow.model.train import train

    tarball = make_cifar_tarball(
        tmp_path / "vehicles.tar.gz", classes=VEHICLES, n_train=12, n_test=2, seed=1, distractors=4
    )
    result = runner.invoke(
        app, ["data", "prepare", "--source", str(tarball), "--coarse", "vehicles_1,vehicles_2"]
    )
    assert result.exit_code == 0, result.output
    document = json.loads(store.get_object(settings.bucket, "classes.json"))
    assert document["classes"] == VEHICLES and len(VEHICLES) == 10
    # --classes first, then each coarse group's classes in CIFAR order, without duplicates
    mixed = runner.invoke(
        app,
        [
            "data",
            "prepare",
            "--source",
            str(tarball),
            "--classes",
            "tank,bus",
            "--coarse",
            "vehicles_1",
            "--bucket",
            "mixed",
        ],
    )
    assert mixed.exit_code == 0, mixed.output
    assert json.loads(store.get_object("mixed", "classes.json"))["classes"] == [
        "tank",
        "bus",
        "bicycle",
        "motorcycle",
        "pickup_truck",
        "train",
    ]
    info = runner.invoke(app, ["data", "info"])
    assert info.exit_code == 0 and all(name in info.stdout for name in VEHICLES)
    unknown = runner.invoke(app, ["data", "prepare", "--source", str(tarball), "--coarse", "vehicles_3"])
    assert unknown.exit_code == 1 and type(unknown.exception).__name__ == "UnknownClass"

    job = train(settings, TrainConfig.tiny(epochs=4, augment=False, val_fraction=0.0, seed=0), store=store)
    assert job.status == "Completed"
    classifier = load_classifier(job.name, settings=settings)
    assert classifier.classes == VEHICLES
    evaluated = runner.invoke(
        app, ["evaluate", "--model", job.name, "--json", "--png", str(tmp_path / "e.png")]
    )
    assert evaluated.exit_code == 0, evaluated.output
    report = json.loads(evaluated.stdout)
    assert np.array(report["confusion_matrix"]["matrix"]).shape == (10, 10)
    assert list(report["per_class"]) == VEHICLES and report["n"] == 20
