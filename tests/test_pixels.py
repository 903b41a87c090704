"""The endpoint, `predict` (model.artifact) and Model Monitor decode every image the same way."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from sconeflow.endpoint import imaging
from sconeflow.model.artifact import decode_image as predict_decode
from sconeflow.monitor.features import decode_image as monitor_decode

RNG = np.random.default_rng(7)


def _png(array: np.ndarray, mode: str | None = None) -> bytes:
    buf = io.BytesIO()
    (Image.fromarray(array) if mode is None else Image.fromarray(array).convert(mode)).save(buf, "PNG")
    return buf.getvalue()


@pytest.mark.parametrize(
    "body",
    [
        _png(RNG.integers(0, 65536, (32, 32), dtype=np.uint16)),  # 16-bit grayscale
        _png(RNG.integers(0, 256, (32, 32), dtype=np.uint8)),  # 8-bit grayscale
        _png(RNG.integers(0, 256, (32, 32, 4), dtype=np.uint8)),  # RGBA
        _png(RNG.integers(0, 256, (32, 32, 3), dtype=np.uint8), "P"),  # palette
        _png(RNG.integers(0, 256, (32, 32, 3), dtype=np.uint8)),  # RGB
    ],
    ids=["gray16", "gray8", "rgba", "palette", "rgb"],
)
def test_the_three_decoders_agree(body: bytes) -> None:
    endpoint = imaging.decode(body, (32, 32))
    assert np.array_equal(predict_decode(body, (32, 32)), endpoint)
    assert np.array_equal(monitor_decode(body), endpoint)


def test_16_bit_grayscale_is_not_clipped_to_white() -> None:
    gray16 = RNG.integers(0, 65536, (32, 32), dtype=np.uint16)
    expected = np.repeat((gray16 >> 8).astype(np.uint8)[..., None], 3, axis=2)
    assert np.array_equal(predict_decode(_png(gray16), (32, 32)), expected)
    assert np.array_equal(monitor_decode(_png(gray16)), expected)
