"""Newport ESP301 three-axis motion controller, simulated: its ASCII command language over three
servo stages (the lens arms).

The protocol follows the ESP301 user's manual (remote mode):

- a command is `<axis><two letters><parameter>`: `1PA12.5` moves axis 1 to 12.5, `2TP?` asks where
  axis 2 is, `TB?` (no axis) reads the error buffer. Letters are case-insensitive, spaces are
  ignored, and one line ending in CR holds several commands separated by `;`;
- a query (`?`, and `TP`, `TS`, `PH`, `DP`, `TV` without it) answers; the answers of one line
  come back in one line, separated by commas, ending in CR LF. A line without a query gets no
  answer at all: a client asks `TB?` (or `TE?`) after each command to learn whether it was taken;
- an error is not answered but logged in a buffer of ten: `TE?` pops the oldest code, `TB?` the
  oldest as `code, timestamp, message` (`0, 451322, NO ERROR DETECTED` when there is none;
  the timestamp counts milliseconds since power-up). Codes of 100 and up belong to an axis:
  `113` is axis 1's `MOTOR NOT ENABLED`.

Simulated: PA/PR moves with trapezoidal profiles (VA velocity, AC acceleration, AG deceleration,
VU and AU their maxima), software travel limits SL/SR (a target beyond them is refused), hardware
limit switches just beyond the travel (a move that reaches one stops there with error x04/x05),
OR homing in the manual's search modes (0: to position 0; 1, 2: the home switch; 3, 4: the
positive or negative limit switch; 5, 6: the limit switch then its index), MD?, ST (decelerates),
AB (every axis stops at the e-stop deceleration AE and its motor goes off), MO/MF, TP/DP/TV, DH,
SN? (2: millimetres), ID?, VE?, TS, PH, KP/KI/KD gains (stored only), OM.

Status words as simulated (the driver relies on PH, not on TS): `TS` is one character whose
bits 0-2 say axes 1-3 move, bits 3-5 that their motors are on, bit 6 always set; `PH` is
`hhhhhhhhH, hhH`: bits 0-2 of the first word are the positive limit switches of axes 1-3,
bits 8-10 the negative ones; bits 0-2 of the second word the home switches.

Faults: the generic ones; `stall AXIS on|off` on the control port holds an axis where it is, its
move never finishing (a jammed arm). `checksum` and `address` are refused: the protocol has
neither.

Default TCP port 10002, the first serial port of a typical terminal server (the controller itself
has RS-232 at 19200 8N1 with RTS/CTS only).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

from device_servers.esp301.protocol import (
    AXES,
    CONTROLLER_COMMANDS,
    HOMING_ABORTED,
    MAXIMUM_ACCELERATION_EXCEEDED,
    MAXIMUM_VELOCITY_EXCEEDED,
    MILLIMETRES,
    MOTOR_NOT_ENABLED,
    NEGATIVE_HARDWARE_LIMIT,
    NEGATIVE_SOFTWARE_LIMIT,
    NOT_ALLOWED_DURING_HOMING,
    OPTIONAL_AXIS,
    PARAMETER_OUT_OF_RANGE,
    POSITIVE_HARDWARE_LIMIT,
    POSITIVE_SOFTWARE_LIMIT,
    READ_ONLY,
    TCP_PORT,
    error_message,
    split,
)

from .core import LineProtocolSimulator, _on_off

VERSION = "ESP301 Version 3.0.1 6/1/2010"
ERROR_BUFFER = 10
MM = MILLIMETRES
SETTINGS = {"VA": "velocity", "AC": "acceleration", "AG": "deceleration", "VU": "max_velocity",
            "AU": "max_acceleration", "AE": "estop_deceleration", "KP": "kp", "KI": "ki", "KD": "kd",
            "OM": "home_mode"}


class Refused(Exception):
    """The controller logs this error code and carries on with the next command."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


@dataclass
class Axis:
    """One servo stage: where it is (physically and as counted), its profile, its switches."""

    number: int
    model: str
    physical: float = 0.0  # mm from the home switch
    offset: float = 0.0  # physical position of the counted 0
    speed: float = 0.0  # mm/s, signed
    target: float | None = None  # physical mm the axis moves to; None when still
    motor_on: bool = True
    stalled: bool = False
    homing: int | None = None  # the search mode while homing
    velocity: float = 5.0
    acceleration: float = 50.0
    deceleration: float = 50.0
    max_velocity: float = 10.0
    max_acceleration: float = 100.0
    estop_deceleration: float = 200.0
    left_limit: float = -25.0  # software limits, counted mm
    right_limit: float = 25.0
    hardware_limit: float = 25.5  # limit switches at ± this, physical mm
    kp: float = 1000.0
    ki: float = 100.0
    kd: float = 2000.0
    home_mode: int = 1
    stopping: bool = False
    errors: list[int] = field(default_factory=list)  # asynchronous errors to log

    @property
    def position(self) -> float:
        return self.physical - self.offset

    @property
    def moving(self) -> bool:
        return self.target is not None or self.speed != 0.0

    def code(self, error: int) -> int:
        return 100 * self.number + error

    def start(self, physical_target: float) -> None:
        self.target = physical_target
        self.stopping = False

    def step(self, dt: float) -> None:
        if self.target is None or self.stalled or not self.motor_on:
            return
        if self.stopping:
            braking = self.estop_deceleration if self.stopping == "estop" else self.deceleration
            self.speed = _towards(self.speed, 0.0, braking * dt)
            self.physical += self.speed * dt
            if self.speed == 0.0:
                self.target, self.stopping = None, False
        else:
            distance = self.target - self.physical
            # the fastest speed from which the axis still stops at the target, and a little more
            # so that it arrives in a step rather than creeping up on it
            reachable = math.sqrt(2 * self.deceleration * abs(distance)) + self.deceleration * dt
            wanted = math.copysign(min(self.velocity, reachable), distance)
            speeding_up = abs(wanted) > abs(self.speed) and wanted * self.speed >= 0
            change = (self.acceleration if speeding_up else self.deceleration) * dt
            self.speed = _towards(self.speed, wanted, change)
            moved = self.speed * dt
            if abs(moved) >= abs(distance) and moved * distance >= 0:
                self.physical, self.speed, self.target = self.target, 0.0, None
            else:
                self.physical += moved
        self._check_switches()
        if self.target is None and self.homing is not None:
            self._homed()

    def _check_switches(self) -> None:
        for sign, error in ((1, POSITIVE_HARDWARE_LIMIT), (-1, NEGATIVE_HARDWARE_LIMIT)):
            if sign * self.physical >= self.hardware_limit and sign * self.speed > 0:
                self.physical = sign * self.hardware_limit
                self.speed, self.target = 0.0, None
                if self.homing not in ((3, 5) if sign > 0 else (4, 6)):
                    self.errors.append(self.code(error))
                    self.homing = None

    def _homed(self) -> None:
        mode, self.homing = self.homing, None
        if mode != 0:  # the switch found is the new counted zero
            self.offset = self.physical

    def home(self, mode: int) -> None:
        self.homing = mode
        if mode == 0:
            self.start(self.offset)
        elif mode in (1, 2):
            self.start(0.0)
        else:
            self.start(math.copysign(self.hardware_limit + 1.0, 1 if mode in (3, 5) else -1))

    @property
    def upper_switch(self) -> bool:
        return self.physical >= self.hardware_limit

    @property
    def lower_switch(self) -> bool:
        return self.physical <= -self.hardware_limit

    @property
    def home_switch(self) -> bool:
        return abs(self.physical) < 0.05


class Esp301Simulator(LineProtocolSimulator):
    """The ESP301 with three axes (mm), on TCP as behind a terminal server."""

    kind: ClassVar[str] = "esp301"
    default_port: ClassVar[int] = TCP_PORT
    terminator: ClassVar[bytes] = b"\r"
    reply_terminator: ClassVar[bytes] = b"\r\n"
    max_step: ClassVar[float] = 0.005
    tick: ClassVar[float] = 0.02

    def __init__(self, *, seed: int | None = None, speed: float = 1.0) -> None:
        super().__init__(seed=seed, speed=speed)
        self.axes = {n: Axis(n, model=f"UTS50CC.{n}") for n in AXES}
        self.clock_ms = 0.0
        self.errors: list[tuple[int, int]] = []  # (code, timestamp ms), oldest first

    # -- the protocol ---------------------------------------------------------------------------

    def handle_line(self, line: str) -> str | None:
        answers = []
        for command in line.replace(" ", "").replace("\n", "").upper().split(";"):
            if not command:
                continue
            try:
                answer = self._command(command)
            except Refused as refused:
                self._log(refused.code)
                continue
            if answer is not None:
                answers.append(answer)
        return ",".join(answers) if answers else None

    def _command(self, command: str) -> str | None:
        parts = split(command)
        if parts is None:
            raise Refused(6)
        axis_text, name, argument = parts
        query = argument == "?" or (name in READ_ONLY and argument == "")
        if name not in self._HANDLERS:
            raise Refused(6)
        axis = None
        if axis_text and (name not in CONTROLLER_COMMANDS or name in OPTIONAL_AXIS):
            axis = self.axes.get(int(axis_text))
            if axis is None:
                raise Refused(9)
        elif name not in CONTROLLER_COMMANDS:
            raise Refused(37)
        if name in SETTINGS:
            return self._setting(axis, SETTINGS[name], argument, query)
        return self._HANDLERS[name](self, axis, None if query else argument, query)

    def _setting(self, axis: Axis, name: str, argument: str, query: bool) -> str | None:
        if query:
            return _number(getattr(axis, name))
        value = _parameter(argument)
        if name == "home_mode":
            if value not in range(7):
                raise Refused(axis.code(PARAMETER_OUT_OF_RANGE))
            axis.home_mode = int(value)
            return None
        if value < 0 or (value == 0 and name not in ("kp", "ki", "kd")):
            raise Refused(axis.code(PARAMETER_OUT_OF_RANGE))
        if name == "velocity" and value > axis.max_velocity:
            raise Refused(axis.code(MAXIMUM_VELOCITY_EXCEEDED))
        if name in ("acceleration", "deceleration") and value > axis.max_acceleration:
            raise Refused(axis.code(MAXIMUM_ACCELERATION_EXCEEDED))
        setattr(axis, name, value)
        return None

    def _move(self, axis: Axis, argument: str | None, query: bool, relative: bool = False) -> str | None:
        if query:
            return _number((axis.target if axis.target is not None else axis.physical) - axis.offset)
        value = _parameter(argument)
        target = axis.position + value if relative else value
        self._check_move(axis)
        if target > axis.right_limit:
            raise Refused(axis.code(POSITIVE_SOFTWARE_LIMIT))
        if target < axis.left_limit:
            raise Refused(axis.code(NEGATIVE_SOFTWARE_LIMIT))
        axis.start(target + axis.offset)
        return None

    def _check_move(self, axis: Axis) -> None:
        if axis.homing is not None:
            raise Refused(axis.code(NOT_ALLOWED_DURING_HOMING))
        if not axis.motor_on:
            raise Refused(axis.code(MOTOR_NOT_ENABLED))

    def _home(self, axis: Axis, argument: str | None, query: bool) -> None:
        mode = axis.home_mode if not argument else _parameter(argument)
        if mode not in range(7):
            raise Refused(axis.code(PARAMETER_OUT_OF_RANGE))
        self._check_move(axis)
        axis.home(int(mode))

    def _stop(self, axis: Axis | None, argument: str | None, query: bool) -> None:
        for each in self._addressed(axis):
            if each.moving:
                each.stopping = True
                if each.homing is not None:
                    each.homing = None
                    self._log(each.code(HOMING_ABORTED))

    def _abort(self, axis: Axis | None, argument: str | None, query: bool) -> None:
        for each in self.axes.values():
            if each.moving:
                each.stopping = "estop"
                each.homing = None
                while each.moving and not each.stalled:
                    each.step(0.001)
            each.speed, each.target, each.motor_on = 0.0, None, False

    def _motion_done(self, axis: Axis | None, argument: str | None, query: bool) -> str:
        return "0" if any(each.moving for each in self._addressed(axis)) else "1"

    def _motor_on(self, axis: Axis, argument: str | None, query: bool) -> str | None:
        if query:
            return "1" if axis.motor_on else "0"
        axis.motor_on = True
        return None

    def _motor_off(self, axis: Axis, argument: str | None, query: bool) -> None:
        axis.motor_on = False
        axis.speed, axis.target, axis.homing = 0.0, None, None

    def _position(self, axis: Axis, argument: str | None, query: bool) -> str:
        return _number(self.reading(f"position{axis.number}", axis.position))

    def _desired_position(self, axis: Axis, argument: str | None, query: bool) -> str:
        return _number((axis.target if axis.target is not None else axis.physical) - axis.offset)

    def _actual_velocity(self, axis: Axis, argument: str | None, query: bool) -> str:
        return _number(axis.speed)

    def _define_home(self, axis: Axis, argument: str | None, query: bool) -> str | None:
        if query:
            return _number(0.0)
        if axis.moving:
            raise Refused(axis.code(PARAMETER_OUT_OF_RANGE))
        axis.offset = axis.physical - (_parameter(argument) if argument else 0.0)
        return None

    def _travel_limit(self, side: str) -> Callable[[Esp301Simulator, Axis, str | None, bool], str | None]:
        def handle(self: Esp301Simulator, axis: Axis, argument: str | None, query: bool) -> str | None:
            if query:
                return _number(getattr(axis, side))
            setattr(axis, side, _parameter(argument))
            return None

        return handle

    def _units(self, axis: Axis, argument: str | None, query: bool) -> str | None:
        if query:
            return str(MM)
        if _parameter(argument) != MM:  # other units are not simulated
            raise Refused(axis.code(PARAMETER_OUT_OF_RANGE))
        return None

    def _identity(self, axis: Axis, argument: str | None, query: bool) -> str:
        if not query:
            raise Refused(38)
        return f"{axis.model}, B{10230 + axis.number}"

    def _version(self, axis: Axis | None, argument: str | None, query: bool) -> str:
        return VERSION

    def _error_code(self, axis: Axis | None, argument: str | None, query: bool) -> str:
        code, _ = self._pop_error()
        return str(code)

    def _error_message(self, axis: Axis | None, argument: str | None, query: bool) -> str:
        code, stamp = self._pop_error()
        return f"{code}, {stamp}, {error_message(code)}"

    def _controller_status(self, axis: Axis | None, argument: str | None, query: bool) -> str:
        return chr(_status_character(self.axes))

    def _hardware_status(self, axis: Axis | None, argument: str | None, query: bool) -> str:
        limits = home = 0
        for each in self.axes.values():
            bit = 1 << (each.number - 1)
            limits |= (bit if each.upper_switch else 0) | ((bit << 8) if each.lower_switch else 0)
            home |= bit if each.home_switch else 0
        return f"{limits:08X}H, {home:02X}H"

    _HANDLERS: ClassVar[dict[str, Callable[..., str | None]]] = {
        "PA": _move,
        "PR": lambda self, axis, argument, query: self._move(axis, argument, query, relative=True),
        "OR": _home,
        "ST": _stop,
        "AB": _abort,
        "MD": _motion_done,
        "MO": _motor_on,
        "MF": _motor_off,
        "TP": _position,
        "DP": _desired_position,
        "TV": _actual_velocity,
        "DH": _define_home,
        "SL": _travel_limit(None, "left_limit"),
        "SR": _travel_limit(None, "right_limit"),
        "SN": _units,
        "ID": _identity,
        "VE": _version,
        "TE": _error_code,
        "TB": _error_message,
        "TS": _controller_status,
        "PH": _hardware_status,
        **{name: None for name in SETTINGS},
    }

    # -- errors ---------------------------------------------------------------------------------

    def _log(self, code: int) -> None:
        if len(self.errors) < ERROR_BUFFER:
            self.errors.append((code, int(self.clock_ms)))

    def _pop_error(self) -> tuple[int, int]:
        return self.errors.pop(0) if self.errors else (0, int(self.clock_ms))

    def _addressed(self, axis: Axis | None) -> list[Axis]:
        return [axis] if axis is not None else list(self.axes.values())

    # -- physics and faults ---------------------------------------------------------------------

    def step(self, dt: float) -> None:
        self.clock_ms += dt * 1000.0
        for axis in self.axes.values():
            axis.step(dt)
            while axis.errors:
                self._log(axis.errors.pop(0))

    def readings(self) -> dict[str, object]:
        return {f"position{n}": axis.position for n, axis in self.axes.items()}

    def stall(self, axis: int, stalled: bool = True) -> None:
        """Hold `axis` where it is: its move never finishes (the overrun fault)."""
        with self.lock:
            if axis not in self.axes:
                raise ValueError(f"no axis {axis}; axes are {', '.join(map(str, AXES))}")
            self.axes[axis].stalled = stalled

    def clear(self) -> None:
        super().clear()
        with self.lock:
            for axis in self.axes.values():
                axis.stalled = False

    def _control_stall(self, axis: str, state: str) -> None:
        try:
            number = int(axis)
        except ValueError:
            raise ValueError(f"axis must be 1, 2 or 3, not {axis!r}") from None
        self.stall(number, _on_off(state))

    def _control_help(self) -> str:
        return super()._control_help() + " | stall AXIS on|off"

    _CONTROL: ClassVar[dict[str, Callable[..., str | None]]] = {
        **LineProtocolSimulator._CONTROL,
        "stall": _control_stall,
        "clear": clear,
        "help": _control_help,
    }



def _status_character(axes: dict[int, Axis]) -> int:
    """TS as simulated: bits 0-2 axes 1-3 moving, bits 3-5 their motors on, bit 6 always set
    (a printable character)."""
    value = 0x40
    for axis in axes.values():
        bit = axis.number - 1
        value |= (1 << bit if axis.moving else 0) | (1 << (bit + 3) if axis.motor_on else 0)
    return value


def _towards(value: float, goal: float, change: float) -> float:
    if abs(goal - value) <= change:
        return goal
    return value + math.copysign(change, goal - value)


def _number(value: float) -> str:
    return f"{value:.5f}"


def _parameter(argument: str | None) -> float:
    if not argument:
        raise Refused(38)
    try:
        value = float(argument)
    except ValueError:
        raise Refused(7) from None
    if not math.isfinite(value):
        raise Refused(7)
    return value
