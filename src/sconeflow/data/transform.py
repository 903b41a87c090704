"""CIFAR rows to images and pixel-exact PNG bytes.

A CIFAR row is 3072 bytes: the 1024 red values, then green, then blue, each plane row-major 32x32.
PNGs are written by a small, dependency-free encoder (8-bit RGB, no filtering, zlib level 6), so the
same pixels always give the same bytes (which keeps re-runs idempotent) and encoding is fast.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

SIDE = 32
ROW_BYTES = 3 * SIDE * SIDE
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def rows_to_images(rows: np.ndarray) -> np.ndarray:
    """(N, 3072) uint8 CIFAR rows -> (N, 32, 32, 3) uint8 RGB images (NHWC)."""
    if rows.ndim != 2 or rows.shape[1] != ROW_BYTES:
        raise ValueError(f"CIFAR rows must have shape (N, {ROW_BYTES}), not {rows.shape}")
    return np.ascontiguousarray(rows.reshape(-1, 3, SIDE, SIDE).transpose(0, 2, 3, 1))


def images_to_rows(images: np.ndarray) -> np.ndarray:
    """The inverse of :func:`rows_to_images`."""
    return np.ascontiguousarray(images.transpose(0, 3, 1, 2).reshape(len(images), ROW_BYTES))


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def encode_png(image: np.ndarray, level: int = 6) -> bytes:
    """An (H, W, 3) uint8 image as PNG bytes (8-bit truecolour, filter type 0 on every scanline)."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) uint8 image, not {image.shape} {image.dtype}")
    height, width, _ = image.shape
    scanlines = np.zeros((height, 1 + width * 3), dtype=np.uint8)
    scanlines[:, 1:] = image.reshape(height, width * 3)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        _PNG_SIGNATURE
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(scanlines.tobytes(), level))
        + _chunk(b"IEND", b"")
    )
