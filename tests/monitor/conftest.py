"""Fixtures of the monitoring tests.

``monitor_model`` (once per session): a prepared synthetic dataset, a REAL model from the training stage's
quick ``train(...)``, and the baseline (statistics.json + constraints.json) that ``create_baseline`` wrote
for it, copied to a folder. Helpers write capture files in AWS's format (AWS's format, not one of our
components) with outputs computed by that real model.
"""

from __future__ import annotations

import base64
import io
import os
import shutil
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sconeflow.config import Settings, load_settings
from sconeflow.store import LocalStore

CLASSES = ("bicycle", "motorcycle")
N_TRAIN = 100  # per class
FIXTURES = "fixtures/sagemaker-data-capture"


@dataclass(frozen=True)
class MonitorModel:
    artifact: Path  # model.tar.gz
    baseline_dir: Path  # statistics.json + constraints.json made by create_baseline over the train split
    train_images: np.ndarray  # the baseline's images, uint8 N x 32 x 32 x 3
    classes: tuple[str, ...]
    home: Path  # the session home holding the prepared dataset and the training job


def png_bytes(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def _with_home(home: Path):  # type: ignore[no-untyped-def]
    class _Ctx:
        def __enter__(self) -> Settings:
            self.old = os.environ.get("SCONEFLOW_HOME")
            os.environ["SCONEFLOW_HOME"] = str(home)
            settings = load_settings(home)
            settings.ensure_dirs()
            return settings

        def __exit__(self, *exc: object) -> None:
            if self.old is None:
                os.environ.pop("SCONEFLOW_HOME", None)
            else:
                os.environ["SCONEFLOW_HOME"] = self.old

    return _Ctx()


@pytest.fixture(scope="session")
def monitor_model(tmp_path_factory: pytest.TempPathFactory) -> MonitorModel:
    from sconeflow.data.prepare import prepare_dataset
    from sconeflow.data.synthetic import make_cifar_tarball
    from sconeflow.model.dataload import load_split_data
    from sconeflow.model.recipe import TrainConfig
    from sconeflow.model.train import train
    from sconeflow.monitor.baseline import create_baseline

    workdir = tmp_path_factory.mktemp("monitor-model")
    home = workdir / "home"
    with _with_home(home) as settings:
        store = LocalStore(settings.buckets_dir)
        tarball = make_cifar_tarball(
            workdir / "synthetic.tar.gz", classes=CLASSES, n_train=N_TRAIN, n_test=10
        )
        prepare_dataset(settings, source=tarball, classes=list(CLASSES), store=store)
        config = TrainConfig(
            epochs=2,
            widths=(8, 16, 16),
            ensemble_size=1,
            distill=False,
            evaluate_test=False,
            val_fraction=0.0,
        )
        job = train(settings, config, store=store)
        bucket, _, key = job.model_artifacts.removeprefix("s3://").partition("/")
        artifact = workdir / "model.tar.gz"
        artifact.write_bytes(store.get_object(bucket, key))
        baseline_dir = workdir / "baseline"
        create_baseline(settings, dataset=settings.bucket, model=str(artifact), output=str(baseline_dir))
        images = load_split_data(store, settings.bucket, "train").images
    return MonitorModel(artifact, baseline_dir, images, CLASSES, home)


@pytest.fixture
def baseline_dir(monitor_model: MonitorModel, tmp_path: Path) -> Path:
    """A private copy of the session baseline."""
    target = tmp_path / "baseline"
    shutil.copytree(monitor_model.baseline_dir, target)
    return target


@pytest.fixture(scope="session")
def classifier(monitor_model: MonitorModel):  # type: ignore[no-untyped-def]
    from sconeflow.model.artifact import load_classifier

    return load_classifier(monitor_model.artifact.read_bytes())


def baseline_like_images(count_per_class: int, seed: int) -> np.ndarray:
    """Fresh images from the same generator (same distribution) as the baseline's dataset."""
    from sconeflow.data.synthetic import synthetic_images

    rng = np.random.default_rng(seed)
    parts = [synthetic_images(label, len(CLASSES), count_per_class, rng) for label in range(len(CLASSES))]
    images = np.concatenate(parts)
    return images[rng.permutation(len(images))]


def output_text(probabilities: Sequence[float]) -> str:
    """The model container's JSON body, as the capture stores it verbatim (``"[0.93, 0.06]"``)."""
    return "[" + ", ".join(repr(float(p)) for p in probabilities) + "]"


def write_capture_files(
    store: LocalStore,
    bucket: str,
    endpoint: str,
    images: np.ndarray,
    probabilities: np.ndarray | Sequence[Sequence[float]],
    *,
    start: datetime,
    step: timedelta = timedelta(seconds=2),
    prefix: str = "data_capture",
    per_file: int = 25,
    outputs: Sequence[str] | None = None,
    inputs: Sequence[bytes] | None = None,
) -> list[str]:
    """Capture files in AWS's layout and byte format; one file per ``per_file`` records."""
    from sconeflow.monitor.captures import capture_key, format_record

    store.create_bucket(bucket, exist_ok=True)
    keys = []
    count = len(images) if inputs is None else len(inputs)
    for first in range(0, count, per_file):
        opened = start + step * first
        lines = []
        for i in range(first, min(first + per_file, count)):
            data = inputs[i] if inputs is not None else png_bytes(images[i])
            lines.append(
                format_record(
                    input_b64=base64.b64encode(data).decode("ascii"),
                    output_text=outputs[i] if outputs is not None else output_text(probabilities[i]),
                    event_id=str(uuid.uuid4()),
                    inference_time=start + step * i,
                )
            )
        key = f"{prefix}/{capture_key(endpoint, opened, str(uuid.uuid4()))}"
        store.put_object(bucket, key, "".join(lines).encode("utf-8"))
        keys.append(key)
    return keys


def recent_start(count: int, step: timedelta = timedelta(seconds=2)) -> datetime:
    """A start time such that ``count`` records end a little before now (inside a 1h window)."""
    return datetime.now(UTC).replace(microsecond=0) - step * count - timedelta(minutes=2)
