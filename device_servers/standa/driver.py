"""Driver of a Standa 8SMC4-USB / 8SMC5 stepper controller in the XIMC binary protocol.

Pure Python over a `Link`, in the stage's full steps (a float: the microstep part is the
fraction, converted with the controller's MicrostepMode):

    link = SerialLink("/dev/ttyACM0", framing=REPLY_FRAMING, write_terminator=b"")
    stage = Standa8SMC(link)
    stage.connect()            # opens the link, reads the microstep mode and the borders
    stage.home()               # returns at once; once home, the next read_motion zeroes there
    stage.read_motion()        # Motion(position=0.0, moving=False, homed=True, ...)
    stage.move_to(4000.5)      # 4000 steps and 128 microsteps (1/256 mode)

Every command is answered at once, in order (nothing arrives unasked): a move's end is seen in
the status (`gets`: MVCMD_RUNNING drops). The controller's `home` finds the home position but
leaves the counter as it was; like libximc's `command_homezero`, the driver sends `zero` once
homing has ended well, so Position 0 is home.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..core.errors import GarbledReply, InstrumentError, RejectedValue, shown
from ..core.limits import Limits
from ..core.link import Link
from ..core.stage import Motion
from .protocol import (
    ERRORS,
    FAULTS,
    MOVE_STATE_MOVING,
    MVCMD_ERROR,
    MVCMD_HOME,
    MVCMD_NAME_BITS,
    MVCMD_RUNNING,
    STATE_IS_HOMED,
    STATE_LEFT_EDGE,
    STATE_RIGHT_EDGE,
    decode,
    encode,
    microsteps_per_step,
    split_steps,
)

#: What smov accepts: speed up to 100 000 steps/s, acceleration and deceleration 1 to 65 535 steps/s².
SPEED = Limits(0.01, 100_000.0, "steps/s")
ACCELERATION = Limits(1.0, 65_535.0, "steps/s²")


@dataclass(frozen=True)
class Status:
    """The fields of `gets` the driver uses."""

    move_state: int
    move_command: int
    position: float  # steps
    speed: float  # steps/s
    flags: int
    gpio: int


class Standa8SMC:
    """One 8SMC4/8SMC5 controller and its stage, in full steps; one method per instrument operation."""

    needs_homing = True

    def __init__(self, link: Link) -> None:
        self.link = link
        self.microsteps = 256  # per full step, until `configure` reads the engine settings
        self.travel = Limits(0.0, 0.0, "steps")
        self._zero_after_homing = False

    # -- connection -----------------------------------------------------------------------------

    def connect(self) -> None:
        """Open the link and read the settings (from a script; the Tango device opens its own)."""
        self.link.open()
        self.configure()

    def close(self) -> None:
        self.link.close()

    def configure(self) -> None:
        """Read the microstep mode (engine settings) and the travel (the borders of the edges settings)."""
        *_, mode, _steps_per_revolution = self._ask(b"geng")
        self.microsteps = microsteps_per_step(mode)
        _flags, _enders, left, u_left, right, u_right = self._ask(b"gedg")
        self.travel = Limits(self._steps(left, u_left), self._steps(right, u_right), "steps")

    # -- reads ----------------------------------------------------------------------------------

    def read_status(self) -> Status:
        (move_state, command, _power, _encoder, _winding, position, u_position, _enc_position,
         speed, u_speed, *_electrics, flags, gpio, _free) = self._ask(b"gets")
        return Status(move_state, command, self._steps(position, u_position), self._steps(speed, u_speed), flags, gpio)

    def read_position(self) -> float:
        """Where the stage is, in steps (gpos)."""
        position, u_position, _encoder = self._ask(b"gpos")
        return self._steps(position, u_position)

    def read_motion(self) -> Motion:
        """The status in one round trip; after a homing that ended well, `zero` first."""
        status = self.read_status()
        running = bool(status.move_command & MVCMD_RUNNING)
        failed = not running and bool(status.move_command & MVCMD_ERROR)
        if self._zero_after_homing and not running:
            self._zero_after_homing = False
            if status.flags & STATE_IS_HOMED and not failed:
                self.zero()
                status = self.read_status()
        homed = bool(status.flags & STATE_IS_HOMED)
        faults = [words for bit, words in FAULTS.items() if status.flags & bit]
        if failed and not faults:
            faults.append("the last move command ended with an error")
        return Motion(
            position=status.position,
            moving=running or bool(status.move_state & MOVE_STATE_MOVING),
            homing=running and status.move_command & MVCMD_NAME_BITS == MVCMD_HOME,
            homed=homed,
            home_switch=homed and not running and status.position == 0,
            upper_limit=bool(status.gpio & STATE_RIGHT_EDGE),
            lower_limit=bool(status.gpio & STATE_LEFT_EDGE),
            error="; ".join(faults) or None,
        )

    def read_move_settings(self) -> tuple[int, ...]:
        """gmov: Speed, uSpeed, Accel, Decel, AntiplaySpeed, uAntiplaySpeed, MoveFlags."""
        return self._ask(b"gmov")

    def read_velocity(self) -> float:
        """Speed of moves, steps/s."""
        speed, u_speed, *_ = self.read_move_settings()
        return self._steps(speed, u_speed)

    def read_acceleration(self) -> float:
        """Acceleration of moves, steps/s² (the deceleration is set to the same)."""
        return float(self.read_move_settings()[2])

    # -- motion ---------------------------------------------------------------------------------

    def move_to(self, steps: float) -> None:
        """Start a move to `steps`; returns at once."""
        self._ask(b"move", *self._split(self.travel.check("target position", steps)))

    def move_by(self, steps: float) -> None:
        """Start a move by `steps` (negative: to the left)."""
        self._ask(b"movr", *self._split(Limits(-2**31, 2**31 - 1, "steps").check("relative move", steps)))

    def stop(self, immediate: bool) -> None:
        """`stop` halts the motor at once; `sstp` decelerates at the set deceleration."""
        self._ask(b"stop" if immediate else b"sstp")

    def home(self) -> None:
        """Start homing; the counter is zeroed once it has ended well (see `read_motion`)."""
        self._ask(b"home")
        self._zero_after_homing = True

    def zero(self) -> None:
        """The present position becomes 0."""
        self._ask(b"zero")

    # -- settings -------------------------------------------------------------------------------

    def set_velocity(self, per_second: float) -> float:
        """Speed of moves in steps/s (to the microstep); returns what the controller took."""
        speed, u_speed = self._split(SPEED.check("velocity", per_second))
        _, _, *rest = self.read_move_settings()
        self._ask(b"smov", speed, u_speed, *rest)
        return self.read_velocity()

    def set_acceleration(self, per_second2: float) -> float:
        """Acceleration and deceleration in steps/s² (whole numbers); returns what the controller took."""
        value = round(ACCELERATION.check("acceleration", per_second2))
        speed, u_speed, _, _, *rest = self.read_move_settings()
        self._ask(b"smov", speed, u_speed, value, value, *rest)
        return self.read_acceleration()

    def set_borders(self, left: float, right: float) -> None:
        """The travel: positions the controller stops at (borders by position, stop at both)."""
        if not left < right:
            raise RejectedValue(f"the left border {left:g} must be below the right one {right:g} (steps)")
        flags, enders, *_ = self._ask(b"gedg")
        self._ask(b"sedg", flags, enders, *self._split(left), *self._split(right))
        self.travel = Limits(left, right, "steps")

    # -- internals ------------------------------------------------------------------------------

    def _ask(self, code: bytes, *values: int) -> tuple[int, ...]:
        """One command and the values of its reply; the controller's error replies raise."""
        request = encode(code, *values)
        answer = self.link.transaction(request)
        replied, data = decode(answer)
        if replied in ERRORS:
            error = InstrumentError if replied != b"errd" else GarbledReply
            raise error(f"the 8SMC refused {code.decode()} {shown(request[4:])}: {ERRORS[replied]}")
        if replied != code:
            raise GarbledReply(f"the reply to {code.decode()} is {shown(answer)}")
        return data

    def _steps(self, whole: int, micro: int) -> float:
        return whole + micro / self.microsteps

    def _split(self, steps: float) -> tuple[int, int]:
        return split_steps(steps, self.microsteps)
