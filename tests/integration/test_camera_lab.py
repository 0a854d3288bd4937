"""The lab file's NGC camera (lab/camera/2) and telescope (lab/telescope/1) with their simulators,
in a lab of their own on free ports: a nodding run leaves one FITS file per frame, each taken at
its own offset of the pattern; a camera server killed during an exposure leaves no half-written
file, and its next frame after the supervisor restarts it is numbered after the last complete one."""

from __future__ import annotations

import copy
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
import tango
from astropy.io import fits

from tangolab.lab_config import LabConfig
from tangolab.launcher import Lab
from tangolab.scripting import wait_until
from tests.conftest import run_lab

CAMERA, TELESCOPE = "lab/camera/2", "lab/telescope/1"
SERVER = "NgcCamera/lab"


def camera_lab() -> LabConfig:
    """The lab file's NgcCamera and Telescope servers and simulators, nothing else (their keywords
    naming other devices are then written undefined, with the reason)."""
    config = LabConfig.load()
    data = copy.deepcopy(config.data)
    data["servers"] = {name: data["servers"][name] for name in ("NgcCamera", "Telescope")}
    for instances in data["servers"].values():
        for classes in instances.values():
            for devices in classes.values():
                for spec in devices.values():
                    for name in ("logging_target", "logging_level"):  # no archiver here
                        spec["properties"].pop(name, None)
    ours = data["tangolab"]
    ours["simulators"] = {name: ours["simulators"][name] for name in ("ngc", "telescope")}
    ours["simulators"]["ngc"].pop("temperature_attribute", None)  # no Peltier here
    ours["levels"] = {server: level for server, level in ours["levels"].items()
                      if server.partition("/")[0] in data["servers"]}
    for name in ("gui", "web", "alarms"):
        ours.pop(name, None)
    return LabConfig(data, config.path).with_free_ports()


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with run_lab(camera_lab(), tmp_path_factory.mktemp("camera-lab")) as lab:
        yield lab


@pytest.fixture(scope="module")
def camera(lab: Lab) -> tango.DeviceProxy:
    camera = lab.proxy(CAMERA)
    camera.set_timeout_millis(10_000)
    wait_until(lambda: camera.state() in (tango.DevState.ON, tango.DevState.OFF), 60, what=f"{CAMERA} connected")
    camera.PowerOn()
    wait_until(lambda: camera.state() == tango.DevState.ON, 30, what=f"{CAMERA} ON")
    return camera


def frames_folder(lab: Lab) -> Path:
    return lab.run_dir / "frames" / "ngc"


def finished(camera: tango.DeviceProxy, seconds: float) -> None:
    wait_until(lambda: camera.read_attribute("operation").value == "", seconds, what="the exposure finished")
    assert camera.read_attribute("outcome").value == "done"


def test_a_nodding_run_takes_each_frame_at_its_own_offset(lab, camera):
    telescope = lab.proxy(TELESCOPE)
    pattern = [0.0, 0.0, 12.0, -6.0]
    telescope.write_attribute("nodPattern", pattern)
    telescope.StartNodding()
    before = set(frames_folder(lab).glob("run*.fits"))
    try:
        camera.write_attribute("exposureTime", 0.2)
        camera.write_attribute("frames", 2)
        camera.Expose()
        finished(camera, 120)
    finally:
        camera.write_attribute("frames", 1)
        telescope.StopNodding()
    new = sorted(set(frames_folder(lab).glob("run*.fits")) - before)
    assert len(new) == 2
    offsets = []
    for path in new:
        with fits.open(path) as hdus:
            header = hdus[0].header
            assert header["EXPTIME"] == pytest.approx(0.2)
            offsets.append((header["RAOFF"], header["DECOFF"]))
            assert "arcsec" in header.comments["RAOFF"]
            assert header["CCDTEMP"] is None or isinstance(header["CCDTEMP"], fits.card.Undefined)  # no TEC here
            assert "unreadable" in header.comments["CCDTEMP"]
    assert offsets == [pytest.approx((0.0, 0.0), abs=0.01), pytest.approx((12.0, -6.0), abs=0.01)]


def test_a_camera_killed_while_exposing_leaves_no_half_file_and_numbers_on_after_restart(lab, camera):
    folder = frames_folder(lab)
    camera.write_attribute("exposureTime", 0.1)
    camera.Expose()
    finished(camera, 60)
    last = max(folder.glob("run*.fits"))
    camera.write_attribute("exposureTime", 30.0)
    camera.Expose()
    wait_until(lambda: camera.read_attribute("exposureStatus").value == "integrating", 30, what="integrating")
    pid = lab.pid(SERVER)
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: lab.pid(SERVER) not in (0, pid), 60, what="the camera server started again")
    wait_until(lambda: _answers(camera), 60, what=f"{CAMERA} answering again")
    assert max(folder.glob("run*.fits")) == last and not list(folder.glob(".*part"))
    # the controller still integrates the dead server's frame: the new server says so, and Abort ends it
    wait_until(lambda: "did not start" in camera.status(), 30, what="the orphan exposure shown")
    with pytest.raises(tango.DevFailed, match="run Abort"):
        camera.Expose()
    camera.Abort()
    camera.write_attribute("exposureTime", 0.1)
    wait_until(lambda: camera.state() == tango.DevState.ON, 30, what=f"{CAMERA} ON after the restart")
    camera.Expose()
    finished(camera, 60)
    number = int(last.stem.removeprefix("run"))
    assert Path(camera.lastFile).name == f"run{number + 1:04d}.fits"
    with fits.open(camera.lastFile) as hdus:
        assert hdus[0].header["EXPTIME"] == pytest.approx(0.1)


def _answers(proxy: tango.DeviceProxy) -> bool:
    try:
        return proxy.state() != tango.DevState.INIT
    except tango.DevFailed:
        return False
