"""Request bodies -> model inputs: every bad input is a one-line ValidationError, never anything else."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from sconeflow.endpoint import imaging
from sconeflow.endpoint.errors import ValidationError

from .helpers import encode, png_bomb

RNG = np.random.default_rng(0)
IMAGE = RNG.integers(0, 256, (32, 32, 3), dtype=np.uint8)


def test_png_at_input_size_is_pixel_exact() -> None:
    out = imaging.decode(encode(IMAGE), (32, 32))
    assert out.dtype == np.uint8 and out.shape == (32, 32, 3)
    assert np.array_equal(out, IMAGE)


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "LA"])
def test_other_modes_become_rgb(mode: str) -> None:
    pil = Image.fromarray(IMAGE).convert(mode)
    out = imaging.decode(encode(pil), (32, 32))
    assert out.shape == (32, 32, 3)


def test_any_size_is_resized_like_the_classifier() -> None:
    big = RNG.integers(0, 256, (97, 61, 3), dtype=np.uint8)
    out = imaging.decode(encode(big), (32, 32), resize="bilinear")
    expected = np.asarray(Image.fromarray(big).resize((32, 32), Image.Resampling.BILINEAR))
    assert np.array_equal(out, expected)


def test_jpeg_is_accepted() -> None:
    out = imaging.decode(encode(IMAGE, "JPEG"), (32, 32))
    assert out.shape == (32, 32, 3)


@pytest.mark.parametrize("content_type", ["image/png", "image/jpeg", "application/x-image", "Image/PNG; q=1"])
def test_supported_content_types(content_type: str) -> None:
    imaging.check_request(content_type, 100)


@pytest.mark.parametrize("content_type", [None, "", "text/csv", "application/json", "image/gif"])
def test_unsupported_content_type(content_type: str | None) -> None:
    with pytest.raises(ValidationError, match="Unsupported content type"):
        imaging.check_request(content_type, 100)


def test_payload_over_6_mib_is_refused_from_the_header() -> None:
    with pytest.raises(ValidationError, match="6291456"):
        imaging.check_request("image/png", imaging.MAX_PAYLOAD_BYTES + 1)
    with pytest.raises(ValidationError, match="exceeds"):
        imaging.decode(b"\x89PNG" + b"\x00" * imaging.MAX_PAYLOAD_BYTES, (32, 32))


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (b"", "empty"),
        (b"not an image at all", "not a PNG or JPEG"),
        (encode(IMAGE)[:60], "decode"),  # truncated PNG
        (encode(IMAGE, "GIF"), "not a PNG or JPEG"),  # a real image, but not an accepted format
        (encode(IMAGE, "JPEG")[:200], "decode"),  # truncated JPEG
    ],
)
def test_bad_bodies_are_validation_errors(body: bytes, match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        imaging.decode(body, (32, 32))


def test_decompression_bomb_is_refused_before_decoding() -> None:
    bomb = png_bomb(100_000, 100_000)  # 10^10 pixels claimed, a few hundred bytes sent
    assert len(bomb) < 10_000
    with pytest.raises(ValidationError, match="decompression bomb"):
        imaging.decode(bomb, (32, 32))


def test_pixel_limit_is_configurable() -> None:
    with pytest.raises(ValidationError, match="exceeds the limit of 100 pixels"):
        imaging.decode(encode(IMAGE), (32, 32), max_pixels=100)
