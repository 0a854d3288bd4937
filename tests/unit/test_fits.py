"""FITS files of frames: numbered after the highest in the folder, never over an existing one,
complete or absent, undefined values with their reason; the keyword map's refusals."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from astropy.io import fits

from tangolab.fits import Keyword, parse_sources, write_frame

IMAGE = np.arange(12, dtype=np.uint16).reshape(3, 4) + 65000


def test_frames_are_numbered_after_the_highest_and_read_back_exactly(tmp_path):
    (tmp_path / "run0007.fits").write_bytes(b"someone else's")
    (tmp_path / "notes.txt").write_text("not a frame")
    first = write_frame(tmp_path, IMAGE, [Keyword("EXPTIME", 2.5, "exposure time [s]")])
    second = write_frame(tmp_path, IMAGE, [])
    assert (first.name, second.name) == ("run0008.fits", "run0009.fits")
    assert (tmp_path / "run0007.fits").read_bytes() == b"someone else's"
    with fits.open(first) as hdul:
        assert hdul[0].header["EXPTIME"] == 2.5
        assert hdul[0].header.comments["EXPTIME"] == "exposure time [s]"
        np.testing.assert_array_equal(hdul[0].data, IMAGE)
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "notes.txt", "run0007.fits", "run0008.fits", "run0009.fits"]  # no partial file left


def test_an_unreadable_value_is_undefined_with_the_whole_reason(tmp_path):
    reason = "lab/gauge/1 is not exported (the server is down); " * 3
    path = write_frame(tmp_path, IMAGE, [Keyword("PRESSURE", None, f"unreadable: {reason}", reason)])
    header = fits.getheader(path)
    assert "PRESSURE" in header and header["PRESSURE"] is None
    assert header.comments["PRESSURE"].startswith("unreadable: lab/gauge/1 is not exported")
    cards = "".join(header["COMMENT"])  # the whole reason, over as many cards as it needs
    assert cards.replace(" ", "") == f"PRESSURE: {reason}".replace(" ", "")


def test_a_writer_killed_mid_file_leaves_no_frame_and_its_part_is_removed_by_the_next(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], check=True, capture_output=True,
                          text=True)
    orphan = tmp_path / f".run-{int(dead.stdout)}-7f00.fits.part"  # what a writer killed mid-frame leaves
    orphan.write_bytes(b"SIMPLE  =                    T")
    living = tmp_path / f".run-{os.getpid()}-7f01.fits.part"  # a writer still at work
    living.write_bytes(b"SIMPLE")
    assert write_frame(tmp_path, IMAGE, []).name == "run0001.fits"
    assert sorted(path.name for path in tmp_path.iterdir()) == [living.name, "run0001.fits"]


def test_a_write_that_fails_leaves_no_file(tmp_path):
    with pytest.raises(ValueError):
        write_frame(tmp_path, IMAGE, [Keyword("EXPTIME", object())])
    assert list(tmp_path.iterdir()) == []


def test_the_keyword_map_and_its_refusals():
    assert parse_sources(["CCDTEMP = lab/tec/1/objectTemperature", "",
                          "pressure=tango://host:10000/lab/gauge/1/pressure#dbase=no"]) == {
        "CCDTEMP": "lab/tec/1/objectTemperature", "PRESSURE": "tango://host:10000/lab/gauge/1/pressure#dbase=no"}
    for wrong in ("CCDTEMPERATURE = lab/tec/1/objectTemperature", "CCDTEMP lab/tec/1/objectTemperature",
                  "CCDTEMP = lab/tec/1"):
        with pytest.raises(ValueError, match="is not KEYWORD = domain/family/member/attribute"):
            parse_sources([wrong])
