"""What the web monitor sends a page for a value: images binned, long spectra and encoded blocks
as their size, so that a camera's frame or a stream's block never floods a browser (or stops the
hub: JSON cannot carry bytes)."""

from __future__ import annotations

import json

import numpy as np

from tangolab.web.live import IMAGE_SIDE, MAX_ELEMENTS, plain


def test_an_image_goes_binned_with_the_devices_shape():
    frame = np.arange(1024 * 512, dtype=np.uint16).reshape(512, 1024)
    sent = plain(frame)
    rows = np.array(sent["image"])
    assert sent["shape"] == [512, 1024]
    assert rows.shape == (IMAGE_SIDE // 2, IMAGE_SIDE)  # 8 x 8 bins
    assert rows[0, 0] == frame[:8, :8].mean()
    json.dumps(sent)


def test_a_small_image_goes_as_it_is_and_not_a_number_as_zero():
    preview = np.array([[1.5, np.nan], [3.0, 4.0]], dtype=np.float32)
    assert plain(preview) == {"image": [[1.5, 0.0], [3.0, 4.0]], "shape": [2, 2]}


def test_an_encoded_block_and_a_long_spectrum_go_as_their_size():
    assert plain(("tangolab.block.1", b"\0" * 4096)) == {"encoded": "tangolab.block.1", "bytes": 4096}
    assert plain(np.zeros(MAX_ELEMENTS + 1)) == {"shape": [MAX_ELEMENTS + 1]}
    assert plain(np.array([1.0, 2.0])) == [1.0, 2.0]
