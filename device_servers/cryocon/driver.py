"""Driver of the Cryo-Con 24C cryogenic temperature controller (four inputs, two heater loops).

Pure Python over a `Link`: usable from a script as well as from the Tango device.

    cryo = CryoCon24C(SerialLink("socket://192.168.1.5:5000"))
    cryo.connect()                        # opens the link, sets every input to kelvin
    cryo.read_status().temperatures       # {"A": 77.351, "B": 77.402, "C": 81.2, "D": None}
    cryo.write(cryo.setpoint(1), 80.0)    # LOOP 1:SETP 80;SETP? -> 80.0, as read back

The whole status is one message (`core.scpi`). A setting is checked against the instrument's
ranges before it is sent and read back in the same message; a NAK is the instrument's refusal.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..core.limits import Limits
from ..core.scpi import Quantity, TextInstrument, number, on_off
from .protocol import HEATER_OK, HEATER_RANGES, INPUTS, LOOP_TYPES, LOOPS, NAK, NO_SENSOR, UNITS

#: Set-point in kelvin: the manual rejects set-points below zero or above the loop's maximum
#: set-point, whose factory default is 1000 K (the instrument may be set lower still).
SETPOINT_LIMITS = Limits(0.0, 1000.0, "K")
RAMP_RATE_LIMITS = Limits(0.0, 100.0, "K/min")
MANUAL_POWER_LIMITS = Limits(0.0, 100.0, "%")
GAIN_LIMITS = Limits(0.0, 1000.0)
#: The heater's load resistance on loop 1: 25 or 50 ohms (loop 2's is fixed at 50).
HEATER_LOAD_LIMITS = Limits(25.0, 50.0, "ohm")


def reading(text: str) -> float | None:
    """A temperature, or None for an input without sensor (`.......`)."""
    return None if text.strip() == NO_SENSOR else number(text)


@dataclass(frozen=True)
class LoopStatus:
    setpoint: float  # K
    loop_type: str  # one of LOOP_TYPES
    heater_range: str  # one of HEATER_RANGES[loop]
    ramp_rate: float  # K/min
    ramping: bool  # a RAMPP/RAMPT ramp is in progress
    heater_output: float  # % of the range's full-scale power, as read back from the heater
    heater_status: str  # HEATER_OK, or the instrument's fault text (e.g. "Htr-Low-R")
    source: str  # the controlling input
    manual_power: float  # % of full scale, used in MAN

    @property
    def heater_ok(self) -> bool:
        return self.heater_status == HEATER_OK


@dataclass(frozen=True)
class CryoConStatus:
    temperatures: dict[str, float | None]  # K by input; None: no sensor
    control_on: bool
    loops: dict[int, LoopStatus]


class CryoCon24C(TextInstrument):
    """The Cryo-Con 24C, one quantity a line; every operation is one round trip."""

    model = "Cryo-Con 24C"
    relative_paths = True
    refusal = NAK
    channels: ClassVar = {"input": INPUTS, "loop": LOOPS}

    identity = Quantity("*IDN?", parse=str.strip)
    temperature = Quantity("INP? {input}", parse=reading)
    units = Quantity("INP {input}:UNIT?", "INP {input}:UNIT {}", limits=UNITS)
    control = Quantity("CONT?", {True: "CONT", False: "STOP"}, on_off)
    setpoint = Quantity("LOOP {loop}:SETP?", "LOOP {loop}:SETP {}", answer="{}K", limits=SETPOINT_LIMITS)
    loop_type = Quantity("LOOP {loop}:TYPE?", "LOOP {loop}:TYPE {}", limits=LOOP_TYPES)
    heater_range = Quantity("LOOP {loop}:RANG?", "LOOP {loop}:RANG {}", limits=lambda _, loop: HEATER_RANGES[loop])
    ramp_rate = Quantity("LOOP {loop}:RATE?", "LOOP {loop}:RATE {}", limits=RAMP_RATE_LIMITS)
    ramping = Quantity("LOOP {loop}:RAMP?", parse=on_off)
    heater_output = Quantity("LOOP {loop}:HTRR?", answer="{}%")
    heater_status = Quantity("LOOP {loop}:ERR?", parse=str.strip)
    source = Quantity("LOOP {loop}:SOUR?", limits=INPUTS)
    heater_load = Quantity("LOOP {loop}:LOAD?", "LOOP {loop}:LOAD {}", limits=HEATER_LOAD_LIMITS)
    manual_power = Quantity("LOOP {loop}:PMAN?", "LOOP {loop}:PMAN {}", limits=MANUAL_POWER_LIMITS)
    p_gain = Quantity("LOOP {loop}:PGA?", "LOOP {loop}:PGA {}", limits=GAIN_LIMITS)
    i_gain = Quantity("LOOP {loop}:IGA?", "LOOP {loop}:IGA {}", limits=GAIN_LIMITS)
    d_gain = Quantity("LOOP {loop}:DGA?", "LOOP {loop}:DGA {}", limits=GAIN_LIMITS)

    #: What `read_status` reads of each loop, in the order of LoopStatus.
    LOOP_STATUS = (setpoint, loop_type, heater_range, ramp_rate, ramping, heater_output, heater_status, source,
                   manual_power)

    def connect(self) -> None:
        """Open the link and configure the instrument (from a script; the device opens its own)."""
        super().connect()
        self.configure()

    def configure(self) -> None:
        """Report every input in kelvin: the units all temperatures here are in."""
        self.write_all((self.units(channel), "K") for channel in INPUTS)

    def read_status(self) -> CryoConStatus:
        """Temperatures, control state and both loops, in one round trip."""
        values = iter(self.read(
            *(self.temperature(channel) for channel in INPUTS), self.control,
            *(quantity(loop) for loop in LOOPS for quantity in self.LOOP_STATUS),
        ))
        temperatures = {channel: next(values) for channel in INPUTS}
        control_on = next(values)
        loops = {loop: LoopStatus(*(next(values) for _ in self.LOOP_STATUS)) for loop in LOOPS}
        return CryoConStatus(temperatures, control_on, loops)

    def set_pid(self, loop: int, p: float, i: float, d: float) -> list[float]:
        """Gains: P unit-less, I in seconds, D in 1/s; 0 switches a term off."""
        return self.write_all([(self.p_gain(loop), p), (self.i_gain(loop), i), (self.d_gain(loop), d)])

    def start_control(self) -> None:
        """Engage the control loops (CONTROL)."""
        self.write(self.control, True)

    def stop_control(self) -> None:
        """Disengage both control loops: every heater off (STOP)."""
        self.write(self.control, False)
