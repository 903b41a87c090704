"""Fixtures of the training tests: a small prepared synthetic dataset in the store, and a trained job."""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sconeflow.config import Settings, load_settings
from sconeflow.store import LocalStore

TWO = ("bicycle", "motorcycle")
THREE = ("bicycle", "motorcycle", "bus")


def png_bytes(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def write_prepared(
    store: LocalStore,
    bucket: str,
    classes: Sequence[str] = TWO,
    n_train: int = 40,
    n_test: int = 15,
    seed: int = 0,
    tmp_dir: Path | None = None,
) -> None:
    """A prepared dataset (the data stage's layout) from a synthetic CIFAR tarball."""
    try:
        from sconeflow.data.prepare import prepare_dataset
    except ImportError:
        prepare_dataset = None
    if prepare_dataset is not None and tmp_dir is not None:
        from sconeflow.data.synthetic import make_cifar_tarball

        tarball = tmp_dir / f"synthetic-{seed}-{len(classes)}.tar.gz"
        make_cifar_tarball(tarball, classes=tuple(classes), n_train=n_train, n_test=n_test, seed=seed)
        settings = load_settings()
        prepare_dataset(settings, source=tarball, classes=list(classes), bucket=bucket, store=store)
        return
    from sconeflow.data.synthetic import synthetic_images

    rng = np.random.default_rng(seed)
    store.create_bucket(bucket, exist_ok=True)
    for split, per_class in (("train", n_train), ("test", n_test)):
        lines = []
        for label, name in enumerate(classes):
            for i, image in enumerate(synthetic_images(label, len(classes), per_class, rng)):
                filename = f"{name}_s_{split}{i:04d}.png"
                store.put_object(bucket, f"{split}/{filename}", png_bytes(image))
                lines.append(f"{len(lines)}\t{label}\t{filename}\n")
        store.put_object(bucket, f"{split}.lst", "".join(lines).encode())
    store.put_object(bucket, "classes.json", json.dumps({"classes": list(classes)}).encode())


@pytest.fixture
def prepared(settings: Settings, store: LocalStore, tmp_path: Path) -> LocalStore:
    write_prepared(store, settings.bucket, tmp_dir=tmp_path)
    return store
