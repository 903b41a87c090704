"""One deployed 3-class model for every stretch test: a synthetic CIFAR-format tarball with well-separated
classes, prepared through ``sconeflow data prepare --classes``, a quick real training job, a real endpoint
with 100% data capture, and the Lambdas pointed at it."""

from __future__ import annotations

import io
import json
import os
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from sconeflow.cli import app
from sconeflow.config import Settings, load_settings
from sconeflow.store import LocalStore

CLASSES = ("bicycle", "motorcycle", "bus")
N_TRAIN, N_TEST = 40, 6
REPO = Path(__file__).resolve().parents[2]
BATCH_WORKFLOW = REPO / "workflow" / "step-function-batch.json"
WORKFLOW = REPO / "workflow" / "step-function.json"


@dataclass(frozen=True)
class Deployed:
    settings: Settings
    store: LocalStore
    job: str
    endpoint: str
    tarball: Path
    threshold: float
    confident_keys: list[str]  # test images at or above the threshold
    unsure_key: str  # a featureless grey image the model is unsure about


def probabilities(settings: Settings, endpoint: str, png: bytes) -> tuple[list[float], list[str]]:
    from sconeflow.endpoint.registry import resolve_endpoint_url

    url = resolve_endpoint_url(settings, endpoint)
    request = urllib.request.Request(
        f"{url}/invocations", data=png, headers={"Content-Type": "image/png"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return [float(v) for v in json.loads(response.read())], json.loads(
            response.headers["X-Sconeflow-Classes"]
        )


def grey_png() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((32, 32, 3), 128, np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="package")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    """Set up once for the stretch tests, torn down (endpoint stopped) when they are done."""
    from sconeflow.endpoint.registry import delete

    workdir = tmp_path_factory.mktemp("stretch")
    names = ("SCONEFLOW_HOME", *_AWS_ENV)
    saved = {k: os.environ.get(k) for k in names}
    try:
        os.environ["SCONEFLOW_HOME"] = str(workdir / "home")
        os.environ.update(_AWS_ENV)
        result = _set_up(workdir)
    finally:  # the environment is set per test by ``_stretch_home``, not for the whole session
        _restore(saved)
    try:
        yield result
    finally:
        from sconeflow.lambda_runtime import LambdaRuntime

        try:
            delete(result.settings, result.endpoint)
        finally:
            LambdaRuntime(result.settings).close()


@pytest.fixture(autouse=True)
def _stretch_home(deployed: Deployed, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCONEFLOW_HOME", str(deployed.settings.home))
    for key, value in _AWS_ENV.items():
        monkeypatch.setenv(key, value)
    for name in ("SCONEFLOW_STORE", "SCONEFLOW_BUCKET", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)


_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def _restore(saved: dict[str, str | None]) -> None:
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def _set_up(workdir: Path) -> Deployed:
    from sconeflow.data.synthetic import make_cifar_tarball
    from sconeflow.endpoint.registry import delete, deploy
    from sconeflow.lambda_runtime.registry import FunctionRegistry
    from sconeflow.model.recipe import TrainConfig
    from sconeflow.model.train import train

    settings = load_settings(workdir / "home")
    settings.ensure_dirs()
    store = LocalStore(settings.buckets_dir)
    tarball = make_cifar_tarball(
        workdir / "three.tar.gz", classes=CLASSES, n_train=N_TRAIN, n_test=N_TEST, seed=0, distractors=5
    )
    prepared = CliRunner().invoke(
        app, ["data", "prepare", "--source", str(tarball), "--classes", ",".join(CLASSES)]
    )
    assert prepared.exit_code == 0, prepared.output
    config = TrainConfig.tiny(epochs=6, label_smoothing=0.0, augment=False, val_fraction=0.0, seed=0)
    job = train(settings, config, store=store)
    assert job.status == "Completed", job
    view = deploy(settings, job.model_artifacts, name="stretch-endpoint", capture_percent=100)
    try:
        scored = []
        for info in store.iter_objects(settings.bucket, "test/"):
            png = store.get_object(settings.bucket, info.key)
            scored.append((max(probabilities(settings, view.endpoint.name, png)[0]), info.key))
        store.put_object(settings.bucket, "incoming/grey.png", grey_png(), content_type="image/png")
        unsure = max(probabilities(settings, view.endpoint.name, grey_png())[0])
        best = max(p for p, _ in scored)
        assert best > unsure + 0.01, (scored, unsure)
        threshold = min(unsure + 0.01, (best + unsure) / 2)
        confident = [key for p, key in scored if p >= threshold]
        functions = FunctionRegistry(settings)
        functions.update("classify_image", environment={"ENDPOINT_NAME": view.endpoint.name})
        functions.update("filter_inference", environment={"THRESHOLD": f"{threshold:.6f}"})
    except BaseException:
        delete(settings, view.endpoint.name)
        raise
    return Deployed(
        settings, store, job.name, view.endpoint.name, tarball, threshold, confident, "incoming/grey.png"
    )
