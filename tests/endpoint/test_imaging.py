"""Request bodies -> model inputs: every bad input is a one-line named error, never anything else."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from sconeflow.endpoint import imaging
from sconeflow.endpoint.errors import InvalidImage, UnsupportedContentType, ValidationError

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
    with pytest.raises(UnsupportedContentType, match="Unsupported content type") as info:
        imaging.check_request(content_type, 100)
    assert info.value.original_status == 415


def test_payload_over_6_mib_is_refused_from_the_header() -> None:
    with pytest.raises(ValidationError, match="6291456"):
        imaging.check_request("image/png", imaging.MAX_PAYLOAD_BYTES + 1)
    with pytest.raises(ValidationError, match="6291456"):  # the runtime API's limit comes first
        imaging.check_request("text/csv", imaging.MAX_PAYLOAD_BYTES + 1)
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
def test_bad_bodies_are_invalid_images(body: bytes, match: str) -> None:
    with pytest.raises(InvalidImage, match=match):
        imaging.decode(body, (32, 32))


def test_decompression_bomb_is_refused_before_decoding() -> None:
    bomb = png_bomb(100_000, 100_000)  # 10^10 pixels claimed, a few hundred bytes sent
    assert len(bomb) < 10_000
    with pytest.raises(InvalidImage, match="decompression bomb"):
        imaging.decode(bomb, (32, 32))


def test_pixel_limit_is_configurable() -> None:
    with pytest.raises(InvalidImage, match="exceeds the limit of 100 pixels"):
        imaging.decode(encode(IMAGE), (32, 32), max_pixels=100)


# -- the libspng fast path for 8-bit RGB PNGs (the workflow's own images) ------------------------------


def _with_and_without_spng(monkeypatch: pytest.MonkeyPatch, body: bytes, size: tuple[int, int]) -> tuple:
    fast = imaging.decode(body, size)
    monkeypatch.setattr(imaging, "_spng", None)
    slow = imaging.decode(body, size)
    return fast, slow


@pytest.mark.skipif(imaging._spng is None, reason="pyspng is not installed: Pillow decodes everything")
@pytest.mark.parametrize("shape", [(32, 32, 3), (97, 61, 3), (1, 1, 3), (200, 300, 3)])
def test_fast_png_path_gives_pillows_pixels(monkeypatch: pytest.MonkeyPatch, shape: tuple) -> None:
    pixels = RNG.integers(0, 256, shape, dtype=np.uint8)
    body = encode(pixels)
    assert imaging._png_rgb8_size(body) == (shape[1], shape[0])
    fast, slow = _with_and_without_spng(monkeypatch, body, (32, 32))
    assert fast.dtype == slow.dtype == np.uint8
    assert np.array_equal(fast, slow)


@pytest.mark.skipif(imaging._spng is None, reason="pyspng is not installed")
def test_fast_png_path_is_taken_for_rgb8(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = imaging._spng

    class Counting:
        @staticmethod
        def load(data: bytes) -> np.ndarray:
            calls.append(len(data))
            return real.load(data)

    monkeypatch.setattr(imaging, "_spng", Counting)
    assert np.array_equal(imaging.decode(encode(IMAGE), (32, 32)), IMAGE)
    assert calls == [len(encode(IMAGE))]


def _not_rgb8_pngs() -> list[bytes]:
    import io

    out = []
    buf = io.BytesIO()
    gray16 = Image.fromarray((RNG.integers(0, 65535, (32, 32))).astype(np.uint16))
    gray16.save(buf, "PNG")
    out.append(buf.getvalue())
    out.append(encode(Image.fromarray(IMAGE).convert("P")))
    out.append(encode(Image.fromarray(IMAGE).convert("RGBA")))
    return out


@pytest.mark.parametrize("body", _not_rgb8_pngs())
def test_other_pngs_go_through_pillow(body: bytes) -> None:
    assert imaging._png_rgb8_size(body) is None
    out = imaging.decode(body, (32, 32))
    assert out.shape == (32, 32, 3) and out.dtype == np.uint8


def test_rgb8_png_with_a_corrupt_chunk_is_an_invalid_image() -> None:
    body = bytearray(encode(IMAGE))
    idat = body.index(b"IDAT")
    body[idat + 10] ^= 0xFF  # compressed pixels changed: the chunk's CRC no longer matches
    assert imaging._png_rgb8_size(bytes(body)) == (32, 32)
    with pytest.raises(InvalidImage, match="decode"):
        imaging.decode(bytes(body), (32, 32))


def test_rgb8_png_bomb_never_reaches_the_fast_decoder(monkeypatch: pytest.MonkeyPatch) -> None:
    class Refuse:
        @staticmethod
        def load(data: bytes) -> np.ndarray:
            raise AssertionError("a bomb must be refused from its header")

    monkeypatch.setattr(imaging, "_spng", Refuse)
    with pytest.raises(InvalidImage, match="decompression bomb"):
        imaging.decode(png_bomb(100_000, 100_000), (32, 32))


@pytest.mark.parametrize(
    ("depth", "color", "interlace", "expected"),
    [(8, 2, 0, (7, 5)), (8, 2, 1, None), (16, 2, 0, None), (8, 6, 0, None), (8, 0, 0, None)],
)
def test_png_header_decides_the_fast_path(depth: int, color: int, interlace: int, expected: object) -> None:
    import struct

    from .helpers import _chunk

    header = struct.pack(">IIBBBBB", 7, 5, depth, color, 0, 0, interlace)
    body = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IEND", b"")
    assert imaging._png_rgb8_size(body) == expected
    assert imaging._png_rgb8_size(b"GIF89a" + body[6:]) is None


def test_16_bit_grayscale_png_keeps_its_high_byte() -> None:
    """Pillow's convert("RGB") clips 16-bit gray at 255 (an all-white image); 8-bit decoders keep the
    high byte, as Pillow itself does for 16-bit RGB PNGs."""
    import io

    gray16 = RNG.integers(0, 65536, (32, 32), dtype=np.uint16)
    buf = io.BytesIO()
    Image.fromarray(gray16).save(buf, "PNG")
    out = imaging.decode(buf.getvalue(), (32, 32))
    expected = (gray16 >> 8).astype(np.uint8)
    for channel in range(3):
        assert np.array_equal(out[..., channel], expected)
