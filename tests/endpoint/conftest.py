"""Fixtures of the endpoint tests: one REAL model artifact (quick training on a tiny synthetic prepared
dataset, trained once per test session), its prepared test images, and a running endpoint."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sconeflow.config import Settings, load_settings
from sconeflow.store import LocalStore

CLASSES = ("bicycle", "motorcycle")


@dataclass(frozen=True)
class TrainedModel:
    artifact: Path  # a model.tar.gz on disk
    test_pngs: list[tuple[str, bytes]]  # (key, png bytes) of the prepared test split
    classes: tuple[str, ...]


def _train_quick(home: Path, workdir: Path, seed: int, classes: tuple[str, ...] = CLASSES) -> TrainedModel:
    from sconeflow.data.prepare import prepare_dataset
    from sconeflow.data.synthetic import make_cifar_tarball
    from sconeflow.model.recipe import TrainConfig
    from sconeflow.model.train import train

    settings = load_settings(home)
    settings.ensure_dirs()
    store = LocalStore(settings.buckets_dir)
    tarball = make_cifar_tarball(
        workdir / "synthetic.tar.gz", classes=classes, n_train=24, n_test=8, seed=seed
    )
    prepare_dataset(settings, source=tarball, classes=list(classes), store=store)
    config = TrainConfig(
        epochs=2,
        widths=(8, 16, 16),
        ensemble_size=1,
        distill=False,
        evaluate_test=False,
        val_fraction=0.0,
        seed=seed,
    )
    job = train(settings, config, store=store)
    bucket, _, key = job.model_artifacts.removeprefix("s3://").partition("/")
    artifact = workdir / "model.tar.gz"
    artifact.write_bytes(store.get_object(bucket, key))
    tests = [
        (info.key, store.get_object(settings.bucket, info.key))
        for info in store.iter_objects(settings.bucket, "test/")
    ]
    return TrainedModel(artifact, tests, classes)


@pytest.fixture(scope="session")
def trained_model(tmp_path_factory: pytest.TempPathFactory) -> TrainedModel:
    """A real artifact from the training stage's quick ``train(...)`` (trained once per session)."""
    workdir = tmp_path_factory.mktemp("endpoint-model")
    old = os.environ.get("SCONEFLOW_HOME")
    try:
        os.environ["SCONEFLOW_HOME"] = str(workdir / "home")
        return _train_quick(workdir / "home", workdir, seed=0)
    finally:
        if old is None:
            os.environ.pop("SCONEFLOW_HOME", None)
        else:
            os.environ["SCONEFLOW_HOME"] = old


@pytest.fixture(scope="session")
def second_model(tmp_path_factory: pytest.TempPathFactory, trained_model: TrainedModel) -> Path:
    """A second, different artifact (other seed) for model-swap tests."""
    workdir = tmp_path_factory.mktemp("endpoint-model-2")
    old = os.environ.get("SCONEFLOW_HOME")
    try:
        os.environ["SCONEFLOW_HOME"] = str(workdir / "home")
        return _train_quick(workdir / "home", workdir, seed=1).artifact
    finally:
        if old is None:
            os.environ.pop("SCONEFLOW_HOME", None)
        else:
            os.environ["SCONEFLOW_HOME"] = old


@pytest.fixture
def endpoint(settings: Settings, trained_model: TrainedModel) -> Iterator[tuple[Settings, str, str]]:
    """A deployed endpoint (100% capture) in a fresh home: (settings, name, url). Deleted afterwards."""
    from sconeflow.endpoint.registry import delete, deploy

    view = deploy(settings, str(trained_model.artifact), name="test-endpoint", capture_percent=100)
    assert view.url is not None
    yield settings, view.endpoint.name, view.url
    try:
        delete(settings, view.endpoint.name)
    except Exception:
        pass


@pytest.fixture(scope="session")
def three_class_model(tmp_path_factory: pytest.TempPathFactory) -> TrainedModel:
    """An artifact for three classes (the stretch issue's N-class path)."""
    workdir = tmp_path_factory.mktemp("endpoint-model-3")
    old = os.environ.get("SCONEFLOW_HOME")
    try:
        os.environ["SCONEFLOW_HOME"] = str(workdir / "home")
        return _train_quick(workdir / "home", workdir, seed=2, classes=("bicycle", "motorcycle", "bus"))
    finally:
        if old is None:
            os.environ.pop("SCONEFLOW_HOME", None)
        else:
            os.environ["SCONEFLOW_HOME"] = old
