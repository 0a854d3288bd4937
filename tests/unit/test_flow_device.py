"""The FlowMonitor device in a DeviceTestContext, against the Minitrend simulator over Modbus TCP.

The device runs in a process of its own; the simulator runs in a thread of the test, so the
tests stop flows, force recorder alarms and inject faults.
"""

from __future__ import annotations

import queue
from collections import Counter

import pytest
import tango
from tango.test_context import DeviceTestContext

from device_servers.flow.device import FlowMonitor
from simulators import run_in_thread
from simulators.minitrend import MinitrendSimulator
from tangolab.scripting import wait_until

POLL_PERIOD = 0.2
PENS = [f"pen{n}" for n in range(1, 7)]


@pytest.fixture(scope="module")
def simulator():
    with run_in_thread(MinitrendSimulator(seed=3)) as running:
        yield running


@pytest.fixture(scope="module")
def device(simulator):
    properties = {"Url": simulator.url, "PollPeriod": POLL_PERIOD, "Timeout": 0.5}
    with DeviceTestContext(FlowMonitor, properties=properties, process=True, timeout=30) as proxy:
        wait_until(lambda: proxy.state() == tango.DevState.ON, 30, what="device connected")
        yield proxy


@pytest.fixture(autouse=True)
def healthy(simulator, device):
    """Every test starts and ends with all coolant flowing and a connected device."""
    simulator.simulator.clear()
    wait_until(lambda: device.state() == tango.DevState.ON, 30, what="device ON with every flow running")
    yield
    simulator.simulator.clear()


@pytest.fixture
def statuses(device):
    """Every Status the device pushes from now on."""
    pushed: queue.Queue[str] = queue.Queue()

    def collect(event: tango.EventData) -> None:
        if not event.err:
            pushed.put(event.attr_value.value)

    subscription = device.subscribe_event("Status", tango.EventType.CHANGE_EVENT, collect)
    subscriptions_in_place(device)
    yield pushed
    device.unsubscribe_event(subscription)


def subscriptions_in_place(device: tango.DeviceProxy) -> None:
    """Wait until the device's event publisher has every subscription this client made so far.

    `subscribe_event` returns once it has read the first value; the subscription reaches the
    device's ZMQ publisher a moment later, and an event pushed before then is lost (ZMQ's late
    joiner). Subscriptions travel in order on one connection: once a live event of a newer
    subscription arrives, the older ones are in place. The newer ones here are the six pens,
    which the flows' noise keeps pushing."""
    heard: Counter[str] = Counter()  # events by pen; the first of each is the value read at subscription

    def count(event: tango.EventData) -> None:
        heard[event.attr_name] += 1

    ids = [device.subscribe_event(name, tango.EventType.CHANGE_EVENT, count) for name in PENS]
    try:
        wait_until(lambda: any(n > 1 for n in heard.values()), 30, what="a live pen event")
    finally:
        for event_id in ids:
            device.unsubscribe_event(event_id)


def pushed_status(pushed: queue.Queue[str], starts: str, timeout: float = 30) -> str:
    """The first status pushed that starts with `starts`."""
    def found() -> str | None:
        while True:
            try:
                status = pushed.get_nowait()
            except queue.Empty:
                return None
            if status.startswith(starts):
                return status
    return wait_until(found, timeout, what=f"a status starting {starts!r}")


def test_six_pens_in_l_per_min_with_alarm_limits(device):
    for name in PENS:
        reading = device.read_attribute(name)
        assert reading.quality == tango.AttrQuality.ATTR_VALID, name
        assert 1.4 <= reading.value <= 3.1, (name, reading.value)
        config = device.get_attribute_config(name)
        assert (config.unit, config.format, float(config.alarms.min_alarm)) == ("l/min", "%5.2f", 0.4)
        assert device.read_attribute(f"{name}Alarms").value == 0
    assert device.status() == "6 flows above their alarm levels"


def test_the_pens_are_the_recorders_pens_0_1_2_3_8_and_9(device, simulator):
    nominal = simulator.simulator.nominal
    for name, pen in zip(PENS, (0, 1, 2, 3, 8, 9), strict=True):
        assert device.read_attribute(name).value == pytest.approx(nominal[pen], abs=0.15), name


def test_a_stopped_flow_is_alarm_naming_the_pen_and_restoring_it_clears_it(device, simulator):
    assert simulator.simulator.control("flow 1 off") == "OK"  # recorder pen 1 is pen2
    wait_until(lambda: device.state() == tango.DevState.ALARM, 20, what="ALARM on a stopped flow")
    wait_until(lambda: "pen2 flow" in device.status(), 10, what="pen2 named in the status")
    assert "below 0.4 l/min" in device.status()
    assert device.read_attribute("pen2").quality == tango.AttrQuality.ATTR_ALARM
    assert simulator.simulator.control("flow 1 on") == "OK"
    wait_until(lambda: device.state() == tango.DevState.ON, 20, what="ON once the flow is back")
    assert device.read_attribute("pen2").quality == tango.AttrQuality.ATTR_VALID


def test_a_recorder_alarm_is_alarm_naming_the_pen_and_the_alarm(device, simulator):
    assert simulator.simulator.control("alarm 8 0x04") == "OK"  # recorder pen 8 is pen5
    wait_until(lambda: device.state() == tango.DevState.ALARM, 20, what="ALARM on a recorder alarm")
    assert device.status() == "pen5 (recorder pen 8) alarm 3 on"
    assert device.read_attribute("pen5Alarms").value == 0x04


def test_the_alarm_level_is_the_attributes_min_alarm(device):
    config = device.get_attribute_config("pen3")
    config.alarms.min_alarm = "5.0"
    device.set_attribute_config(config)
    try:
        wait_until(lambda: device.state() == tango.DevState.ALARM, 20, what="ALARM below a raised level")
        assert "pen3 flow" in device.status() and "below 5 l/min" in device.status()
    finally:
        config.alarms.min_alarm = "0.4"
        device.set_attribute_config(config)
    wait_until(lambda: device.state() == tango.DevState.ON, 20, what="ON at the usual level")


def test_a_modbus_exception_reply_leaves_the_connection_and_shows_the_refusal(device, simulator):
    """The recorder's own refusal: the pens go INVALID with its words, no FAULT, no reconnection."""
    connections = simulator.simulator.connections
    assert simulator.simulator.control("exception on") == "OK"
    wait_until(lambda: "Modbus exception 4 SERVER DEVICE FAILURE" in device.status(), 30, what="the refusal")
    assert device.state() == tango.DevState.ALARM  # six flows without a value
    assert "refused by the instrument: pen1, pen2" in device.status()
    assert device.read_attribute("pen1").quality == tango.AttrQuality.ATTR_INVALID
    simulator.simulator.clear()
    wait_until(lambda: device.state() == tango.DevState.ON, 30, what="ON again")
    assert device.read_attribute("pen1").quality == tango.AttrQuality.ATTR_VALID
    assert simulator.simulator.connections == connections  # the same connection throughout


@pytest.mark.parametrize(
    ("fault", "says"),
    [
        ("offline on", "LinkError"),
        ("delay 2", "no valid reply"),
        ("garbage on", "no valid reply"),  # pymodbus finds no reply frame in random bytes
    ],
)
def test_a_fault_is_fault_with_the_reason_then_the_device_recovers_alone(device, simulator, fault, says):
    assert simulator.simulator.control(fault) == "OK"
    wait_until(lambda: device.state() == tango.DevState.FAULT, 30, what=f"FAULT on {fault}")
    wait_until(lambda: says in device.status(), 10, what=f"{says!r} in the status")
    assert simulator.url in device.status()
    assert device.read_attribute("pen1").quality == tango.AttrQuality.ATTR_INVALID
    simulator.simulator.clear()
    wait_until(lambda: device.state() == tango.DevState.ON, 30, what=f"ON again after {fault}")
    assert device.read_attribute("pen1").quality == tango.AttrQuality.ATTR_VALID


def test_a_dropped_connection_is_fault_then_the_device_reconnects(device, simulator, statuses):
    simulator.simulator.drop()
    status = pushed_status(statuses, "LinkError")
    assert "connection lost" in status and simulator.url in status
    pushed_status(statuses, "6 flows above")
    assert device.state() == tango.DevState.ON
