"""The Telescope device in a DeviceTestContext (own process) with the simulator in a thread of the
test: offsets (MOVING until in position), refusals that change nothing, focus, the dome's weather.
(Nodding with a camera: tests/integration/test_camera_lab.py.)"""

from __future__ import annotations

import pytest
import tango
from tango.test_context import DeviceTestContext

from device_servers.telescope.device import Telescope
from simulators import run_in_thread
from simulators.telescope import TelescopeSimulator
from tangolab.scripting import wait_until

ON, MOVING, ALARM = tango.DevState.ON, tango.DevState.MOVING, tango.DevState.ALARM


@pytest.fixture(scope="module")
def simulator():
    with run_in_thread(TelescopeSimulator(seed=2)) as running:
        yield running


@pytest.fixture(scope="module")
def telescope(simulator):
    with DeviceTestContext(Telescope, properties={"Url": simulator.url, "PollPeriod": 0.1, "Timeout": 1.0,
                                                  "NodPattern": [0, 0, 5, 5]},
                           process=True, timeout=30) as proxy:
        wait_until(lambda: proxy.state() == ON, 30, what="telescope ON")
        yield proxy


def test_an_offset_moves_the_telescope_until_it_is_in_position(telescope):
    states = []
    telescope.Offset([6.0, -3.0])
    wait_until(lambda: states.append(telescope.state()) or telescope.read_attribute("inPosition").value
               and telescope.state() == ON and telescope.raOffset == pytest.approx(6.0), 30, interval=0.05,
               what="in position at the offsets")
    assert MOVING in states
    assert telescope.decOffset == pytest.approx(-3.0)
    assert "In position at offsets 6.00, -3.00 arcsec" in telescope.status()


def test_refusals_say_what_is_allowed_and_change_nothing(telescope):
    with pytest.raises(tango.DevFailed) as refused:
        telescope.Offset([5000.0, 0.0])
    assert "-3600 to 3600 arcsec" in refused.value.args[0].desc
    with pytest.raises(tango.DevFailed, match="give two offsets"):
        telescope.Offset([1.0])
    with pytest.raises(tango.DevFailed, match="no Camera property"):
        telescope.StartNodding()
    assert telescope.read_attribute("nodding").value is False
    with pytest.raises(tango.DevFailed, match="pairs of offsets"):
        telescope.write_attribute("nodPattern", [1.0, 2.0, 3.0])
    assert list(telescope.read_attribute("nodPattern").value) == [0, 0, 5, 5]
    with pytest.raises(tango.DevFailed):
        telescope.write_attribute("focus", 11.0)
    telescope.write_attribute("focus", -1.25)
    wait_until(lambda: telescope.focus == pytest.approx(-1.25), 10, what="the focus read back")


def test_wet_air_at_the_dome_is_an_alarm_with_the_reason(telescope, simulator):
    simulator.simulator._control_humidity("95")
    try:
        wait_until(lambda: telescope.state() == ALARM, 10, what="ALARM")
        assert "Risk of condensation: humidity 95" in telescope.status()
        assert telescope.read_attribute("humidity").quality == tango.AttrQuality.ATTR_ALARM
    finally:
        simulator.simulator._control_humidity("35")
    wait_until(lambda: telescope.state() == ON, 10, what="ON again")
