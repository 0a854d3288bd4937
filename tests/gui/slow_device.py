"""A device that is slow or broken on purpose, for the GUI's never-frozen tests: `slow` takes
3 s to read, `broken` raises, `level` is a plain writable number, `Nap` takes 3 s to run.

Run as its own server process: `python tests/gui/slow_device.py <instance>` (TANGO_HOST set).
"""

from __future__ import annotations

import time

import tango
from tango.server import Device, attribute, command

SLOW_SECONDS = 3.0


class SlowDevice(Device):
    def init_device(self) -> None:
        super().init_device()
        self._level = 0.0
        self.set_state(tango.DevState.ON)
        self.set_status("slow on purpose")

    @attribute(dtype=float, unit="s", doc="takes 3 s to read")
    def slow(self) -> float:
        time.sleep(SLOW_SECONDS)
        return SLOW_SECONDS

    @attribute(dtype=float, doc="raises on every read")
    def broken(self) -> float:
        raise RuntimeError("broken on purpose")

    @attribute(dtype=float, access=tango.AttrWriteType.READ_WRITE, min_value=-10, max_value=10)
    def level(self) -> float:
        return self._level

    @level.write
    def level(self, value: float) -> None:
        self._level = value

    @command(doc_in="takes 3 s")
    def Nap(self) -> None:
        time.sleep(SLOW_SECONDS)


if __name__ == "__main__":
    SlowDevice.run_server()
