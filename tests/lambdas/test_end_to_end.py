"""The three functions chained by hand through `sconeflow lambda invoke`, against a REAL endpoint serving a
model from the training stage's quick ``train(...)`` on a tiny synthetic prepared dataset."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sconeflow.cli import app
from sconeflow.config import Settings
from sconeflow.lambda_runtime.registry import FunctionRegistry
from sconeflow.store import LocalStore

CLASSES = ["bicycle", "motorcycle"]
CLASSIC_KEY = "test/bicycle_s_000513.png"
ENDPOINT = "scones-e2e"


@pytest.fixture
def deployed(settings: Settings, store: LocalStore, tmp_path: Path) -> Iterator[str]:
    from sconeflow.data.prepare import prepare_dataset
    from sconeflow.data.synthetic import make_cifar_tarball
    from sconeflow.endpoint.registry import delete, deploy
    from sconeflow.model.recipe import TrainConfig
    from sconeflow.model.train import train

    tarball = make_cifar_tarball(tmp_path / "synthetic.tar.gz", classes=CLASSES, n_train=24, n_test=8, seed=0)
    prepare_dataset(settings, source=tarball, classes=CLASSES, store=store)
    config = TrainConfig(
        epochs=2,
        widths=(8, 16, 16),
        ensemble_size=1,
        distill=False,
        evaluate_test=False,
        val_fraction=0.0,
        seed=0,
    )
    job = train(settings, config, store=store)
    bicycle = next(i.key for i in store.iter_objects(settings.bucket, "test/") if "bicycle" in i.key)
    store.copy_object(settings.bucket, bicycle, settings.bucket, CLASSIC_KEY)
    deploy(settings, job.model_artifacts, name=ENDPOINT, capture_percent=100)
    try:
        yield settings.bucket
    finally:
        delete(settings, ENDPOINT)


def _invoke(runner: CliRunner, name: str, payload: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["lambda", "invoke", name, "--payload", payload])
    return result.exit_code, result.stdout, result.stderr


def test_three_functions_chained_by_hand_with_a_real_endpoint(
    deployed: str, settings: Settings, store: LocalStore, tmp_path: Path
) -> None:
    runner = CliRunner()
    assert (
        runner.invoke(
            app, ["lambda", "update", "classify_image", "--env", f"ENDPOINT_NAME={ENDPOINT}"]
        ).exit_code
        == 0
    )
    classic = json.dumps({"image_data": "", "s3_bucket": deployed, "s3_key": CLASSIC_KEY})

    code, out, err = _invoke(runner, "serialize_image_data", classic)
    assert code == 0, err
    serialized = json.loads(out)
    assert serialized["statusCode"] == 200 and serialized["body"]["image_data"]
    (tmp_path / "serialized.json").write_text(out)

    code, out, err = _invoke(runner, "classify_image", f"@{tmp_path / 'serialized.json'}")
    assert code == 0, err
    classified = json.loads(out)
    inferences = classified["body"]["inferences"]
    assert len(inferences) == 2 and abs(sum(inferences) - 1.0) < 1e-4
    assert classified["body"]["s3_key"] == CLASSIC_KEY

    # the confident image passes with a threshold just under its confidence
    threshold = round(max(inferences) - 0.001, 6)
    runner.invoke(app, ["lambda", "update", "filter_inference", "--env", f"THRESHOLD={threshold}"])
    code, out, err = _invoke(runner, "filter_inference", json.dumps(classified))
    assert code == 0, err
    assert json.loads(out) == {"statusCode": 200, "body": classified["body"]}

    # a low-confidence input (a flat grey picture, relative to a threshold above its confidence) fails
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), (128, 128, 128)).save(buffer, format="PNG")
    store.put_object(deployed, "test/grey.png", buffer.getvalue(), content_type="image/png")
    code, out, err = _invoke(
        runner, "serialize_image_data", json.dumps({"s3_bucket": deployed, "s3_key": "test/grey.png"})
    )
    code, out, err = _invoke(runner, "classify_image", out)
    assert code == 0, err
    grey = json.loads(out)
    grey_max = max(grey["body"]["inferences"])
    FunctionRegistry(settings).update(
        "filter_inference", environment={"THRESHOLD": str(min(1.0, grey_max + 0.01))}
    )
    code, out, err = _invoke(runner, "filter_inference", out)
    assert code == 1
    error = json.loads(out)
    assert error["errorType"] == "ThresholdConfidenceNotMet"
    assert error["errorMessage"].startswith("THRESHOLD_CONFIDENCE_NOT_MET: max confidence ")
    assert "ThresholdConfidenceNotMet" in err
    assert os.environ.get("AWS_ENDPOINT_URL") is None  # the runtime found its own way to the gateway
