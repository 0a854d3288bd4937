"""The NgcCamera device in a DeviceTestContext (own process) against the NGC simulator in a thread
of the test: the camera vocabulary it shares with the Archon's (a run of frames as FITS files,
Abort), the control server's states, LoadSetup and AddHdu."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tango
from astropy.io import fits
from tango.test_context import DeviceTestContext

from device_servers.ngc.device import NgcCamera
from simulators import run_in_thread
from simulators.ngc import NgcSimulator
from tangolab.scripting import wait_until

ON, OFF = tango.DevState.ON, tango.DevState.OFF


@pytest.fixture(scope="module")
def simulator():
    with run_in_thread(NgcSimulator(seed=5, ccd_temperature=20.0)) as running:
        yield running


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("frames")


@pytest.fixture(scope="module")
def device(simulator, folder):
    properties = {"Url": simulator.url, "PollPeriod": 0.2, "Timeout": 2.0, "PreviewSize": 64,
                  "FitsFolder": str(folder)}
    with DeviceTestContext(NgcCamera, properties=properties, process=True, timeout=30) as proxy:
        wait_until(lambda: proxy.state() in (ON, OFF), 30, what="device connected")
        proxy.PowerOn()
        wait_until(lambda: proxy.state() == ON, 10, what="ON after PowerOn")
        yield proxy


@pytest.fixture(autouse=True)
def idle(device):
    yield
    wait_until(lambda: device.read_attribute("operation").value == "", 30, what="no operation running")


def files(folder: Path) -> list[Path]:
    return sorted(folder.glob("run*.fits"))


def test_a_run_of_frames_leaves_one_numbered_file_each_with_its_exposure(device, folder):
    before = files(folder)
    device.write_attribute("exposureTime", 0.3)
    device.write_attribute("frames", 2)
    try:
        device.Expose()
        assert device.state() == tango.DevState.RUNNING
        wait_until(lambda: device.read_attribute("outcome").value == "done"
                   and device.read_attribute("operation").value == "", 60, what="the run done")
    finally:
        device.write_attribute("frames", 1)
    new = files(folder)[len(before):]
    assert [path.name for path in new] == [f"run{len(before) + 1:04d}.fits", f"run{len(before) + 2:04d}.fits"]
    for number, path in enumerate(new, 1):
        with fits.open(path) as hdus:
            header, data = hdus[0].header, hdus[0].data
            assert header["EXPTIME"] == pytest.approx(0.3)
            assert header["DETECTOR"] == "ESO NGC CCD"
            assert header["RUNFRAME"] == number
            assert data.shape == (512, 544)
    image = device.read_attribute("image").value
    with fits.open(new[-1]) as hdus:
        assert np.array_equal(image, hdus[0].data)  # the last frame, as the client reads it
    assert device.lastFile == str(new[-1])
    assert device.read_attribute("runNumber").value >= 2


def test_abort_ends_an_exposure_at_once_and_leaves_no_file(device, folder):
    before = files(folder)
    device.write_attribute("exposureTime", 30.0)
    device.Expose()
    wait_until(lambda: device.read_attribute("exposureStatus").value == "integrating", 10, what="integrating")
    device.Abort()
    wait_until(lambda: device.read_attribute("operation").value == "", 5, what="the exposure ended")
    assert device.read_attribute("outcome").value == "aborted"
    assert files(folder) == before
    wait_until(lambda: device.read_attribute("exposureStatus").value == "aborted", 10, what="the NGC aborted")


def test_load_setup_applies_everything_or_nothing(device):
    device.LoadSetup(json.dumps({"read_mode": "slow", "setup": {"DET.WIN1.NX": 272, "DET.WIN1.NY": 256},
                                 "header": {"OBJECT": "dark"}, "acquisition": {"exposure_time": 0.2, "frames": 1}}))
    wait_until(lambda: device.read_attribute("width").value == 272, 10, what="the new window polled")
    assert device.read_attribute("readMode").value == "slow"
    assert device.read_attribute("keywords").value == ("OBJECT = dark",)
    assert device.read_attribute("exposureTime").value == pytest.approx(0.2)
    for bad, words in (
        ({"setup": {"DET.WIN1.NX": 0}}, "DET.WIN1.NX must be 1 to 8192, not 0"),
        ({"read_mode": "turbo"}, "DET.READ.CURNAME must be one of slow, fast"),
        ({"acquisition": {"frames": 0}}, "frames must be a whole number 1 to 10000"),
        ({"shutter": "open"}, "a setup is an object of read_mode, setup, header, acquisition, not shutter"),
    ):
        with pytest.raises(tango.DevFailed) as refused:
            device.LoadSetup(json.dumps({"read_mode": "fast", **bad}))
        assert refused.value.args[0].reason == "BadSetup" and words in refused.value.args[0].desc, words
    assert device.read_attribute("readMode").value == "slow"  # nothing changed
    device.LoadSetup(json.dumps({"read_mode": "fast", "setup": {"DET.WIN1.NX": 544, "DET.WIN1.NY": 512},
                                 "header": {}}))
    wait_until(lambda: device.read_attribute("width").value == 544, 10, what="the window back")


def test_add_hdu_appends_a_table_to_the_last_file_and_a_bad_one_changes_nothing(device, folder):
    device.write_attribute("exposureTime", 0.1)
    device.Expose()
    wait_until(lambda: device.read_attribute("operation").value == "", 30, what="the frame")
    path = Path(device.lastFile)
    device.AddHdu(json.dumps({"name": "TIMES", "columns": {"MJD": [60000.25, 60000.5], "FLAG": ["ok", "late"]}}))
    with fits.open(path) as hdus:
        assert [hdu.name for hdu in hdus] == ["PRIMARY", "TIMES"]
        assert list(hdus["TIMES"].data["MJD"]) == [60000.25, 60000.5]
        assert list(hdus["TIMES"].data["FLAG"]) == ["ok", "late"]
    before = path.read_bytes()
    with pytest.raises(tango.DevFailed) as refused:
        device.AddHdu(json.dumps({"name": "BAD", "columns": {"A": [1, 2], "B": [1]}}))
    assert "same length" in refused.value.args[0].desc and "unchanged" in refused.value.args[0].desc
    assert path.read_bytes() == before
    assert not list(folder.glob(".*part"))


def test_expose_in_standby_is_refused_with_the_reason(device):
    device.Standby()
    wait_until(lambda: device.state() == OFF, 10, what="OFF in STANDBY")
    try:
        with pytest.raises(tango.DevFailed) as refused:
            device.Expose()
        assert refused.value.args[0].reason == "NotReady" and "STANDBY" in refused.value.args[0].desc
    finally:
        device.PowerOn()
        wait_until(lambda: device.state() == ON, 10, what="ON again")
