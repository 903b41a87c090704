"""Small CIFAR-100 python-format tarballs with well-separated, learnable classes, for tests and demos.

The tarball mimics the official one exactly: ``cifar-100-python/{meta,train,test}``, protocol-2
pickles of dicts with ``bytes`` keys (``_codecs.encode`` for byte strings, as Python 3 writes them),
uint8 ``(N, 3072)`` ``data``, the 100 fine and 20 coarse label names in CIFAR-100 order. Each class
gets its own colour and stripe orientation plus noise, so a tiny model separates them in seconds.
Distractor rows (uniform noise with other labels) can be added for the ETL to filter out.
"""

from __future__ import annotations

import colorsys
import gzip
import io
import os
import pickle
import tarfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from sconeflow.data.cifar_names import COARSE_LABEL_NAMES, FINE_LABEL_NAMES, FINE_TO_COARSE
from sconeflow.data.errors import UnknownClass
from sconeflow.data.transform import SIDE, images_to_rows

TAR_MTIME = 1266000000


def class_pattern(index: int, n_classes: int) -> np.ndarray:
    """The noiseless (32, 32, 3) float pattern of class ``index``: a hue and a stripe orientation."""
    hue = (index * 0.618034) % 1.0
    base = np.array(colorsys.hsv_to_rgb(hue, 0.75, 0.85)) * 255.0
    angle = np.pi * index / max(n_classes, 1)
    freq = 2.0 + (index % 3)
    y, x = np.mgrid[0:SIDE, 0:SIDE] / SIDE
    stripes = np.sin(2 * np.pi * freq * (x * np.cos(angle) + y * np.sin(angle)))
    return base[None, None, :] * (0.7 + 0.3 * stripes[..., None])


def synthetic_images(label_index: int, n_classes: int, count: int, rng: np.random.Generator) -> np.ndarray:
    pattern = class_pattern(label_index, n_classes)
    noise = rng.normal(0.0, 18.0, size=(count, SIDE, SIDE, 3))
    shift = rng.uniform(-20.0, 20.0, size=(count, 1, 1, 1))
    return np.clip(pattern[None] + noise + shift, 0, 255).astype(np.uint8)


def cifar_pickle(obj: object) -> bytes:
    """Pickle like the CIFAR-100 files: protocol 2."""
    return pickle.dumps(obj, protocol=2)


def _split(
    split: str,
    classes: Sequence[str],
    per_class: int,
    distractors: int,
    rng: np.random.Generator,
    counter: list[int],
) -> dict[bytes, object]:
    images, fine, names = [], [], []
    for index, name in enumerate(classes):
        images.append(synthetic_images(index, len(classes), per_class, rng))
        fine += [FINE_LABEL_NAMES.index(name)] * per_class
        for _ in range(per_class):
            counter[0] += 1
            names.append(f"{name}_s_{counter[0]:06d}.png")
    others = [i for i, n in enumerate(FINE_LABEL_NAMES) if n not in classes]
    if distractors:
        images.append(rng.integers(0, 256, size=(distractors, SIDE, SIDE, 3), dtype=np.uint8))
        fine += [int(v) for v in rng.choice(others, size=distractors)]
        names += [f"synthetic_noise_{split}_{i:05d}.png" for i in range(distractors)]
    rows = images_to_rows(np.concatenate(images) if images else np.zeros((0, SIDE, SIDE, 3), np.uint8))
    order = rng.permutation(len(names))
    coarse = [COARSE_LABEL_NAMES.index(FINE_TO_COARSE[FINE_LABEL_NAMES[f]]) for f in fine]
    return {
        b"filenames": [names[i].encode() for i in order],
        b"batch_label": f"{'training' if split == 'train' else 'testing'} batch 1 of 1".encode(),
        b"fine_labels": [int(fine[i]) for i in order],
        b"coarse_labels": [int(coarse[i]) for i in order],
        b"data": np.ascontiguousarray(rows[order]),
    }


def make_cifar_members(
    classes: Sequence[str] = ("bicycle", "motorcycle"),
    n_train: int = 20,
    n_test: int = 5,
    seed: int = 0,
    distractors: int = 0,
) -> dict[str, bytes]:
    """The bytes of ``meta``, ``train`` and ``test`` (``n_train``/``n_test`` rows per class,
    ``distractors`` noise rows of other labels in each split)."""
    unknown = [c for c in classes if c not in FINE_LABEL_NAMES]
    if unknown:
        raise UnknownClass(f"not CIFAR-100 fine label names: {', '.join(unknown)}")
    rng = np.random.default_rng(seed)
    counter = [0]
    meta = {
        b"fine_label_names": [n.encode() for n in FINE_LABEL_NAMES],
        b"coarse_label_names": [n.encode() for n in COARSE_LABEL_NAMES],
    }
    return {
        "meta": cifar_pickle(meta),
        "train": cifar_pickle(_split("train", classes, n_train, distractors, rng, counter)),
        "test": cifar_pickle(_split("test", classes, n_test, distractors, rng, counter)),
    }


def write_tarball(
    path: str | os.PathLike[str], members: dict[str, bytes], folder: str = "cifar-100-python"
) -> Path:
    """A deterministic ``.tar.gz`` (fixed mtimes, owner 0) of ``members`` under ``folder/``."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, payload in members.items():
            info = tarfile.TarInfo(f"{folder}/{name}" if folder else name)
            info.size, info.mode, info.mtime = len(payload), 0o644, TAR_MTIME
            tar.addfile(info, io.BytesIO(payload))
    with open(target, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as gz:
        gz.write(buffer.getvalue())
    return target


def make_cifar_tarball(
    path: str | os.PathLike[str],
    classes: Sequence[str] = ("bicycle", "motorcycle"),
    n_train: int = 20,
    n_test: int = 5,
    seed: int = 0,
    distractors: int = 0,
) -> Path:
    """Write a CIFAR-100 python-format tarball to ``path`` and return it.

    ``n_train`` / ``n_test`` rows per class in ``classes`` (CIFAR-100 fine label names), plus
    ``distractors`` noise rows with other labels in each split. Same arguments, same bytes.
    """
    return write_tarball(path, make_cifar_members(classes, n_train, n_test, seed, distractors))
