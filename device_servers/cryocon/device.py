"""`TemperatureController`: the Cryo-Con 24C cryogenic temperature controller as a Tango device.

Four temperature inputs and two control loops, read in one round trip per poll. Writes are
checked by the driver against the instrument's ranges before anything is sent.
"""

from __future__ import annotations

import enum
from typing import Any

from tango import DevState
from tango.server import command

from ..core.hardware import HardwareDevice, polled, writable
from ..core.link import Link
from ..core.server import serve
from .driver import RAMP_RATE_LIMITS, SETPOINT_LIMITS, CryoCon24C
from .protocol import HEATER_RANGES, LOOP_TYPES

LoopType = enum.IntEnum("LoopType", list(LOOP_TYPES), start=0)
HeaterRange1 = enum.IntEnum("HeaterRange1", list(HEATER_RANGES[1]), start=0)
HeaterRange2 = enum.IntEnum("HeaterRange2", list(HEATER_RANGES[2]), start=0)


def temperature(channel: str, **kwargs: Any) -> polled:
    return polled(
        dtype=float, unit="K", format="%8.3f", abs_change=0.01, archive_abs_change=0.1,
        doc=f"Temperature of input {channel}; INVALID when no sensor is connected", **kwargs,
    )


def setpoint(loop: int) -> polled:
    return writable(
        dtype=float, format="%8.3f", abs_change=0.001, writes=(CryoCon24C.setpoint.set, loop),
        limits=SETPOINT_LIMITS, doc=f"Control set-point of loop {loop}, in the units of its source input",
    )


def heater_power(loop: int) -> polled:
    return polled(
        dtype=float, unit="%", format="%5.1f", abs_change=0.1, min_value=0, max_value=100, max_warning=95,
        doc=f"Heater output of loop {loop}, in percent of the selected range's full scale",
    )


def ramp_rate(loop: int) -> polled:
    return writable(
        dtype=float, format="%6.2f", abs_change=0.001, writes=(CryoCon24C.ramp_rate.set, loop),
        limits=RAMP_RATE_LIMITS, doc=f"Set-point ramp rate of loop {loop} when its type is RAMPP",
    )


def loop_type(loop: int) -> polled:
    return writable(
        dtype=LoopType, writes=(CryoCon24C.loop_type.set, loop),
        doc=f"Control mode of loop {loop}: OFF, MAN (manual power), PID, TABLE, RAMPP, RAMPT",
    )


class TemperatureController(HardwareDevice):
    """Cryo-Con 24C: four temperature inputs, two heater control loops."""

    temperatureA = temperature("A", max_alarm=350.0)
    temperatureB = temperature("B", max_alarm=350.0)
    temperatureC = temperature("C")
    temperatureD = temperature("D")

    setpoint1 = setpoint(1)
    setpoint2 = setpoint(2)
    heaterPower1 = heater_power(1)
    heaterPower2 = heater_power(2)
    loopType1 = loop_type(1)
    loopType2 = loop_type(2)
    heaterRange1 = writable(
        dtype=HeaterRange1, writes=(CryoCon24C.heater_range.set, 1),
        doc="Heater range of loop 1: HI, MID (1/10 of HI) or LOW (1/100)",
    )
    heaterRange2 = writable(
        dtype=HeaterRange2, writes=(CryoCon24C.heater_range.set, 2),
        doc="Heater range of loop 2: HI or LOW (1/10 of HI)",
    )
    rampRate1 = ramp_rate(1)
    rampRate2 = ramp_rate(2)
    control = writable(
        dtype=bool, writes=CryoCon24C.control.set,
        doc="Whether the control loops drive their heaters (CONTROL / STOP)",
    )

    def create_driver(self, link: Link) -> CryoCon24C:
        return CryoCon24C(link)

    def on_connect(self) -> None:
        self.driver.configure()

    def poll(self) -> dict[str, Any]:
        status = self.driver.read_status()
        values: dict[str, Any] = {f"temperature{ch}": t for ch, t in status.temperatures.items()}
        values["control"] = status.control_on
        for n, loop in status.loops.items():
            values[f"setpoint{n}"] = loop.setpoint
            values[f"heaterPower{n}"] = loop.heater_output
            values[f"loopType{n}"] = LOOP_TYPES.index(loop.loop_type)
            values[f"heaterRange{n}"] = HEATER_RANGES[n].index(loop.heater_range)
            values[f"rampRate{n}"] = loop.ramp_rate
        return values

    def operating_state(self, values: dict[str, Any]) -> tuple[DevState, str]:
        if values["control"]:
            mode = LOOP_TYPES[values["loopType1"]]
            return DevState.RUNNING, f"Control ON: loop 1 {mode} to {values['setpoint1']:.3f} K"
        return DevState.ON, "Control OFF"

    @command
    def StartControl(self) -> None:
        """Engage the control loops (the instrument's CONTROL command)."""
        self.call_driver(self.driver.start_control)

    @command
    def StopControl(self) -> None:
        """Switch every heater off (the instrument's STOP command)."""
        self.call_driver(self.driver.stop_control)


def main() -> None:
    serve(TemperatureController)


if __name__ == "__main__":
    main()
