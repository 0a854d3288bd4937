"""The HostMonitor in a DeviceTestContext (its own process) reading this host through psutil:
every reading present with its unit, and the disk's alarm limit lowered under its use makes the
device ALARM naming diskUsed (and ON again once the limit is back)."""

from __future__ import annotations

import pytest
import tango
from tango.test_context import DeviceTestContext

from device_servers.host.device import HostMonitor
from tangolab.scripting import wait_until

UNITS = {"cpu": "%", "memoryUsed": "%", "memoryAvailable": "GiB", "diskUsed": "%", "diskFree": "GiB",
         "networkReceive": "B/s", "networkSend": "B/s", "maxTemperature": "°C"}


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    properties = {"PollPeriod": 0.2, "DiskPath": str(tmp_path_factory.mktemp("disk"))}
    with DeviceTestContext(HostMonitor, properties=properties, process=True, timeout=30) as proxy:
        # the network rates need two readings
        wait_until(lambda: proxy.read_attribute("networkSend").quality == tango.AttrQuality.ATTR_VALID, 30,
                   what="network rates")
        yield proxy


def test_1_every_reading_is_there_with_its_unit(host):
    assert host.state() == tango.DevState.ON
    for name in ("cpu", "load1", "load5", "load15", "memoryUsed", "memoryAvailable", "diskUsed", "diskFree",
                 "networkReceive", "networkSend"):
        reading = host.read_attribute(name)
        assert reading.quality == tango.AttrQuality.ATTR_VALID, name
        assert reading.value >= 0, name
    assert 0 < host.read_attribute("diskUsed").value < 100
    assert host.read_attribute("memoryAvailable").value > 0
    assert {name: host.get_attribute_config(name).unit for name in UNITS} == UNITS
    names = host.read_attribute("temperatureNames").value
    if names is None or len(names) == 0:  # a host without sensors: said, not a fault
        assert host.read_attribute("maxTemperature").quality == tango.AttrQuality.ATTR_INVALID
        assert "no temperature sensors on this host" in host.status()
    else:
        assert len(host.read_attribute("temperatures").value) == len(names)
        assert "hottest sensor" in host.status()


def test_2_the_disk_above_its_alarm_limit_is_alarm(host):
    used = host.read_attribute("diskUsed").value
    config = host.get_attribute_config("diskUsed")
    assert (config.alarms.max_warning, config.alarms.max_alarm) == ("80", "90")
    config.alarms.max_warning, config.alarms.max_alarm = f"{used / 4:g}", f"{used / 2:g}"
    host.set_attribute_config(config)
    try:
        wait_until(lambda: host.state() == tango.DevState.ALARM, 30, what="ALARM with the disk above its limit")
        assert "out of alarm limits: diskUsed" in host.status()
        assert host.read_attribute("diskUsed").quality == tango.AttrQuality.ATTR_ALARM
    finally:
        config.alarms.max_warning, config.alarms.max_alarm = "80", "90"
        host.set_attribute_config(config)
    wait_until(lambda: host.state() == tango.DevState.ON, 30, what="ON with the limit back")
