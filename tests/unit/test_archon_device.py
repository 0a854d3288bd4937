"""The CcdController device in a DeviceTestContext (own process) against the Archon simulator
in a thread of the test: power, exposures as long operations with a new image announced by a
data-ready event, Abort during the readout, a transfer cut short, the controller's faults."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import tango
from astropy.io import fits
from tango.test_context import DeviceTestContext

from device_servers.archiver.subscription import not_archivable
from device_servers.archon.device import CcdController
from simulators import run_in_thread
from simulators.archon import ArchonSimulator
from simulators.ccd import BIAS_ADU
from tangolab.scripting import run, wait_until

ON, OFF, RUNNING, FAULT, ALARM = (tango.DevState.ON, tango.DevState.OFF, tango.DevState.RUNNING,
                                  tango.DevState.FAULT, tango.DevState.ALARM)
WIDTH, HEIGHT, OVERSCAN = 544, 512, 32
TEMPERATURE = 20.0  # degC: a warm CCD's dark current shows in short exposures


@pytest.fixture(scope="module")
def simulator():
    with run_in_thread(ArchonSimulator(seed=4, ccd_temperature=TEMPERATURE)) as running:
        yield running


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("frames")


@pytest.fixture(scope="module")
def device(simulator, folder):
    properties = {
        "Url": simulator.url, "PollPeriod": 0.2, "Timeout": 1.0, "PreviewSize": 128, "FitsFolder": str(folder),
        # the device's own attribute by its short name (the test context resolves it to itself)
        "FitsKeywords": ["BACKTEMP = test/nodb/ccdcontroller/backplaneTemperature",
                         "PRESSURE = tango://127.0.0.1:1/lab/gauge/1/pressure#dbase=no"],
    }
    with DeviceTestContext(CcdController, properties=properties, process=True, timeout=30) as proxy:
        wait_until(lambda: proxy.state() in (ON, OFF), 30, what="device connected")
        proxy.PowerOn()
        wait_until(lambda: proxy.state() == ON, 10, what="ON after PowerOn")
        yield proxy


@pytest.fixture(autouse=True)
def healthy(simulator, device):
    yield
    simulator.simulator.clear()
    wait_until(lambda: device.state() in (ON, FAULT) and device.read_attribute("operation").value == "", 30,
               what="no operation running")


def expose(device: tango.DeviceProxy, seconds: float) -> None:
    device.write_attribute("exposureTime", seconds)
    device.Expose()


def test_an_exposure_runs_with_progress_and_its_dark_level_rises_with_exposure_time(device, folder):
    ready: list[int] = []
    subscription = device.subscribe_event("image", tango.EventType.DATA_READY_EVENT,
                                          lambda event: event.err or ready.append(event.ctr))
    try:
        levels, files = [], []
        for seconds in (0.2, 2.0):
            counter = device.read_attribute("frameCounter").value
            expose(device, seconds)
            assert device.state() == RUNNING
            assert device.read_attribute("operation").value == f"exposing {seconds:g} s"
            wait_until(lambda: device.read_attribute("progress").value > 0, 10, what="progress")
            wait_until(lambda: device.state() == ON, 30, what="ON once the image is in")
            assert device.read_attribute("outcome").value == "done"
            assert device.read_attribute("frameCounter").value == counter + 1
            wait_until(lambda frame=counter + 1: frame in ready, 10, what="the data-ready event of the new frame")
            image = device.read_attribute("image", extract_as=tango.ExtractAs.Numpy).value
            assert image.shape == (HEIGHT, WIDTH) and image.dtype == np.uint16
            assert abs(float(np.mean(image[:, WIDTH - OVERSCAN:])) - BIAS_ADU) < 1  # overscan: bias only
            levels.append(float(np.median(image[:, : WIDTH - OVERSCAN])))
            files.append(folder / f"run{counter + 1:04d}.fits")
            assert device.read_attribute("lastFile").value == str(files[-1])
        assert levels[0] + 20 < levels[1]  # 51 e/s at 20 degC over 1.8 s more: ~61 ADU
        preview = device.read_attribute("preview").value
        assert preview.shape == (HEIGHT // 5, WIDTH // 5)  # bins of 5 keep each side within 128
        for path, seconds, level in zip(files, (0.2, 2.0), levels):
            with fits.open(path) as hdul:
                header, data = hdul[0].header, hdul[0].data
                assert data.shape == (HEIGHT, WIDTH) and float(np.median(data[:, : WIDTH - OVERSCAN])) == level
                assert header["EXPTIME"] == seconds and header["CCDTEMP"] == TEMPERATURE
                assert header["DETECTOR"] == "STA Archon CCD" and header["FRAMENUM"] >= 1
                assert 20 < header["BACKTEMP"] < 60
                assert header.comments["BACKTEMP"] == "[degC] test/nodb/ccdcontroller/backplaneTempera"
                assert "PRESSURE" in header and header["PRESSURE"] is None  # undefined, not a number
                assert header.comments["PRESSURE"].startswith("unreadable: ")
                notes = "".join(header["COMMENT"]).replace(" ", "")  # the whole reason, over several cards
                assert "PRESSURE:tango://127.0.0.1:1/lab/gauge/1/pressure#dbase=nounreadable:" in notes
                opened = datetime.fromisoformat(header["DATE-OBS"]).replace(tzinfo=UTC)
                assert abs((datetime.now(UTC) - opened).total_seconds()) < 600
    finally:
        device.unsubscribe_event(subscription)


def test_a_series_of_darks_while_the_ccd_cools_gives_files_whose_dark_level_follows_the_temperature(
        device, simulator):
    files = {}
    try:
        for celsius in (10.0, -5.0, -20.0):
            simulator.simulator.control(f"temperature {celsius}")
            wait_until(lambda t=celsius: device.read_attribute("ccdTemperature").value == t, 10,
                       what="the new temperature")
            device.write_attribute("exposureTime", 1.0)
            run(device, "Expose", timeout=60)
            files[celsius] = device.read_attribute("lastFile").value
    finally:
        simulator.simulator.control(f"temperature {TEMPERATURE}")
        wait_until(lambda: device.read_attribute("ccdTemperature").value == TEMPERATURE, 10, what="warm again")
    darks = []
    for celsius, name in files.items():
        with fits.open(name) as hdul:
            header, data = hdul[0].header, hdul[0].data
            assert (header["CCDTEMP"], header["EXPTIME"]) == (celsius, 1.0)
            darks.append(float(np.mean(data[:, : WIDTH - OVERSCAN])) - BIAS_ADU)
    assert darks[0] > darks[1] > darks[2] > 0, darks  # 16, 2.9 and 0.5 electrons a second


def test_abort_during_the_readout_ends_the_exposure_at_once(device, simulator):
    sim = simulator.simulator
    with sim.lock:  # a slow readout: 5.6 s
        assert sim.handle(b">E0WCONFIG0006PARAMETER1=PixelNS=20000\n") == b"<E0\n"
        assert sim.handle(b">E1LOADPARAMS\n") == b"<E1\n"
    try:
        counter = device.read_attribute("frameCounter").value
        expose(device, 0.1)
        wait_until(lambda: sim.phase == "reading" and device.read_attribute("progress").value > 2, 10,
                   what="the readout under way")
        device.Abort()
        assert sim.phase == "idle"  # the controller was told before Abort returned
        wait_until(lambda: device.state() == ON, 5, what="ON after Abort")
        assert device.read_attribute("outcome").value == "aborted"
        assert device.read_attribute("frameCounter").value == counter
    finally:
        with sim.lock:
            sim.handle(b">E2WCONFIG0006PARAMETER1=PixelNS=2000\n")
            sim.handle(b">E3LOADPARAMS\n")


def test_a_transfer_cut_short_is_a_fault_with_the_reason_and_no_image(device, simulator, folder):
    counter = device.read_attribute("frameCounter").value
    simulator.simulator.faults.add("fetchcut")
    expose(device, 0.1)
    wait_until(lambda: device.read_attribute("outcome").value.startswith("failed"), 30, what="the exposure failed")
    outcome = device.read_attribute("outcome").value
    assert outcome.startswith("failed: no image: frame transfer cut short after 0 of 544 blocks"), outcome
    assert device.state() == FAULT
    assert device.read_attribute("frameCounter").value == counter
    files = sorted(folder.iterdir())  # no file for it, not even a part of one
    assert files == [folder / f"run{n:04d}.fits" for n in range(1, counter + 1)], files
    simulator.simulator.clear()
    wait_until(lambda: device.read_attribute("power").quality == tango.AttrQuality.ATTR_VALID, 30,
               what="the link back")
    expose(device, 0.1)  # the next exposure clears the fault
    wait_until(lambda: device.state() == ON and device.read_attribute("outcome").value == "done", 30,
               what="a good exposure")
    assert device.read_attribute("frameCounter").value == counter + 1
    assert device.read_attribute("lastFile").value == str(folder / f"run{counter + 1:04d}.fits")


def test_keywords_a_script_sets_go_into_the_following_files_and_bad_ones_are_refused(device):
    device.SetKeywords(["OBJECT = flat field", "SERIES = 3", "LAMP = 1.5"])
    assert list(device.read_attribute("keywords").value) == ["OBJECT = flat field", "SERIES = 3", "LAMP = 1.5"]
    with pytest.raises(tango.DevFailed) as refused:
        device.SetKeywords(["OBJECT = dark", "TOO_LONG_A_NAME = 1"])
    assert refused.value.args[0].reason == "BadKeywords"
    assert "line 2 'TOO_LONG_A_NAME = 1' is not KEYWORD = value" in refused.value.args[0].desc
    assert len(device.read_attribute("keywords").value) == 3  # nothing changed
    device.write_attribute("exposureTime", 0.0)
    try:
        run(device, "Expose", timeout=60)
        header = fits.getheader(device.read_attribute("lastFile").value)
        assert (header["OBJECT"], header["SERIES"], header["LAMP"]) == ("flat field", 3, 1.5)
    finally:
        device.SetKeywords([])
    assert not device.read_attribute("keywords").value  # cleared


def test_power_not_good_is_a_fault_and_overheat_an_alarm_with_the_log_line(device, simulator):
    simulator.simulator.control("powergood off")
    wait_until(lambda: device.state() == FAULT, 10, what="FAULT")
    assert "Power not good" in device.status()
    wait_until(lambda: "power not good" in device.read_attribute("lastLog").value, 10, what="the log line")
    simulator.simulator.control("powergood on")
    wait_until(lambda: device.state() == ON, 10, what="ON again")
    simulator.simulator.control("overheat on")
    wait_until(lambda: device.state() == ALARM, 10, what="ALARM")
    assert "overheats" in device.status()


def test_expose_while_the_power_is_off_is_refused_with_the_reason(device):
    device.PowerOff()
    wait_until(lambda: device.state() == OFF, 10, what="OFF")
    try:
        with pytest.raises(tango.DevFailed) as refused:
            device.Expose()
        assert refused.value.args[0].reason == "NotReady"
        assert "run PowerOn" in refused.value.args[0].desc
    finally:
        device.PowerOn()
        wait_until(lambda: device.state() == ON, 10, what="ON")


def test_images_are_not_archived_and_rails_are_named(device):
    assert "is an image" in not_archivable("lab/camera/1/image", device.get_attribute_config("image"))
    names = list(device.read_attribute("railNames").value)
    volts = dict(zip(names, device.read_attribute("railVoltages").value))
    assert volts["P5V"] == pytest.approx(5.0) and volts["N17V"] == pytest.approx(-17.0)
