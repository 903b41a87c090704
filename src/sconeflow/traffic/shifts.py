"""Reusable distribution shifts of uint8 NHWC image batches (what drifted traffic looks like).

Each shift returns a new array and never changes its input:

* ``darken``: every pixel scaled by ``factor`` (default 0.35): an underexposed camera.
* ``add_noise``: Gaussian noise with standard deviation ``sigma`` (default 40 grey levels), clipped.
* ``one_class``: not a pixel change but a label shift: keep only the images of one class, so the
  predicted-class mix drifts while each image looks normal.

``apply_shift(name, images, labels, rng, ...)`` applies one by name; ``SHIFTS`` lists the names.
"""

from __future__ import annotations

import numpy as np

from sconeflow.traffic.errors import InvalidShift

SHIFTS = ("none", "dark", "noise", "one-class")
PIXEL_SHIFTS = ("dark", "noise")


def _check(images: np.ndarray) -> np.ndarray:
    array = np.asarray(images)
    if array.dtype != np.uint8 or array.ndim != 4 or array.shape[-1] != 3:
        raise InvalidShift(f"images must be uint8 N x H x W x 3, got {array.dtype} {array.shape}")
    return array


def darken(images: np.ndarray, factor: float = 0.35) -> np.ndarray:
    """Scale every pixel by ``factor`` (0..1): the brightness features drop, contrast shrinks."""
    if not 0.0 <= factor <= 1.0:
        raise InvalidShift(f"darken factor {factor} is outside [0, 1]")
    array = _check(images)
    return np.clip(np.rint(array.astype(np.float32) * factor), 0, 255).astype(np.uint8)


def add_noise(images: np.ndarray, rng: np.random.Generator, sigma: float = 40.0) -> np.ndarray:
    """Add Gaussian noise (standard deviation ``sigma`` grey levels), clipped to 0..255."""
    if sigma < 0:
        raise InvalidShift(f"noise sigma {sigma} must not be negative")
    array = _check(images)
    noisy = array.astype(np.float32) + rng.normal(0.0, sigma, size=array.shape).astype(np.float32)
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def one_class(images: np.ndarray, labels: np.ndarray, class_index: int) -> tuple[np.ndarray, np.ndarray]:
    """Keep only the images whose label is ``class_index``."""
    array = _check(images)
    keep = np.asarray(labels) == class_index
    if not keep.any():
        raise InvalidShift(f"no image of class index {class_index} to draw from")
    return array[keep], np.asarray(labels)[keep]


def resolve_class(classes: list[str], name: str | None) -> int:
    """The index of a one-class shift's class (by name or index); default: the first class."""
    if name is None or name == "":
        return 0
    if name in classes:
        return classes.index(name)
    if name.isdigit() and int(name) < len(classes):
        return int(name)
    raise InvalidShift(f"class {name!r} is not one of the dataset's classes {classes}")


def apply_shift(
    name: str,
    images: np.ndarray,
    labels: np.ndarray,
    rng: np.random.Generator,
    *,
    class_index: int = 0,
    factor: float = 0.35,
    sigma: float = 40.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Apply the shift called ``name`` (one of :data:`SHIFTS`) to a batch; returns (images, labels)."""
    if name == "none":
        return _check(images), np.asarray(labels)
    if name == "dark":
        return darken(images, factor), np.asarray(labels)
    if name == "noise":
        return add_noise(images, rng, sigma), np.asarray(labels)
    if name == "one-class":
        return one_class(images, labels, class_index)
    raise InvalidShift(f"unknown shift {name!r}; choose one of {', '.join(SHIFTS)}")
