"""The ForceSpectrometer in a DeviceTestContext (own process) on the epz board simulator over its
ZeroMQ broker: settings in pN, a pull recorded through the device into HDF5 showing the
unfolding saw-tooth with the simulated protein's contour-length increments, Stop during a pull,
a second operation refused naming the first, a dropped stream as FAULT and a gap in the file,
overload as ALARM."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import h5py
import numpy as np
import pytest
import tango
from tango.test_context import DeviceTestContext

from device_servers.afm.device import ForceSpectrometer
from simulators import run_in_thread
from simulators.epz import EpzSimulator
from tangolab.lab_config import free_port
from tangolab.record import record
from tangolab.scripting import wait_until

DOMAINS = 6
INCREMENT = 28.5  # nm of contour length each unfolded domain adds
SENSITIVITY, STIFFNESS, PIEZO = 50.0, 50.0, 200.0  # nm/V, pN/nm, nm/V (the simulator's)
KT, PERSISTENCE = 4.11, 0.4


@pytest.fixture(scope="module")
def ports() -> tuple[int, int, int]:
    return free_port(), free_port(), free_port()


@pytest.fixture(scope="module")
def device(ports) -> Iterator[tuple[tango.DeviceProxy, str]]:
    """The device first (its process forks before the simulator's threads exist), then the board."""
    url = "zmq://127.0.0.1:{}/{}/{}".format(*ports)
    properties = {"Url": url, "PollPeriod": 0.2, "Timeout": 0.5, "StreamTimeout": 0.5,
                  "Sensitivity": SENSITIVITY, "Stiffness": STIFFNESS, "PiezoSensitivity": PIEZO}
    context = DeviceTestContext(ForceSpectrometer, properties=properties, process=True, timeout=30)
    with context as proxy:
        yield proxy, context.get_device_access()


@pytest.fixture(scope="module")
def board(device, ports) -> Iterator[EpzSimulator]:
    simulator = EpzSimulator(seed=7, subscribe_port=ports[1], file_port=ports[2], domains=DOMAINS,
                             increment=INCREMENT)
    with run_in_thread(simulator, port=ports[0]):
        proxy, _ = device
        wait_until(lambda: proxy.state() == tango.DevState.ON, 30, what="the device on the board")
        yield simulator


@pytest.fixture
def afm(device, board) -> Iterator[tango.DeviceProxy]:
    proxy, _ = device
    yield proxy
    board.clear()
    proxy.Stop()
    wait_until(lambda: proxy.operation == "" and proxy.state() == tango.DevState.ON, 30, what="idle and ON")


def _finish(proxy: tango.DeviceProxy, command: str, *args: object) -> str:
    proxy.command_inout(command, *args)
    wait_until(lambda: proxy.operation == "", 30, what=f"{command} ended")
    return proxy.outcome


class Recorder:
    """`tangolab.record.record` on a thread of the test, into a file, until `stop`."""

    def __init__(self, name: str, out: Path) -> None:
        self.stop = threading.Event()
        self.out = out
        self.recording = None
        self.thread = threading.Thread(target=self._run, args=(name,), daemon=True)
        self.thread.start()

    def _run(self, name: str) -> None:
        self.recording = record(name, self.out, progress=None, stop=self.stop)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(30)
        assert self.out.exists(), f"no {self.out}"


def test_settings_in_units_of_force(afm, board):
    afm.setpoint = 100.0  # pN = 0.04 V of deflection at 50 nm/V and 50 pN/nm
    assert board.board.values["SETPOINT"] == [0.04]
    assert afm.setpoint == pytest.approx(100.0)
    with pytest.raises(tango.DevFailed, match="-2500 to 2500 pN"):
        afm.setpoint = 5000.0
    assert board.board.values["SETPOINT"] == [0.04]
    afm.proportionalGain = 0.3
    assert board.board.values["PGAIN"] == [0.3]
    assert afm.get_attribute_config("force").unit == "pN"


def test_a_pull_recorded_through_the_device_shows_the_unfolding_saw_tooth(afm, device, tmp_path):
    _, name = device
    afm.pullSpeed = 1000.0
    afm.contactForce = 300.0
    afm.forceTrigger = 0.0
    afm.timeTrigger = 0.0
    afm.pullDistance = 300.0
    assert _finish(afm, "Approach") == "done"
    recorder = Recorder(name, tmp_path / "pull.h5")
    try:
        wait_until(lambda: recorder.recording is not None or afm.blocksProduced > 0, 10, what="recording")
        time.sleep(0.5)  # the recorder's subscription is live (blocks every 20 ms)
        afm.save = True
        assert _finish(afm, "Pull") == "done"
        afm.save = False
        time.sleep(0.3)
    finally:
        recorder.close()
    with h5py.File(recorder.out) as run:
        windows = [group for group in run.values() if isinstance(group, h5py.Group) and "deflection" in group]
        assert windows, list(run)
        window = max(windows, key=lambda group: group["deflection"].shape[0])
        force = window["deflection"][:] * SENSITIVITY * STIFFNESS  # pN, negative: the molecule pulls
        height = window["height"][:] * PIEZO
    increments = np.diff(_contour_lengths_at_the_peaks(force, height))
    print(f"contour lengths between peaks: {np.round(increments, 1)} nm (simulated {INCREMENT} nm)")
    assert len(increments) == DOMAINS
    assert np.all(np.abs(increments - INCREMENT) < 0.15 * INCREMENT)


def _contour_lengths_at_the_peaks(force: np.ndarray, height: np.ndarray) -> np.ndarray:
    """At each rupture of the saw-tooth (a tension of more than 60 pN released at once), the
    contour length that the worm-like chain gives at the force and extension just before it."""
    smooth = np.convolve(force, np.ones(9) / 9, mode="same")
    in_contact = np.flatnonzero(smooth > 50)
    contact = height[in_contact[-1]] if in_contact.size else height[0]  # where the tip left the surface
    extension = contact - height
    jumps = np.flatnonzero(smooth[6:] - smooth[:-6] > 60)
    ruptures = [jump for jump, before in zip(jumps, np.r_[-10, jumps[:-1]], strict=True) if jump - before > 5]
    fractions = np.linspace(0, 0.99, 10_000)
    wlc = (KT / PERSISTENCE) * (0.25 / (1 - fractions) ** 2 - 0.25 + fractions)
    lengths = []
    for rupture in ruptures:
        peak = max(0, rupture - 20) + int(np.argmin(smooth[max(0, rupture - 20):rupture + 1]))
        if smooth[peak] > -60:  # not a tension released: the tip leaving the surface
            continue
        lengths.append(extension[peak] / np.interp(-smooth[peak], wlc, fractions))
    return np.array(lengths)


def test_the_force_curve_of_a_pull_comes_as_events_in_pn_and_nm(afm):
    assert (afm.get_attribute_config("curveForce").unit, afm.get_attribute_config("curveDistance").unit) == ("pN", "nm")
    afm.pullSpeed, afm.contactForce, afm.forceTrigger, afm.timeTrigger = 1000.0, 300.0, 0.0, 0.0
    afm.pullDistance = 300.0
    assert _finish(afm, "Approach") == "done"
    curves: dict[str, list[np.ndarray]] = {"curveForce": [], "curveDistance": []}

    def keep(name: str):
        return lambda event: event.err or curves[name].append(np.asarray(event.attr_value.value, dtype=float))

    subscriptions = [afm.subscribe_event(name, tango.EventType.CHANGE_EVENT, keep(name)) for name in curves]
    try:
        assert _finish(afm, "Pull") == "done"
        # the saw-tooth's tension peaks (beyond -60 pN) and the 300 nm retract, within one view
        wait_until(lambda: any(curve.size and curve.min() < -60 for curve in list(curves["curveForce"])), 10,
                   what="a curve with the unfolding's tension")
        wait_until(lambda: any(curve.size and curve.max() > 250 for curve in list(curves["curveDistance"])), 10,
                   what="a curve spanning the pull")
    finally:
        for subscription in subscriptions:
            afm.unsubscribe_event(subscription)


def test_stop_ends_a_pull_at_once_with_the_outcome_stopped(afm):
    afm.pullSpeed = 100.0
    afm.pullDistance = 1000.0
    afm.Pull()
    wait_until(lambda: afm.state() == tango.DevState.RUNNING, 10, what="pulling")
    time.sleep(0.3)
    asked = time.monotonic()
    afm.Stop()
    wait_until(lambda: afm.operation == "", 10, what="the pull ended")
    print(f"Stop ended the pull {time.monotonic() - asked:.3f} s after it was asked")
    assert afm.outcome == "stopped"


def test_a_pull_during_another_operation_is_refused_naming_it(afm):
    afm.ForceClamp(10.0)
    with pytest.raises(tango.DevFailed) as refused:
        afm.Pull()
    assert "ForceClamp is running" in refused.value.args[0].desc
    assert afm.operation == "ForceClamp"


def test_a_dropped_stream_is_fault_and_a_gap_in_the_file_and_the_recording_resumes(afm, board, device, tmp_path):
    _, name = device
    afm.save = True  # the recorder writes the samples of save windows
    recorder = Recorder(name, tmp_path / "drop.h5")
    try:
        wait_until(lambda: afm.blocksProduced > 0, 10, what="blocks")
        time.sleep(0.5)
        board.streaming = False
        dropped = time.monotonic()
        wait_until(lambda: afm.state() == tango.DevState.FAULT, 10, what="FAULT")
        print(f"FAULT {time.monotonic() - dropped:.2f} s after the stream stopped")
        assert "Stream lost" in afm.status()
        board.streaming = True
        wait_until(lambda: afm.state() == tango.DevState.ON, 10, what="ON again")
        produced = afm.blocksProduced
        wait_until(lambda: afm.blocksProduced > produced + 10, 10, what="blocks again")
        time.sleep(0.3)
    finally:
        afm.save = False
        recorder.close()
    with h5py.File(recorder.out) as run:
        gaps = run["gaps"][:]
        assert len(gaps) >= 1
        assert any("Stream lost" in row["cause"].decode() for row in gaps), gaps
        written = sum(group["deflection"].shape[0] for group in run.values()
                      if isinstance(group, h5py.Group) and "deflection" in group)
        assert written > 0


def test_overload_is_alarm_with_the_reason(afm, board):
    board.board.forced_overload = True
    wait_until(lambda: afm.state() == tango.DevState.ALARM, 10, what="ALARM")
    assert "Overload" in afm.status()
    assert afm.overload
