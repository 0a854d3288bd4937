"""`StandaStage`: a Standa 8SMC4/8SMC5 stepper controller and its stage as a Tango motor (`lab/stage/2`).

Everything a stage does comes from `Stage` (Sardana's motor vocabulary, MOVING/ALARM/FAULT, the
state rules); this class says how to reach the controller (XIMC frames over its USB serial
port) and that the driver works in full steps: `Step_per_unit` is full steps per mm, whatever
microstep mode the controller runs in.
"""

from __future__ import annotations

from tango.server import device_property

from ..core.link import Link
from ..core.server import serve
from ..core.stage import Stage
from .driver import Standa8SMC
from .protocol import REPLY_FRAMING

#: Full steps per mm of an 8MT173-25 translation stage: 2.5 µm a full step.
STEPS_PER_MM = 400.0


class StandaStage(Stage):
    """A Standa translation stage on an 8SMC4-USB or 8SMC5 controller (XIMC protocol)."""

    framing = REPLY_FRAMING
    write_terminator = b""

    BaudRate = device_property(dtype=int, default_value=115200, doc="Serial links: bits per second (XIMC: 115200)")
    Step_per_unit = device_property(
        dtype=float, default_value=STEPS_PER_MM,
        doc="Full steps per mm: Position = steps / Step_per_unit (8MT173: 2.5 µm a full step)",
    )

    def create_driver(self, link: Link) -> Standa8SMC:
        return Standa8SMC(link)

    def on_connect(self) -> None:
        self.driver.configure()


def main() -> None:
    serve(StandaStage)


if __name__ == "__main__":
    main()
