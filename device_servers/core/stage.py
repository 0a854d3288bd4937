"""One vocabulary for every motion stage, whatever its protocol: Sardana's motor names.

`Position` (writing it starts a move and returns at once), `Velocity`, `Acceleration`,
`Limit_switches` (home, upper, lower), `Step_per_unit` (a property), `Stop`, `Abort`, and here
also `Home` and `Homed`; so Sardana's generic Tango motor controllers and Taurus's motor
widgets drive any tangolab stage with no glue.

A stage's driver works in the instrument's own units (encoder counts, microsteps) and offers
the operations of `StageDriver`; the device converts with `Step_per_unit` and does the rest
once: MOVING from the moment a move is accepted until it settles, fast polls and `Position`
events during the move, ALARM on a limit switch, FAULT when a move fails (the instrument reports
a stall or a following error, or the move overruns its expected time) until the next move or
Home, and the state rules that refuse what the present state does not allow.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Protocol

from tango import AttReqType, AttrWriteType, DevState, Except
from tango.server import command, device_property

from .hardware import HardwareDevice, polled
from .limits import Limits

#: Poll period while the stage moves: at least ten `Position` events a second.
MOVING_POLL_S = 0.05
CLEARED_BY = "the next move or Home clears it"


@dataclass(frozen=True)
class Motion:
    """One reading of a stage, in the instrument's units."""

    position: float
    moving: bool
    homing: bool = False
    homed: bool = True
    home_switch: bool = False
    upper_limit: bool = False
    lower_limit: bool = False
    #: What went wrong with the motion, in words (a stall, a following error); None when fine.
    error: str | None = None


class StageDriver(Protocol):
    """What every stage driver offers, in the instrument's units (steps, counts)."""

    #: The travel the stage accepts targets in.
    travel: Limits
    #: Whether the stage refuses moves until it has been homed.
    needs_homing: bool

    def read_motion(self) -> Motion: ...
    def move_to(self, position: float) -> None: ...  # starts the move, returns at once
    def stop(self, immediate: bool) -> None: ...
    def home(self) -> None: ...
    def read_velocity(self) -> float: ...
    def set_velocity(self, per_second: float) -> float | None: ...
    def read_acceleration(self) -> float: ...
    def set_acceleration(self, per_second2: float) -> float | None: ...


class Stage(HardwareDevice):
    """A motion stage (abstract: a subclass builds the driver and declares its framing)."""

    Step_per_unit = device_property(
        dtype=float, default_value=1.0,
        doc="Instrument units (encoder counts, microsteps) per user unit (mm): Position = steps / Step_per_unit",
    )
    MoveTimeMargin = device_property(
        dtype=float, default_value=2.0,
        doc="Seconds a move or a homing may overrun its expected time (plus 50 %) before FAULT",
    )

    Position = polled(
        dtype=float, unit="mm", format="%9.4f", abs_change=1e-4, archive_abs_change=0.01,
        access=AttrWriteType.READ_WRITE, fset=lambda device, value: device.move(value),
        doc="Where the stage is; writing it starts a move there and returns at once",
    )
    Velocity = polled(
        dtype=float, unit="mm/s", format="%7.4f", abs_change=1e-6, access=AttrWriteType.READ_WRITE,
        fset=lambda device, value: device.set_profile("velocity", value), doc="Speed of the next moves",
    )
    Acceleration = polled(
        dtype=float, unit="mm/s²", format="%7.4f", abs_change=1e-6, access=AttrWriteType.READ_WRITE,
        fset=lambda device, value: device.set_profile("acceleration", value),
        doc="Acceleration and deceleration of the next moves",
    )
    Limit_switches = polled(
        dtype=(bool,), max_dim_x=3, doc="Switches active now: home, upper limit, lower limit (Sardana's order)"
    )
    Homed = polled(dtype=bool, doc="Whether the stage knows where it is (homed since power-up)")

    # -- the device's part ----------------------------------------------------------------------

    def init_device(self) -> None:
        self._activity: str | None = None  # "moving to 12.5 mm", "homing"
        self._deadline = math.inf
        self._overrun: str | None = None
        self._motion: Motion | None = None
        super().init_device()

    def poll(self) -> dict[str, Any]:
        motion = self.driver.read_motion()
        self._motion = motion
        scale = self.Step_per_unit
        if self._activity and not (motion.moving or motion.homing) and time.monotonic() > self._accepted + 0.2:
            self._activity, self._deadline = None, math.inf  # settled (allowing the instrument to start)
        if self._activity and time.monotonic() > self._deadline:
            self.driver.stop(immediate=True)
            self._overrun = f"{self._activity} did not finish in time ({self._expected:.1f} s expected); stopped"
            self.error_stream(self._overrun)
            self._activity, self._deadline = None, math.inf
        values = {
            "Position": motion.position / scale,
            "Limit_switches": [motion.home_switch, motion.upper_limit, motion.lower_limit],
            "Homed": motion.homed,
        }
        if not self._activity:  # while moving, every round trip goes to the position
            values["Velocity"] = self.driver.read_velocity() / scale
            values["Acceleration"] = self.driver.read_acceleration() / scale
        return values

    def operating_state(self, values: dict[str, Any]) -> tuple[DevState, str]:
        """A failed move is FAULT until the next move or Home, which clear the instrument's error too:
        a stage that stalled does not know it could move again before it tries."""
        motion = self._motion
        switches = [name for name, on in (("upper limit", motion.upper_limit), ("lower limit", motion.lower_limit)) if on]
        if self._overrun:
            return DevState.FAULT, f"{self._overrun}; {CLEARED_BY}"
        if motion.error and not switches:  # on a switch, the error is the switch's (the ESP301's "limit detected")
            return DevState.FAULT, f"Motion error: {motion.error}; {CLEARED_BY}"
        if self._activity or motion.moving or motion.homing:
            return DevState.MOVING, (self._activity or ("homing" if motion.homing else "moving")).capitalize()
        if switches:
            said = f" ({motion.error})" if motion.error else ""
            return DevState.ALARM, f"On the {' and '.join(switches)} switch at {values['Position']:.4f} mm{said}"
        if self.driver.needs_homing and not motion.homed:
            return DevState.ON, "Not homed: run Home before moving"
        return DevState.ON, f"Stopped at {values['Position']:.4f} mm"

    def poll_period(self) -> float:
        return MOVING_POLL_S if self._activity else self.PollPeriod

    # -- moves ----------------------------------------------------------------------------------

    def move(self, target: float) -> None:
        """Start a move to `target` (user units); refused outside the travel or before homing."""
        scale = self.Step_per_unit
        travel = self.driver.travel
        low, high = sorted((travel.low / scale, travel.high / scale))
        where = f"{self.get_name()} Position"
        if not (math.isfinite(target) and low <= target <= high):
            Except.throw_exception(
                "OutOfTravel", f"target {target:g} mm is outside the travel: allowed {low:g} to {high:g} mm; "
                "the stage did not move", where,
            )
        motion = self._motion
        if self.driver.needs_homing and motion is not None and not motion.homed:
            Except.throw_exception("NotHomed", "the stage must be homed before it moves: run Home", where)
        start = motion.position / scale if motion else target
        self.call_driver(self.driver.move_to, target * scale)
        self._begin(f"moving to {target:g} mm", _move_time(abs(target - start), self._profile()))

    def set_profile(self, which: str, value: float) -> None:
        setter = self.driver.set_velocity if which == "velocity" else self.driver.set_acceleration
        read_back = self.call_driver(setter, value * self.Step_per_unit)
        name, value = which.capitalize(), value if read_back is None else read_back / self.Step_per_unit
        # as a write: a poll that began before it must not store the old value over it
        self._store(name, value, time.time(), self._quality(name, value), written=True)

    @command
    def Stop(self) -> None:
        """Stop with the configured deceleration."""
        self.call_driver(self.driver.stop, False)

    @command
    def Abort(self) -> None:
        """Stop at once."""
        self.call_driver(self.driver.stop, True)

    @command
    def Home(self) -> None:
        """Find the home switch; the stage then knows where it is (`Homed`)."""
        self.call_driver(self.driver.home)
        travel = abs(self.driver.travel.high - self.driver.travel.low) / self.Step_per_unit
        self._begin("homing", _move_time(travel, self._profile()))

    # -- state rules ----------------------------------------------------------------------------

    def is_Position_allowed(self, request: AttReqType) -> bool:
        if request == AttReqType.WRITE_REQ:
            self._refuse_while("homing", "a move")
        return True

    def is_Home_allowed(self) -> bool:
        self._refuse_while("", "Home")
        return True

    def _refuse_while(self, activity: str, what: str) -> None:
        busy = self._activity or ""
        state = self.get_state()
        if (activity and busy.startswith(activity)) or (not activity and state == DevState.MOVING):
            Except.throw_exception(
                "NotAllowed", f"{what} is not allowed while the stage is {state} ({busy or 'moving'}); "
                "wait for it to settle or run Stop", f"{self.get_name()} {what}",
            )

    # -- internals ------------------------------------------------------------------------------

    def _profile(self) -> tuple[float, float]:
        velocity = self.cached("Velocity")[0]
        acceleration = self.cached("Acceleration")[0]
        return velocity, acceleration

    def _begin(self, activity: str, expected: float) -> None:
        self._accepted = time.monotonic()
        self._expected = expected
        self._deadline = self._accepted + 1.5 * expected + self.MoveTimeMargin
        self._activity, self._overrun = activity, None
        self._set_state(DevState.MOVING, activity.capitalize())
        self._wake.set()


def _move_time(distance: float, profile: tuple[float, float]) -> float:
    """Seconds a trapezoidal move over `distance` takes at (velocity, acceleration)."""
    velocity, acceleration = profile
    if not (velocity > 0 and acceleration > 0):
        return 0.0
    ramp = velocity / acceleration
    if distance < velocity * ramp:  # never reaches full speed
        return 2 * math.sqrt(distance / acceleration)
    return distance / velocity + ramp
