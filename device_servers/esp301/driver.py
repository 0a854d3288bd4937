"""Driver of the Newport ESP301 three-axis motion controller; each axis is a `StageDriver` in mm.

Pure Python over a `Link` (RS-232 19200 8N1 with RTS/CTS, commands ending in CR, replies in
CR LF), usable from a script as well as from the Tango devices:

    controller = Esp301.on(SerialLink("socket://terminal-server:10002", ...))
    arm = controller.axis(1)
    arm.configure()          # units must be mm; reads the travel and the maximum velocity
    arm.move_to(12.5)        # sends `1PA12.5;TB?`

The controller answers errors only when asked: every line sent here ends in `TB?`, so each
command is checked in the same round trip (`0, 451322, NO ERROR DETECTED` means taken), and an
error comes back as an `InstrumentError` in the controller's words. Values are checked before
sending (`RejectedValue`). The three axes share one line and one error buffer: an error read by
one axis that belongs to another is kept for that axis (`Esp301.pending`), so none is lost.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..core.errors import InstrumentError, RejectedValue
from ..core.limits import Limits
from ..core.link import Link
from ..core.scpi import TextInstrument, number, parsed, text
from ..core.stage import Motion
from .protocol import AXES, HOME_MODES, MILLIMETRES, TCP_PORT, answer_fields

__all__ = ["AXES", "HOME_MODES", "TCP_PORT", "ControllerError", "Esp301", "Esp301Axis"]


@dataclass(frozen=True)
class ControllerError:
    """One entry of the controller's error buffer."""

    code: int
    timestamp: int  # ms since power-up
    message: str

    @classmethod
    def parse(cls, entry: str) -> ControllerError:
        """`0,451322,NO ERROR DETECTED`, as `TB?` answers."""
        code, stamp, message = entry.split(",", 2)
        return cls(int(code), int(stamp), message.strip())

    @property
    def axis(self) -> int | None:
        return self.code // 100 if self.code >= 100 else None

    def __str__(self) -> str:
        where = f"axis {self.axis}: " if self.axis else ""
        return f"{where}{self.message} (error {self.code})"


class Esp301:
    """The controller: one line, one error buffer, three axes."""

    def __init__(self, link: Link) -> None:
        self.link = link
        #: Errors read from the buffer that belong to an axis other than the one asking.
        self.pending: dict[int, list[ControllerError]] = {axis: [] for axis in AXES}
        self._axes: dict[int, Esp301Axis] = {}

    @classmethod
    def on(cls, link: Link) -> Esp301:
        """The one controller object of `link`, shared by every axis on that line."""
        return link.one(cls)

    def axis(self, number: int) -> Esp301Axis:
        if number not in AXES:
            raise RejectedValue(f"axis {number!r} does not exist: the ESP301 has axes 1, 2 and 3")
        return self._axes.setdefault(number, Esp301Axis(self, number))

    def identify(self) -> str:
        """The firmware version, e.g. 'ESP301 Version 3.0.1 6/1/2010'."""
        (version,) = self.run("VE?")
        return version

    def abort(self) -> None:
        """Emergency stop: every axis stops at its e-stop deceleration and its motor goes off."""
        self.run("AB")

    def clear_errors(self) -> list[ControllerError]:
        """Read the error buffer until it is empty; axis errors are kept for their axes."""
        found = []
        with self.link.lock:
            for _ in range(11):  # the buffer holds ten
                error = self._read_error(_Line(self.link).exchange([("TB?", answer_fields("TB?"))])[0][0])
                if error.code == 0:
                    break
                found.append(error)
                if error.axis in self.pending:
                    self.pending[error.axis].append(error)
        return found

    def run(self, *commands: str, asking: int | None = None, polling: bool = False) -> list[str]:
        """Send `commands` in one line, each followed by `TB?`; return the answers of the queries
        among them. An error of an axis other than `asking` (or of any axis, when `polling`: queries
        do not fail, so it is news of a motion) is kept for that axis; any other error raises
        `InstrumentError` naming the command."""
        asked = [(part, answer_fields(part)) for command in commands for part in (command, "TB?")]
        answers = iter(_Line(self.link).exchange(asked)[0])
        found = []
        for command in commands:
            if answer_fields(command):
                found.append(next(answers))
            error = self._read_error(next(answers))
            if error.code == 0:
                continue
            if error.axis in self.pending and (polling or error.axis != asking):
                self.pending[error.axis].append(error)
                continue
            raise InstrumentError(f"ESP301 refused {command}: {error}")
        return found

    @staticmethod
    def _read_error(entry: str) -> ControllerError:
        return parsed(ControllerError.parse, entry, "error buffer entry")


class Esp301Axis:
    """One axis, as a `StageDriver` whose units are mm (the controller's, checked at configure)."""

    needs_homing = False  # the ESP301 moves unhomed, counting from its power-up position

    def __init__(self, controller: Esp301, number: int) -> None:
        self.controller = controller
        self.number = number
        #: The software travel limits (SL, SR), read at `configure`.
        self.travel = Limits(-25.0, 25.0, "mm")
        self.max_velocity = 10.0  # mm/s (VU)
        self.max_acceleration = 100.0  # mm/s² (AU)
        self.motor_on = False
        self.model = ""
        self.homed = False  # since this driver homed the axis: the controller does not say
        self.home_mode = 1
        self._homing = False
        self._error: ControllerError | None = None

    def __repr__(self) -> str:
        return f"Esp301Axis({self.number})"

    # -- configuration --------------------------------------------------------------------------

    def configure(self, motor_on: bool = True) -> None:
        """Check the units are mm, read the travel and the profile maxima, and (by default)
        switch the motor on: what the device relies on after each connect."""
        self.controller.clear_errors()
        units, left, right, max_velocity, max_acceleration, model = self._run(
            f"{self.number}SN?", f"{self.number}SL?", f"{self.number}SR?", f"{self.number}VU?",
            f"{self.number}AU?", f"{self.number}ID?",
        )
        if parsed(number, units, "units") != MILLIMETRES:
            raise InstrumentError(f"axis {self.number} counts in units {units} (SN), not mm ({MILLIMETRES})")
        self.travel = Limits(parsed(number, left, "left limit"), parsed(number, right, "right limit"), "mm")
        self.max_velocity = parsed(number, max_velocity, "maximum velocity")
        self.max_acceleration = parsed(number, max_acceleration, "maximum acceleration")
        self.model = model
        if motor_on:
            self.set_motor(True)

    def set_motor(self, on: bool) -> bool:
        """Motor power on (MO) or off (MF); a move with the motor off is refused (error x13)."""
        self._run(f"{self.number}{'MO' if on else 'MF'}")
        self.motor_on = bool(on)
        return self.motor_on

    # -- StageDriver ----------------------------------------------------------------------------

    def read_motion(self) -> Motion:
        position, done, motor, switches = self.controller.run(
            f"{self.number}TP?", f"{self.number}MD?", f"{self.number}MO?", "PH", asking=self.number, polling=True
        )
        moving = parsed(number, done, "motion done") == 0
        self.motor_on = parsed(number, motor, "motor state") == 1
        limits, home = (_hex(word) for word in switches.split(","))
        bit = 1 << (self.number - 1)
        for error in self.controller.pending[self.number]:
            self._error = error
        self.controller.pending[self.number].clear()
        if self._homing and not moving:
            self._homing = False
            self.homed = self._error is None
        return Motion(
            parsed(number, position, "position"), moving=moving and not self._homing, homing=self._homing,
            homed=self.homed, home_switch=bool(home & bit), upper_limit=bool(limits & bit),
            lower_limit=bool(limits & (bit << 8)), error=None if self._error is None else str(self._error),
        )

    def move_to(self, position: float) -> None:
        """Start an absolute move (PA), within the software travel limits."""
        target = self.travel.check(f"axis {self.number} target", position)
        self._run(f"{self.number}PA{text(target)}")
        self._error = None

    def move_by(self, distance: float) -> None:
        """Start a relative move (PR)."""
        self._run(f"{self.number}PR{text(float(distance))}")
        self._error = None

    def stop(self, immediate: bool) -> None:
        """Stop this axis with its deceleration (ST), immediate or not: the controller's only
        faster stop, AB, stops all three axes and switches their motors off, which no single
        arm's Abort (nor a move overrunning its time) may do to the others. `Esp301.abort` is
        there for a script that wants exactly that."""
        self._run(f"{self.number}ST")
        self._homing = False

    def home(self, mode: int | None = None) -> None:
        """Search for home (OR) in one of HOME_MODES (`home_mode` unless given); the switch
        found becomes position 0."""
        mode = self.home_mode if mode is None else mode
        if mode not in HOME_MODES:
            raise RejectedValue(f"home search mode {mode!r} is not one of {sorted(HOME_MODES)}")
        self._run(f"{self.number}OR{mode}")
        self._error, self._homing, self.homed = None, True, False

    def read_velocity(self) -> float:
        (velocity,) = self._run(f"{self.number}VA?")
        return parsed(number, velocity, "velocity")

    def set_velocity(self, per_second: float) -> float:
        """Velocity of the next moves (VA), up to the axis maximum (VU)."""
        Limits(0.0, self.max_velocity, "mm/s").check(f"axis {self.number} velocity", per_second)
        if per_second <= 0:
            raise RejectedValue(f"axis {self.number} velocity must be above 0 mm/s, up to {self.max_velocity:g}")
        (velocity,) = self._run(f"{self.number}VA{text(per_second)}", f"{self.number}VA?")
        return parsed(number, velocity, "velocity")

    def read_acceleration(self) -> float:
        (acceleration,) = self._run(f"{self.number}AC?")
        return parsed(number, acceleration, "acceleration")

    def set_acceleration(self, per_second2: float) -> float:
        """Acceleration (AC) and deceleration (AG) of the next moves, up to the maximum (AU)."""
        Limits(0.0, self.max_acceleration, "mm/s²").check(f"axis {self.number} acceleration", per_second2)
        if per_second2 <= 0:
            raise RejectedValue(
                f"axis {self.number} acceleration must be above 0 mm/s², up to {self.max_acceleration:g}"
            )
        value = text(per_second2)
        (acceleration,) = self._run(f"{self.number}AC{value}", f"{self.number}AG{value}", f"{self.number}AC?")
        return parsed(number, acceleration, "acceleration")

    def set_gains(self, kp: float, ki: float, kd: float) -> None:
        """The servo loop's PID gains (KP, KI, KD)."""
        for name, gain in (("KP", kp), ("KI", ki), ("KD", kd)):
            Limits(0.0, 2e9).check(f"axis {self.number} {name}", gain)
        self._run(*(f"{self.number}{name}{text(gain)}" for name, gain in (("KP", kp), ("KI", ki), ("KD", kd))))

    def _run(self, *commands: str) -> list[str]:
        return self.controller.run(*commands, asking=self.number)


class _Line(TextInstrument):
    """The controller's line: commands joined by `;`, the answers of its queries by `,`."""

    model = "ESP301"
    answer_separator = ","


def _hex(word: str) -> int:
    return parsed(lambda text: int(text.strip().removesuffix("H"), 16), word, "hardware status word")

