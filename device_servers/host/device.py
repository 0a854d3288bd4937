"""`HostMonitor`: the health of the host it runs on, as HiPERCAM's rack watched its computers:
CPU, load averages, memory, the disk holding the lab's run folder, network rates and, where the
host has sensors, temperatures. One per host (`lab/host/1` in the one-host demo lab; a lab on
several hosts places one on each with its `hosts` section).

Its "instrument" is the operating system, read through psutil: there is no line to lose, so
FAULT means psutil itself failed. The alarm limits are the attributes' own (Jive edits them):
the disk above 90 % full or memory above 95 % used is ALARM, which the device's State shows.
A host without temperature sensors (most virtual machines) says so in the Status and stays ON.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import psutil
from tango import DevState
from tango.server import device_property

from ..core.hardware import HardwareDevice, polled
from ..core.line import Line
from ..core.server import serve

GIB = 1024**3


class HostLine(Line):
    """The operating system as the device's "line": always open (psutil needs no connection)."""

    @property
    def is_open(self) -> bool:
        return True

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass


def run_folder() -> Path:
    """The lab's run folder (every lab process carries it in TANGOLAB_RUN_DIR), else the working folder."""
    return Path(os.environ.get("TANGOLAB_RUN_DIR") or os.getcwd())


class HostReader:
    """psutil's readings of this host; network rates from the counters' change since the last read."""

    def __init__(self, disk_path: Path) -> None:
        self.disk_path = disk_path
        self._counters: tuple[float, int, int] | None = None
        psutil.cpu_percent()  # the first call only starts psutil's CPU interval

    def read(self) -> dict[str, Any]:
        memory = psutil.virtual_memory()
        disk = psutil.disk_usage(str(self.disk_path))
        load1, load5, load15 = psutil.getloadavg()
        received, sent = self._rates()
        sensors = [(f"{chip}/{reading.label or n}", reading.current)
                   for chip, readings in psutil.sensors_temperatures().items()
                   for n, reading in enumerate(readings)]
        return {
            "cpu": psutil.cpu_percent(),
            "load1": load1, "load5": load5, "load15": load15,
            "memoryUsed": memory.percent,
            "memoryAvailable": memory.available / GIB,
            "diskUsed": disk.percent,
            "diskFree": disk.free / GIB,
            "networkReceive": received,
            "networkSend": sent,
            "temperatureNames": [name for name, _ in sensors],
            "temperatures": [celsius for _, celsius in sensors],
            "maxTemperature": max((celsius for _, celsius in sensors), default=None),
        }

    def _rates(self) -> tuple[float | None, float | None]:
        """Bytes/s received and sent (all interfaces) since the last call; None on the first."""
        counters = psutil.net_io_counters()
        now = (time.monotonic(), counters.bytes_recv, counters.bytes_sent)
        last, self._counters = self._counters, now
        if last is None or now[0] <= last[0]:
            return None, None
        elapsed = now[0] - last[0]
        return (now[1] - last[1]) / elapsed, (now[2] - last[2]) / elapsed


class HostMonitor(HardwareDevice):
    """The host this server runs on, read every `PollPeriod` through psutil."""

    Url = device_property(dtype=str, default_value="host://", doc="Unused: the monitor reads the host it runs on")
    PollPeriod = device_property(dtype=float, default_value=2.0, doc="Seconds between two readings")
    DiskPath = device_property(
        dtype=str, default_value="", doc="A folder on the file system to watch; empty: the lab's run folder"
    )

    cpu = polled(dtype=float, unit="%", format="%5.1f", abs_change=1.0, doc="CPU use over the last period, all cores")
    load1 = polled(dtype=float, format="%6.2f", abs_change=0.05, doc="Load average over 1 minute")
    load5 = polled(dtype=float, format="%6.2f", abs_change=0.05, doc="Load average over 5 minutes")
    load15 = polled(dtype=float, format="%6.2f", abs_change=0.05, doc="Load average over 15 minutes")
    memoryUsed = polled(dtype=float, unit="%", format="%5.1f", abs_change=0.5, max_warning=90, max_alarm=95,
                        doc="Memory in use (not available to new programs)")
    memoryAvailable = polled(dtype=float, unit="GiB", format="%7.2f", abs_change=0.05,
                             doc="Memory available to new programs without swapping")
    diskUsed = polled(dtype=float, unit="%", format="%5.1f", abs_change=0.1, max_warning=80, max_alarm=90,
                      doc="How full the file system of the run folder (or DiskPath) is")
    diskFree = polled(dtype=float, unit="GiB", format="%8.2f", abs_change=0.1, doc="Free space on that file system")
    networkReceive = polled(dtype=float, unit="B/s", format="%10.0f", rel_change=0.1,
                            doc="Bytes received per second, all interfaces, over the last period")
    networkSend = polled(dtype=float, unit="B/s", format="%10.0f", rel_change=0.1,
                         doc="Bytes sent per second, all interfaces, over the last period")
    temperatureNames = polled(dtype=(str,), max_dim_x=256, doc="The host's temperature sensors, chip/label")
    temperatures = polled(dtype=(float,), max_dim_x=256, unit="°C", format="%5.1f",
                          doc="The sensors' readings, in the order of temperatureNames")
    maxTemperature = polled(dtype=float, unit="°C", format="%5.1f", abs_change=0.5, max_warning=80, max_alarm=90,
                            doc="The hottest sensor; INVALID on a host without sensors")

    def create_link(self) -> Line:
        return HostLine(self.Url)

    def create_driver(self, link: Line) -> HostReader:
        return HostReader(Path(self.DiskPath) if self.DiskPath else run_folder())

    def poll(self) -> dict[str, Any]:
        return self.driver.read()

    def operating_state(self, values: dict[str, Any]) -> tuple[DevState, str]:
        sensors = (f"hottest sensor {values['maxTemperature']:.0f} °C" if values["maxTemperature"] is not None
                   else "no temperature sensors on this host")
        return DevState.ON, (f"CPU {values['cpu']:.0f} %, load {values['load1']:.2f}, memory "
                             f"{values['memoryUsed']:.0f} % used, disk {values['diskUsed']:.0f} % full "
                             f"({self.driver.disk_path}); {sensors}")


def main() -> None:
    serve(HostMonitor)


if __name__ == "__main__":
    main()
