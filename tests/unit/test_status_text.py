"""What the core puts in a Status or a DevFailed description reaches a client as it was written:
bytes from the wire escaped (never U+FFFD), and nothing that latin-1 (how Tango carries these
texts) would turn into mojibake. Shown on a real device server: the Cryo-Con's
TemperatureController against its simulator sending garbage (issue 16, defect 13)."""

from __future__ import annotations

import pytest
import tango
from tango.test_context import DeviceTestContext

from device_servers.cryocon.device import TemperatureController
from simulators import run_in_thread
from simulators.cryocon import CryoConSimulator
from tangolab.scripting import wait_until


@pytest.fixture(scope="module")
def simulator():
    with run_in_thread(CryoConSimulator(seed=11)) as running:
        yield running


@pytest.fixture(scope="module")
def device(simulator):
    properties = {"Url": simulator.url, "PollPeriod": 0.2, "Timeout": 0.5}
    with DeviceTestContext(TemperatureController, properties=properties, process=True, timeout=30) as proxy:
        wait_until(lambda: proxy.state() in (tango.DevState.ON, tango.DevState.RUNNING), 30, what="connected")
        yield proxy


def readable(text: str) -> bool:
    """No replacement character, no mojibake of an ellipsis (latin-1 read as UTF-8 or back)."""
    return text.isascii() and "\ufffd" not in text


def test_garbage_reaches_the_status_as_escaped_bytes(device, simulator):
    simulator.simulator.garbage = True
    try:
        wait_until(lambda: "\ufffd" in device.status() or "GarbledReply" in device.status(), 30,
                   what="the garbage in the Status")
        status = device.status()
        assert readable(status), status
        assert "\\x" in status  # the bytes, escaped as they came
        with pytest.raises(tango.DevFailed) as failure:
            device.write_attribute("setpoint1", 80.0)
        description = failure.value.args[0].desc
        assert readable(description), description
    finally:
        simulator.simulator.garbage = False
    wait_until(lambda: device.state() in (tango.DevState.ON, tango.DevState.RUNNING), 30, what="back")
