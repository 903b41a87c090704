"""One rule for turning a decoded image into 8-bit RGB, shared by the endpoint, `predict` and Model Monitor.

Pillow's ``convert("RGB")`` clips a 16-bit grayscale image's samples at 255, which turns almost every such
PNG plain white; Pillow keeps the high byte of 16-bit RGB(A) PNGs, and 8-bit decoders (libpng's
``strip_16``, OpenCV) do the same for grayscale. :func:`to_rgb` keeps the high byte everywhere, so the
three places that decode images agree on every input.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

SIXTEEN_BIT_GRAY_MODES = ("I;16", "I;16B", "I;16L", "I")  # how Pillow opens a 16-bit grayscale PNG


def to_rgb(image: Image.Image) -> Image.Image:
    """8-bit RGB; a 16-bit grayscale image keeps each sample's high byte."""
    if image.mode in SIXTEEN_BIT_GRAY_MODES:
        high = np.right_shift(np.asarray(image, dtype=np.uint32), 8).clip(0, 255).astype(np.uint8)
        return Image.fromarray(high, "L").convert("RGB")
    return image if image.mode == "RGB" else image.convert("RGB")
