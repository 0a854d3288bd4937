"""Images made small for screens: a camera's preview, an image attribute on a web page."""

from __future__ import annotations

import math

import numpy as np


def binned(image: np.ndarray, largest: int) -> np.ndarray:
    """`image` averaged in square bins so that no side exceeds `largest` (edges that do not
    fill a bin are left out)."""
    factor = max(1, math.ceil(max(image.shape) / largest))
    height, width = max(1, image.shape[0] // factor), max(1, image.shape[1] // factor)
    cropped = image[: height * factor, : width * factor].astype(np.float32)
    if cropped.shape != (height * factor, width * factor):  # a side shorter than one bin: as it is
        return cropped[:: factor, :: factor]
    return cropped.reshape(height, factor, width, factor).mean(axis=(1, 3))
