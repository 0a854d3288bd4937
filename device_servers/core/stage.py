"""One vocabulary for every motion stage, whatever its protocol: Sardana's motor names.

`Position` (writing it starts a move and returns at once), `Velocity`, `Acceleration`,
`Limit_switches` (home, upper, lower), `Step_per_unit` (a property), `Stop`, `Abort`, and here
also `Home` and `Homed`; so Taurus's motor widgets drive any tangolab stage, and a Sardana Pool
does through tangolab's motor controller (tangolab/sardana/).

A stage's driver works in the instrument's own units (encoder counts, microsteps) and offers
the operations of `StageDriver`; the device converts with `Step_per_unit` into the `Unit`
property's unit (mm unless it says otherwise) and does the rest once. Moves and homings are long
operations (core/operations.py: `operation`, `progress`, `timeLeft`, `outcome`, one at a time):
MOVING from the moment one is accepted until it settles, fast polls and `Position` events
during it, ALARM on a limit switch, FAULT when it fails (the instrument reports a stall or a
following error, or it overruns its expected time) until the next move or Home.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

from tango import AttrWriteType, DevState, Except
from tango.server import command, device_property

from .errors import for_tango
from .hardware import polled
from .limits import Limits
from .operations import LongOperationDevice

#: Poll period while the stage moves: at least ten `Position` events a second.
MOVING_POLL_S = 0.05
CLEARED_BY = "the next move or Home clears it"
#: Seconds a stage may take to report the motion it was told to start, before "still" means settled.
SETTLE_GRACE_S = 0.2


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


class Stage(LongOperationDevice):
    """A motion stage (abstract: a subclass builds the driver and declares its framing)."""

    cleared_by = CLEARED_BY

    Unit = device_property(
        dtype=str, default_value="mm",
        doc="The user unit of Position (mm, um, deg): Velocity is in Unit/s, Acceleration in Unit/s2",
    )
    Step_per_unit = device_property(
        dtype=float, default_value=1.0,
        doc="Instrument units (encoder counts, microsteps) per user unit (Unit): Position = steps / Step_per_unit",
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
        self._motion: Motion | None = None
        self._travel_shown: tuple[float, float] | None = None
        # the unit is shown here, the travel from the poll thread: one at a time, or one change's
        # read-modify-write undoes the other's
        self._config_lock = threading.Lock()
        super().init_device()
        self._show_unit()

    def poll(self) -> dict[str, Any]:
        motion = self.driver.read_motion()
        self._motion = motion
        self._show_travel()  # known once connected (an ESP301 and a Zaber stage tell theirs)
        scale = self.Step_per_unit
        values = {
            "Position": motion.position / scale,
            "Limit_switches": [motion.home_switch, motion.upper_limit, motion.lower_limit],
            "Homed": motion.homed,
        }
        if self.running is None:  # while moving, every round trip goes to the position
            values["Velocity"] = self.driver.read_velocity() / scale
            values["Acceleration"] = self.driver.read_acceleration() / scale
        return values

    def operating_state(self, values: dict[str, Any]) -> tuple[DevState, str]:
        """A failed move is FAULT until the next move or Home, which clear the instrument's error too:
        a stage that stalled does not know it could move again before it tries."""
        motion = self._motion
        switches = [name for name, on in (("upper limit", motion.upper_limit), ("lower limit", motion.lower_limit)) if on]
        if motion.error and not switches:  # on a switch, the error is the switch's (the ESP301's "limit detected")
            return DevState.FAULT, f"Motion error: {motion.error}; {CLEARED_BY}"
        if motion.moving or motion.homing:  # moved by someone else (a knob, another program)
            return DevState.MOVING, "Homing" if motion.homing else "Moving"
        if switches:
            said = f" ({motion.error})" if motion.error else ""
            return DevState.ALARM, f"On the {' and '.join(switches)} switch at {values['Position']:.4f} {self.Unit}{said}"
        if self.driver.needs_homing and not motion.homed:
            return DevState.ON, "Not homed: run Home before moving"
        return DevState.ON, f"Stopped at {values['Position']:.4f} {self.Unit}"

    def poll_period(self) -> float:
        return MOVING_POLL_S if self.running is not None else self.PollPeriod

    def halt(self, immediate: bool) -> None:
        """Stop and Abort stop the stage whether or not a move of ours runs (Sardana's Stop)."""
        self.call_driver(self.driver.stop, immediate)

    def time_margin(self) -> float:
        return self.MoveTimeMargin

    # -- moves ----------------------------------------------------------------------------------

    def move(self, target: float) -> None:
        """Start a move to `target` (user units); refused outside the travel, before homing or
        while another operation runs."""
        name = f"moving to {target:g} {self.Unit}"
        self.refuse_if_busy(name)
        scale = self.Step_per_unit
        travel = self.driver.travel
        low, high = sorted((travel.low / scale, travel.high / scale))
        where = f"{self.get_name()} Position"
        if not (math.isfinite(target) and low <= target <= high):
            Except.throw_exception(
                "OutOfTravel",
                for_tango(f"target {target:g} {self.Unit} is outside the travel: allowed {low:g} to {high:g} "
                          f"{self.Unit}; the stage did not move"),
                where,
            )
        motion = self._motion
        if self.driver.needs_homing and motion is not None and not motion.homed:
            Except.throw_exception("NotHomed", "the stage must be homed before it moves: run Home", where)
        start = motion.position / scale if motion else target

        def progress() -> float | None:
            if target == start:
                return None
            return 100.0 * (self.cached("Position")[0] - start) / (target - start)

        self.follow_operation(
            name, _move_time(abs(target - start), self._profile()),
            start=lambda: self.call_driver(self.driver.move_to, target * scale),
            finished=self._settled, progress=progress,
        )

    def set_profile(self, which: str, value: float) -> None:
        setter = self.driver.set_velocity if which == "velocity" else self.driver.set_acceleration
        read_back = self.call_driver(setter, value * self.Step_per_unit)
        name, value = which.capitalize(), value if read_back is None else read_back / self.Step_per_unit
        # as a write: a poll that began before it must not store the old value over it
        self._store(name, value, time.time(), self._quality(name, value), written=True)

    @command
    def Home(self) -> None:
        """Find the home switch; the stage then knows where it is (`Homed`)."""
        travel = abs(self.driver.travel.high - self.driver.travel.low) / self.Step_per_unit
        self.follow_operation(
            "homing", _move_time(travel, self._profile()), start=lambda: self.call_driver(self.driver.home),
            finished=self._settled,
        )

    # -- internals ------------------------------------------------------------------------------

    def _settled(self) -> bool:
        """The stage is still (allowing the instrument a moment to start the motion)."""
        motion, running = self._motion, self.running
        return not (motion.moving or motion.homing) and running is not None and running.elapsed > SETTLE_GRACE_S

    def _profile(self) -> tuple[float, float]:
        velocity = self.cached("Velocity")[0]
        acceleration = self.cached("Acceleration")[0]
        return velocity, acceleration

    def _show_travel(self) -> None:
        """Position's min/max are the travel: Jive, Taurus and Sardana show it, and Tango refuses
        a target beyond it before the device sees it."""
        scale = self.Step_per_unit
        travel = tuple(sorted((self.driver.travel.low / scale, self.driver.travel.high / scale)))
        if travel == self._travel_shown:
            return
        low, high = (repr(limit) for limit in travel)
        self._configure("Position", min_value=low, max_value=high)
        self._travel_shown = travel

    def _show_unit(self) -> None:
        """Position, Velocity and Acceleration in the `Unit` property's unit."""
        for name, unit in (("Position", self.Unit), ("Velocity", f"{self.Unit}/s"),
                           ("Acceleration", f"{self.Unit}/s²")):
            self._configure(name, unit=unit)

    def _configure(self, name: str, **changes: str) -> None:
        with self._config_lock:
            attribute = self.get_device_attr().get_attr_by_name(name)
            config = attribute.get_properties()
            if any(getattr(config, key) != value for key, value in changes.items()):
                for key, value in changes.items():
                    setattr(config, key, value)
                attribute.set_properties(config)


def _move_time(distance: float, profile: tuple[float, float]) -> float:
    """Seconds a trapezoidal move over `distance` takes at (velocity, acceleration)."""
    velocity, acceleration = profile
    if not (velocity > 0 and acceleration > 0):
        return 0.0
    ramp = velocity / acceleration
    if distance < velocity * ramp:  # never reaches full speed
        return 2 * math.sqrt(distance / acceleration)
    return distance / velocity + ramp
