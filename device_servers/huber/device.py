"""`Chiller`: a Huber Unichiller as a Tango device (`lab/chiller/1`).

One LAI `G` exchange per poll reads everything; `setpoint` and `mode` are written with the
same command. The unit's alarm flag makes the device ALARM.
"""

from __future__ import annotations

import enum
from typing import Any

from tango import DevState

from ..core.hardware import HardwareDevice, polled, writable
from ..core.link import Link
from ..core.server import serve
from .driver import SETPOINT_LIMITS, HuberChiller
from .protocol import FRAMING, MODES

ChillerMode = enum.IntEnum("ChillerMode", list(MODES), start=0)


class Chiller(HardwareDevice):
    """Huber Unichiller: bath temperature, set-point, pump / cooling / off."""

    framing = FRAMING
    write_terminator = b"\r"

    temperature = polled(
        dtype=float, unit="degC", format="%7.2f", abs_change=0.01, archive_abs_change=0.1,
        doc="Bath temperature (the unit's internal sensor)",
    )
    externalTemperature = polled(
        dtype=float, unit="degC", format="%7.2f", abs_change=0.01, archive_abs_change=0.1,
        doc="Temperature of the external sensor; INVALID when none is connected",
    )
    setpoint = writable(
        dtype=float, format="%7.2f", abs_change=0.01, writes=HuberChiller.set_setpoint, limits=SETPOINT_LIMITS,
        doc="Temperature the unit regulates the bath to in COOL (not kept over a power cycle)",
    )
    mode = writable(
        dtype=ChillerMode, writes=HuberChiller.set_mode,
        doc="OFF, PUMP (circulation only) or COOL (circulation and temperature control)",
    )
    alarm = polled(dtype=bool, doc="The unit reports an alarm (see its display)")

    def create_driver(self, link: Link) -> HuberChiller:
        return HuberChiller(link)

    def poll(self) -> dict[str, Any]:
        status = self.driver.read_status()
        return {
            "temperature": status.internal,
            "externalTemperature": status.external,
            "setpoint": status.setpoint,
            "mode": list(MODES).index(status.mode),
            "alarm": status.alarm,
        }

    def operating_state(self, values: dict[str, Any]) -> tuple[DevState, str]:
        mode = list(MODES)[values["mode"]]
        bath = f"bath {values['temperature']:.2f} degC"
        if values["alarm"]:
            return DevState.ALARM, f"The chiller reports an alarm (mode {mode}, {bath}): see its display"
        if mode == "COOL":
            return DevState.RUNNING, f"Cooling to {values['setpoint']:.2f} degC, {bath}"
        if mode == "PUMP":
            return DevState.ON, f"Pump only, no temperature control; {bath}"
        return DevState.OFF, f"Off; {bath}"


def main() -> None:
    serve(Chiller)


if __name__ == "__main__":
    main()
