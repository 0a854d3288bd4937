"""Small real source devices for the CcdHead tests: a Peltier channel, a gauge and a flow pen.

Writing one of their attributes pushes a change event at once, as the lab's devices do when a
value moves. Run as a module, it serves them, or CcdHead devices, on a given port until stdin
closes: a server process of its own, started with `subprocess` rather than forked by a test
context, since a server forked from a process that has talked to Tango servers may not answer
or not end (omniORB state inherited by the fork).

    python -m tests.unit.ccd_sources sources PORT N          # test/{tec,gauge,flow}/1..N
    python -m tests.unit.ccd_sources heads PORT PROPERTIES   # {"test/ccd/1": {...properties}, ...}
"""

from __future__ import annotations

import enum
import json
import sys
import time
from typing import ClassVar

from tango import AttrQuality, AttrWriteType, DevState
from tango.server import Device, attribute, command
from tango.test_context import MultiDeviceTestContext

HOST = "127.0.0.1"


class Source(Device):
    """Values written by a client are pushed as change events at once; `Hush` stops that and
    freezes the reading's time stamp (a device that no longer reads its instrument); `Invalidate`
    pushes an attribute's value as INVALID and says why in the status."""

    def init_device(self) -> None:
        super().init_device()
        self.values: dict[str, float] = dict(self.initial)
        self.quality = AttrQuality.ATTR_VALID
        self.frozen_at: float | None = None
        for name in self.values:
            self.set_change_event(name, True, False)
        self.set_change_event("State", True, False)
        self.set_state(DevState.ON)
        self.set_status("reading")

    def reading(self, name: str) -> tuple[float, float, AttrQuality]:
        return self.values[name], self.frozen_at or time.time(), self.quality

    def store(self, name: str, value: float) -> None:
        self.values[name] = value
        self.quality = AttrQuality.ATTR_VALID
        if self.frozen_at is None:
            self.push_change_event(name, *self.reading(name))

    @command
    def Hush(self) -> None:
        self.frozen_at = time.time()

    @command
    def Speak(self) -> None:
        self.frozen_at = None
        for name in self.values:
            self.push_change_event(name, *self.reading(name))

    @command(dtype_in=str)
    def Invalidate(self, why: str) -> None:
        self.quality = AttrQuality.ATTR_INVALID
        self.set_status(why)
        for name in self.values:
            self.push_change_event(name, *self.reading(name))


OutputStage = enum.IntEnum("OutputStage", ["OFF", "ON", "LIVE", "HW_ENABLE"], start=0)


class Tec(Source):
    """A Peltier channel: RUNNING while its output stage is not OFF; counts the writes to it."""

    initial: ClassVar[dict[str, float]] = {"objectTemperature": -90.0, "targetTemperature": -90.0}

    def init_device(self) -> None:
        super().init_device()
        self.stage_writes: list[str] = []
        self._stage = OutputStage.HW_ENABLE
        self.set_state(DevState.RUNNING)

    @attribute(dtype=float, unit="degC", access=AttrWriteType.READ_WRITE)
    def objectTemperature(self) -> tuple[float, float, AttrQuality]:
        return self.reading("objectTemperature")

    @objectTemperature.write
    def objectTemperature(self, value: float) -> None:
        self.store("objectTemperature", value)

    @attribute(dtype=float, unit="degC", access=AttrWriteType.READ_WRITE)
    def targetTemperature(self) -> tuple[float, float, AttrQuality]:
        return self.reading("targetTemperature")

    @targetTemperature.write
    def targetTemperature(self, value: float) -> None:
        self.store("targetTemperature", value)

    @attribute(dtype=OutputStage, access=AttrWriteType.READ_WRITE)
    def outputStage(self) -> int:
        return int(self._stage)

    @outputStage.write
    def outputStage(self, value: int) -> None:
        self._stage = OutputStage(value)
        self.stage_writes.append(self._stage.name)
        state = DevState.ON if self._stage is OutputStage.OFF else DevState.RUNNING
        if state != self.get_state():
            self.set_state(state)
            self.push_change_event("State")

    @attribute(dtype=(str,), max_dim_x=100, doc="Every value written to outputStage, in order")
    def stageWrites(self) -> list[str]:
        return self.stage_writes


class Gauge(Source):
    initial: ClassVar[dict[str, float]] = {"pressure": 1e-6}

    @attribute(dtype=float, unit="mbar", access=AttrWriteType.READ_WRITE)
    def pressure(self) -> tuple[float, float, AttrQuality]:
        return self.reading("pressure")

    @pressure.write
    def pressure(self, value: float) -> None:
        self.store("pressure", value)


class Flow(Source):
    initial: ClassVar[dict[str, float]] = {"pen1": 1.2}

    @attribute(dtype=float, unit="l/min", access=AttrWriteType.READ_WRITE)
    def pen1(self) -> tuple[float, float, AttrQuality]:
        return self.reading("pen1")

    @pen1.write
    def pen1(self, value: float) -> None:
        self.store("pen1", value)


def source_classes(heads: range) -> list[dict]:
    return [
        {"class": cls, "devices": [{"name": f"test/{family}/{n}"} for n in heads]}
        for cls, family in ((Tec, "tec"), (Gauge, "gauge"), (Flow, "flow"))
    ]


def main() -> None:
    kind, port, what = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    if kind == "sources":
        devices = source_classes(range(1, int(what) + 1))
    else:
        from device_servers.ccd.device import CcdHead

        heads = json.loads(what)
        devices = [{"class": CcdHead, "devices": [{"name": n, "properties": p} for n, p in heads.items()]}]
    with MultiDeviceTestContext(devices, host=HOST, port=port, timeout=30):
        print("serving", flush=True)
        sys.stdin.read()  # until the test closes our stdin (or ends us)


if __name__ == "__main__":
    main()
