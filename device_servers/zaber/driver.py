"""Driver of a Zaber stage in the Binary protocol (T-Series, firmware 5.xx and later).

Pure Python over a `Link`, in the device's own units (microsteps):

    link = SerialLink("socket://terminal-server:10001", framing=FRAMING, write_terminator=b"")
    slide = ZaberBinaryStage(link, device_number=1)
    slide.connect()              # opens the link, knob off, reads the travel
    slide.home()                 # returns at once; the stage replies when it is home
    slide.read_motion()          # Motion(position=0, moving=False, homed=True, ...)
    slide.move_to(336_000)

Every message is 6 bytes (protocol.py): device number, command number, int32 data
little-endian. A move, a homing and a stop reply only when the motion ends, with the final
position; that reply arrives unasked, between the replies to other queries, so each driver
listens on the line (`link.listen`) and hands its own device's to `on_motion_end` instead of
waiting for it. Several devices on one daisy chain share one serial line: each driver takes the
frames of its device number, and a frame from a number no driver on the line knows
(`ZaberChain`) is garbage, not someone's data.
"""

from __future__ import annotations

from collections.abc import Callable

from ..core.errors import GarbledReply, InstrumentError, RejectedValue, shown
from ..core.limits import Limits
from ..core.link import Link
from ..core.stage import Motion
from .protocol import (
    ACCELERATION_UNIT,
    ANY_COMMAND_ERRORS,
    ERROR,
    ERROR_CODES,
    HOME,
    MODE_AUTO_REPLY_OFF,
    MODE_HOMED,
    MODE_KNOB_OFF,
    MOTION_ENDS,
    MOVE_ABSOLUTE,
    MOVE_RELATIVE,
    MOVING,
    RESET,
    RESTORE_SETTINGS,
    RETURN_POSITION,
    RETURN_SETTING,
    RETURN_STATUS,
    SET_ACCELERATION,
    SET_MAX_POSITION,
    SET_MODE,
    SET_TARGET_SPEED,
    SPEED_UNIT,
    STALLED,
    STOP,
    TCP_PORT,
    decode,
    encode,
)
from .protocol import ECHO as ECHO_COMMAND

__all__ = ["TCP_PORT", "ZaberBinaryStage", "ZaberChain", "decode", "encode"]

#: Speed and acceleration data go up to 512 × microsteps per step − 1 (64 microsteps per step).
PROFILE_DATA = Limits(1, 512 * 64 - 1)
#: The focal-plane slide's travel until the device says otherwise (Return Setting 44).
DEFAULT_MAX_POSITION = 672_255


class ZaberChain:
    """The devices on one serial line (a daisy chain), one per line (`link.one(ZaberChain)`):
    which device numbers have a driver here, and the last frame from a number that has none."""

    def __init__(self, link: Link) -> None:
        self.numbers: set[int] = set()
        #: The last frame that came from a device number no driver on this line has.
        self.stray: bytes | None = None


class ZaberBinaryStage:
    """One Zaber device on a daisy chain, in microsteps; one method per instrument operation."""

    needs_homing = True

    def __init__(self, link: Link, device_number: int = 1) -> None:
        if not 1 <= device_number <= 254:
            raise RejectedValue(f"device number {device_number} is not 1 to 254 (0 addresses all devices)")
        self.link = link
        self.number = device_number
        self.travel = Limits(0, DEFAULT_MAX_POSITION, "microsteps")
        #: Called with the final position (microsteps) when a move, homing or stop ends.
        self.on_motion_end: Callable[[int], None] | None = None
        self.chain = link.one(ZaberChain)
        self.chain.numbers.add(device_number)
        link.listen((ZaberBinaryStage, device_number), self._heard)
        #: Error codes that arrive while a motion command is sent (None at other times).
        self._refusals: list[int] | None = None
        self._motion_error: str | None = None
        self._homed: bool | None = None

    # -- connection -----------------------------------------------------------------------------

    def connect(self) -> None:
        """Open the link and configure the device (from a script; the Tango device opens its own)."""
        self.link.open()
        self.configure()

    def close(self) -> None:
        self.link.close()

    def configure(self) -> None:
        """Knob off and replies on (the device must tell when a move ends); read the travel."""
        mode = self.read_setting(SET_MODE)
        wanted = (mode | MODE_KNOB_OFF) & ~MODE_AUTO_REPLY_OFF & ~MODE_HOMED
        if wanted != mode & ~MODE_HOMED:
            mode = self._ask(SET_MODE, wanted)
        self._homed = bool(mode & MODE_HOMED)
        self.travel = Limits(0, self.read_setting(SET_MAX_POSITION), "microsteps")

    # -- reads ----------------------------------------------------------------------------------

    def read_position(self) -> int:
        """Where the device is, in microsteps (Return Current Position)."""
        return self._ask(RETURN_POSITION)

    def read_status(self) -> int:
        """What the device is doing: 0 idle, 1 homing, 20/21 moving, 23 stopping (see STATUS)."""
        return self._ask(RETURN_STATUS)

    def read_setting(self, setting: int) -> int:
        """The value of a setting, named by the number of the command that sets it (42: target speed)."""
        return self._ask(RETURN_SETTING, setting, reply_command=setting)

    def echo(self, data: int) -> int:
        return self._ask(ECHO_COMMAND, data)

    def read_motion(self) -> Motion:
        """Status and position (two round trips); the home status is re-read only when idle."""
        status = self.read_status()
        position = self.read_position()
        if status == 0 or self._homed is None:
            self._homed = bool(self.read_setting(SET_MODE) & MODE_HOMED)
        return Motion(
            position=position,
            moving=status in MOVING,
            homing=status == 1,
            homed=self._homed,
            home_switch=self._homed and status == 0 and position == 0,
            error="the device reports it stalled" if status == STALLED else self._motion_error,
        )

    def read_velocity(self) -> float:
        """Target speed of moves, microsteps/s."""
        return self.read_setting(SET_TARGET_SPEED) * SPEED_UNIT

    def read_acceleration(self) -> float:
        """Acceleration and deceleration of moves, microsteps/s²."""
        return self.read_setting(SET_ACCELERATION) * ACCELERATION_UNIT

    # -- motion ---------------------------------------------------------------------------------

    def move_to(self, position: float) -> None:
        """Start a move to `position` microsteps; returns at once (the device replies at the end)."""
        target = round(self.travel.check("target position", position))
        self._start(MOVE_ABSOLUTE, target, f"move to {target}")

    def move_by(self, steps: float) -> None:
        """Start a move by `steps` microsteps (negative: towards home)."""
        self._start(MOVE_RELATIVE, round(Limits(-2**31, 2**31 - 1).check("relative move", steps)), f"move by {steps}")

    def home(self) -> None:
        """Start homing: the device retracts to its home switch, then its position is 0."""
        self._start(HOME, 0, "home")
        self._homed = False

    def stop(self, immediate: bool) -> None:
        """Decelerate to a stop (Zaber Binary has one stop, at the set acceleration, whatever `immediate`)."""
        self.link.transaction(encode(self.number, STOP), reply=False)

    def reset(self) -> None:
        """Restart the device as at power-up: the position and the home status are lost."""
        self.link.transaction(encode(self.number, RESET), reply=False)
        self._homed = None

    def restore_settings(self) -> None:
        """Factory settings (speed, acceleration, travel, mode); the knob is on again, so configure after."""
        self._ask(RESTORE_SETTINGS)

    # -- settings -------------------------------------------------------------------------------

    def set_velocity(self, per_second: float) -> float:
        """Target speed in microsteps/s; returns the speed the device took (a multiple of 9.375)."""
        data = self._profile_data("velocity", per_second, SPEED_UNIT, "microsteps/s")
        return self._ask(SET_TARGET_SPEED, data) * SPEED_UNIT

    def set_acceleration(self, per_second2: float) -> float:
        """Acceleration in microsteps/s²; returns what the device took (a multiple of 11 250)."""
        data = self._profile_data("acceleration", per_second2, ACCELERATION_UNIT, "microsteps/s²")
        return self._ask(SET_ACCELERATION, data) * ACCELERATION_UNIT

    def set_max_position(self, microsteps: int) -> int:
        """Limit the travel (the slide must not reach what lies beyond)."""
        if not isinstance(microsteps, int) or microsteps < 0:
            raise RejectedValue(f"maximum position must be a whole number of microsteps from 0, not {microsteps!r}")
        value = self._ask(SET_MAX_POSITION, microsteps)
        self.travel = Limits(0, value, "microsteps")
        return value

    # -- internals ------------------------------------------------------------------------------

    def _ask(self, command: int, data: int = 0, *, reply_command: int | None = None) -> int:
        """One request to this device and the data of its reply; an error reply raises."""
        expected = command if reply_command is None else reply_command
        request = encode(self.number, command, data)
        with self.link.lock:
            self._report_stray()
            reply = self.link.transaction(request, accept=lambda message: self._is_reply(message, expected, command))
        _, replied, value = decode(reply)
        if replied == ERROR:
            raise InstrumentError(f"device {self.number} refused {shown(request)}: {_error(value)}")
        return value

    def _is_reply(self, message: bytes, expected: int, command: int) -> bool:
        device, replied, data = decode(message)
        if device == self.number:
            return replied == expected or (replied == ERROR and data in (command, *ANY_COMMAND_ERRORS))
        if device not in self.chain.numbers:
            raise GarbledReply(
                f"reply {shown(message)} came from device {device}, which is not on this line, "
                f"to a request to device {self.number}"
            )
        return False

    def _start(self, command: int, data: int, what: str) -> None:
        """Send a motion command; an immediate error reply is caught by asking the status after it
        (the device answers in order), while the motion's own reply comes when it ends."""
        with self.link.lock:
            self._report_stray()
            self._motion_error, self._refusals = None, []
            try:
                self.link.transaction(encode(self.number, command, data), reply=False)
                self.read_status()
                refused = [code for code in self._refusals if code in (command, *ANY_COMMAND_ERRORS)]
            finally:
                self._refusals = None
        if refused:
            raise InstrumentError(f"device {self.number} refused to {what}: {_error(refused[0])}")

    def _heard(self, message: bytes) -> None:
        """Every frame that arrives unasked on the line: this device's, or one from a stranger."""
        device, command, data = decode(message)
        if device == self.number:
            self._unasked(command, data)
        elif device not in self.chain.numbers:
            self.chain.stray = message  # reported by the next request on the line

    def _unasked(self, command: int, data: int) -> None:
        """A reply nobody was waiting for: the end of a motion, or an error."""
        if command in MOTION_ENDS:
            if command == HOME:
                self._homed = True
            if self.on_motion_end:
                self.on_motion_end(data)
        elif command == ERROR:
            if self._refusals is not None:  # while a motion command is being sent
                self._refusals.append(data)
            else:  # e.g. a homing that could not find the switch
                self._motion_error = _error(data)

    def _report_stray(self) -> None:
        stray, self.chain.stray = self.chain.stray, None
        if stray is not None:
            raise GarbledReply(f"a frame {shown(stray)} came from device {stray[0]}, which is not on this line")

    @staticmethod
    def _profile_data(what: str, value: float, unit: float, units: str) -> int:
        allowed = Limits(PROFILE_DATA.low * unit, PROFILE_DATA.high * unit, units)
        return round(allowed.check(what, value) / unit)


def _error(code: int) -> str:
    return f"error {code}, {ERROR_CODES.get(code, 'unknown error code')}"
