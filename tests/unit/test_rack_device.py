"""The Rack: the dew point and its margin from a known temperature and humidity (checked against
a literal value), and the device in its own process reading a real EnvironmentBox (its own
process, on the Arduino simulator) as a client, with the margin's alarm limits."""

from __future__ import annotations

import pytest
import tango
from tango.test_context import DeviceTestContext

from device_servers.arduino.device import EnvironmentBox
from device_servers.rack.device import Rack, dew_point_margin, split_attribute
from simulators import run_in_thread
from simulators.arduino import ArduinoSimulator
from tangolab.scripting import wait_until


def test_1_the_margin_above_the_dew_point_from_temperature_and_humidity():
    # 20 °C at 50 %: dew point 9.26 °C by Magnus with Sonntag's constants (17.62, 243.12 °C)
    assert dew_point_margin(20.0, 50.0) == pytest.approx(20.0 - 9.2550, abs=1e-3)
    assert dew_point_margin(15.0, 100.0) == pytest.approx(0.0, abs=1e-9)  # saturated: condensing
    with pytest.raises(ValueError, match="relative humidity 120.0 % is not between 0 and 100"):
        dew_point_margin(20.0, 120.0)


def test_2_source_names_keep_their_host_and_database_parts():
    assert split_attribute("lab/box/1/temperature1") == ("lab/box/1", "temperature1")
    assert split_attribute("tango://h:10000/test/nodb/box/humidity1#dbase=no") == (
        "tango://h:10000/test/nodb/box#dbase=no", "humidity1")
    with pytest.raises(ValueError, match="is not an attribute's name"):
        split_attribute("box/temperature1")


@pytest.fixture(scope="module")
def rack():
    with run_in_thread(ArduinoSimulator(boot=0.25, seed=3)) as simulator:
        box_properties = {"Url": simulator.url, "PollPeriod": 0.2, "Timeout": 0.5, "StartupTime": 5.0}
        box_context = DeviceTestContext(EnvironmentBox, properties=box_properties, process=True, timeout=30)
        with box_context:
            box, _, no_database = box_context.get_device_access().partition("#")  # name#dbase=no
            properties = {"Temperature": f"{box}/temperature1#{no_database}",
                          "Humidity": f"{box}/humidity1#{no_database}", "PollPeriod": 0.2}
            with DeviceTestContext(Rack, properties=properties, process=True, timeout=30) as proxy:
                yield simulator.simulator, proxy


def test_3_the_rack_reads_the_box_and_alarms_near_the_dew_point(rack):
    simulator, proxy = rack
    wait_until(lambda: proxy.state() == tango.DevState.ON, 30, what="rack ON")
    celsius, humidity = proxy.read_attribute("temperature").value, proxy.read_attribute("humidity").value
    assert celsius == pytest.approx(21.5, abs=0.5) and humidity == pytest.approx(45, abs=2)
    assert proxy.read_attribute("dewPointMargin").value == pytest.approx(dew_point_margin(celsius, humidity))
    config = proxy.get_attribute_config("dewPointMargin")
    assert (config.unit, config.alarms.min_alarm, config.alarms.max_alarm) == ("°C", "2", "40")
    simulator.humidities[0] = 95.0  # margin about 0.8 °C
    wait_until(lambda: proxy.state() == tango.DevState.ALARM, 30, what="ALARM near the dew point")
    assert "dewPointMargin" in proxy.status().partition("out of alarm limits: ")[2]  # humidity too
    assert proxy.read_attribute("dewPointMargin").quality == tango.AttrQuality.ATTR_ALARM
