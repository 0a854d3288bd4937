"""The three axes of one simulated ESP301, each a NewportAxis device in one server process: the
fixture the ESP301 and shared-line tests both stand on."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import tango
from tango.test_context import MultiDeviceTestContext

from device_servers.esp301.device import NewportAxis
from tangolab.scripting import wait_until

NAMES = ("lab/esp301/1", "lab/esp301/2", "lab/esp301/3")


@contextmanager
def three_axes(url: str, poll_period: float) -> Iterator[list[tango.DeviceProxy]]:
    """The three axes on `url`, each ON, as proxies in axis order."""
    common = {"Url": url, "PollPeriod": poll_period, "Timeout": 0.5, "MoveTimeMargin": 1.0}
    devices_info = [{
        "class": NewportAxis,
        "devices": [{"name": name, "properties": {**common, "Axis": n}} for n, name in enumerate(NAMES, 1)],
    }]
    with MultiDeviceTestContext(devices_info, process=True, timeout=30) as context:
        proxies = [context.get_device(name) for name in NAMES]
        for proxy in proxies:
            wait_until(lambda p=proxy: p.state() == tango.DevState.ON, 30, what="axis ON")
        yield proxies
