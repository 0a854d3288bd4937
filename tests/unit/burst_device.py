"""A small device for the spy and scripting tests: change events on demand, in bursts."""

from __future__ import annotations

import tango
from tango.server import Device, attribute, command


class Burst(Device):
    """`counter` pushes a change event per step of `Burst(n)`; `level` pushes one on every write;
    `quiet` pushes none (the spy must say it cannot watch it); `LoseLevelEvent` changes `level` without its event."""

    def init_device(self) -> None:
        super().init_device()
        self.count = 0
        self._level = 0.0
        self.set_change_event("counter", True, False)
        self.set_change_event("level", True, False)
        self.set_change_event("State", True, False)
        self.set_state(tango.DevState.ON)

    @attribute(dtype=int)
    def counter(self) -> int:
        return self.count

    @attribute(dtype=float)
    def quiet(self) -> float:
        return 1.0

    @attribute(dtype=float, access=tango.AttrWriteType.READ_WRITE)
    def level(self) -> float:
        return self._level

    @level.write
    def level(self, value: float) -> None:
        self._level = value
        self.push_change_event("level", value)

    @command(dtype_in=int, doc_in="how many change events of counter to push at once")
    def Burst(self, n: int) -> None:
        counter = self.get_device_attr().get_attr_by_name("counter")
        for _ in range(n):
            self.count += 1
            counter.set_value(self.count)
            counter.fire_change_event()

    @command(dtype_in=float, doc_in="a new level whose change event is lost (as ZMQ loses one pushed too early)")
    def LoseLevelEvent(self, value: float) -> None:
        self._level = value

    @command(dtype_in=str)
    def SetState(self, name: str) -> None:
        self.set_state(tango.DevState.names[name])
        self.push_change_event("State")
