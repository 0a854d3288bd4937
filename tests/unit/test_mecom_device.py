"""The PeltierController device in a DeviceTestContext against the MeCom simulator over a real
socket: readings with units, set-points, refusals that send nothing, faults to FAULT and back,
the sink warming when the coolant stops, two channels on one LTR-1200 connection."""

from __future__ import annotations

import pytest
import tango
from tango.test_context import DeviceTestContext, MultiDeviceTestContext

from device_servers.mecom.device import PeltierController
from device_servers.mecom.driver import TARGET_LIMITS
from simulators import run_in_thread
from simulators.mecom import MeComSimulator
from tangolab.scripting import wait_until


@pytest.fixture(scope="module")
def simulator():
    with run_in_thread(MeComSimulator(seed=3, speed=10.0)) as running:
        yield running


@pytest.fixture(scope="module")
def tec(simulator):
    properties = {"Url": simulator.url, "Channel": 1, "PollPeriod": 0.2, "Timeout": 0.5}
    with DeviceTestContext(PeltierController, properties=properties, process=True, timeout=30) as proxy:
        wait_until(lambda: proxy.state() == tango.DevState.ON, 30, what="tec ON")
        yield proxy


@pytest.fixture(autouse=True)
def healthy(simulator, tec):
    simulator.simulator.clear()
    simulator.simulator.set_flow(True)
    wait_until(lambda: tec.state() in (tango.DevState.ON, tango.DevState.RUNNING), 30, what="tec back")
    yield
    simulator.simulator.clear()
    simulator.simulator.set_flow(True)


def sets_sent(simulator) -> list[bytes]:
    return [frame for frame in simulator.simulator.received if frame[7:9] == b"VS"]


def test_1_readings_with_units(tec):
    assert tec.get_attribute_config("objectTemperature").unit == "degC"
    assert tec.get_attribute_config("outputCurrent").unit == "A"
    assert tec.get_attribute_config("outputVoltage").unit == "V"
    assert 15.0 < tec.read_attribute("objectTemperature").value < 30.0
    assert tec.read_attribute("outputStage").value == 0  # OFF
    assert tec.read_attribute("deviceStatus").value == 1  # READY
    assert "output stage OFF" in tec.status()


def test_2_regulates_to_the_target_and_is_running(tec, simulator):
    tec.write_attribute("targetTemperature", -90.0)
    tec.write_attribute("outputStage", 1)  # ON
    assert sets_sent(simulator)[-2][9:16] == b"0BB801C"  # parameter 3000, instance 1, −90 as FLOAT32
    wait_until(lambda: tec.state() == tango.DevState.RUNNING, 30, what="RUNNING")
    wait_until(lambda: abs(tec.read_attribute("objectTemperature").value + 90.0) < 1.0, 60, what="near -90")
    assert tec.read_attribute("outputCurrent").value > 0.0
    assert "regulating the object to -90.00 degC" in tec.status()


def test_3_the_targets_range_is_the_drivers_limits(tec):
    """Clients see (and Tango enforces) the range the driver accepts; the refusal itself is the
    driver's (test_mecom_driver)."""
    config = tec.get_attribute_config("targetTemperature")
    limits = (TARGET_LIMITS.low, TARGET_LIMITS.high, TARGET_LIMITS.unit)
    assert (float(config.min_value), float(config.max_value), config.unit) == limits == (-100, 50, "degC")


def test_4_flow_off_makes_the_sink_warm_up(tec, simulator):
    tec.write_attribute("outputStage", 1)
    wait_until(lambda: tec.state() == tango.DevState.RUNNING, 30, what="RUNNING")
    before = tec.read_attribute("sinkTemperature").value
    simulator.simulator.set_flow(False)
    wait_until(lambda: tec.read_attribute("sinkTemperature").value > before + 3.0, 60, what="sink warmer")
    simulator.simulator.set_flow(True)
    wait_until(lambda: tec.read_attribute("sinkTemperature").value < before + 1.5, 60, what="sink cooled again")


@pytest.mark.parametrize(
    ("fault", "says"),
    [
        ("drop", "LinkError"),
        ("garbage", "not a MeCom frame"),
        ("checksum", "has CRC"),
        ("sequence", "has sequence number"),
        ("address", "comes from address"),
        ("truncate", "no reply"),
    ],
)
def test_5_a_fault_is_fault_with_the_reason_then_recovery(tec, simulator, fault, says):
    instrument = simulator.simulator
    if fault == "drop":
        instrument.set_offline(True)
    elif fault == "garbage":
        instrument.garbage = True
    else:
        instrument.faults.add(fault)
    wait_until(lambda: tec.state() == tango.DevState.FAULT, 30, what=f"FAULT on {fault}")
    assert says in tec.status()
    assert tec.read_attribute("objectTemperature").quality == tango.AttrQuality.ATTR_INVALID
    instrument.clear()
    wait_until(lambda: tec.state() != tango.DevState.FAULT, 30, what=f"back after {fault}")
    assert tec.read_attribute("objectTemperature").quality == tango.AttrQuality.ATTR_VALID


def test_6_two_channels_share_one_connection():
    with run_in_thread(MeComSimulator(seed=4, speed=10.0)) as ltr:
        common = {"Url": ltr.url, "PollPeriod": 0.2, "Timeout": 0.5}
        devices = [{"name": f"lab/tec/{n}", "properties": {**common, "Channel": n}} for n in (1, 2)]
        with MultiDeviceTestContext([{"class": PeltierController, "devices": devices}], process=True, timeout=30) as context:
            first, second = (tango.DeviceProxy(context.get_device_access(f"lab/tec/{n}")) for n in (1, 2))
            for channel in (first, second):
                wait_until(lambda c=channel: c.state() == tango.DevState.ON, 30, what="both ON")
            second.write_attribute("targetTemperature", -20.0)
            assert ltr.simulator.channels[1].target == -20.0
            assert ltr.simulator.channels[0].target == 20.0
            assert first.read_attribute("targetTemperature").value == 20.0
            assert len(ltr.simulator._clients) == 1  # one LTR-1200 connection for both channels


def test_7_a_refused_parameter_is_invalid_with_the_controllers_words_and_the_device_stays_on(tec, simulator):
    """MeCom `+05` (parameter not available) for the sink temperature: that one value goes INVALID
    with the reason in the Status, the others go on, the device stays ON on the same connection."""
    tec.write_attribute("outputStage", 0)  # OFF: the channel is ON, not regulating
    wait_until(lambda: tec.state() == tango.DevState.ON, 30, what="ON")
    connections = simulator.simulator.connections
    assert simulator.simulator.control("refuse 1001 05") == "OK"
    wait_until(lambda: "EER_PAR_NOT_AVAILABLE" in tec.status(), 30, what="the refusal in the Status")
    assert tec.state() == tango.DevState.ON
    assert "sinkTemperature" in tec.status() and "+05" in tec.status()
    assert tec.read_attribute("sinkTemperature").quality == tango.AttrQuality.ATTR_INVALID
    assert tec.read_attribute("objectTemperature").quality == tango.AttrQuality.ATTR_VALID
    assert simulator.simulator.connections == connections  # no reconnection
    simulator.simulator.control("refuse 1001 off")
    wait_until(lambda: tec.read_attribute("sinkTemperature").quality == tango.AttrQuality.ATTR_VALID, 30,
               what="the sink temperature back")
    # the Status is made after the poll that cached the value: it follows within a poll
    wait_until(lambda: "refused" not in tec.status(), 30, what="the refusal gone from the Status")
