"""Long operations, once: a move, a homing, an approach, a pull, an exposure, a grating change.

A command (or a write) starts one and returns at once; the device is MOVING (motion) or RUNNING
(anything else) until it ends, and every device with long operations shows the same attributes,
each with change events:

- `operation`: what runs ("" when idle), e.g. "moving to 12.5 mm", "Pull";
- `progress` (0-100 %) and `timeLeft` (s);
- `outcome`: how the last one ended: "done", "stopped", "aborted" or "failed: <reason>".

and the same commands: `Stop` (graceful: the operation is asked to wind down) and `Abort` (at
once). A second operation while one runs is refused with a DevFailed naming the one running.
One that overruns its expected time (plus half of it, plus `time_margin()`) is aborted and ends
"failed", the device FAULT with the reason; a failed operation leaves the device FAULT until
the next operation starts.

A device author picks one of two shapes:

- work done here, on the operation's own thread (a pull, a ramp, an exposure):

      @command(dtype_in=float)
      def Pull(self, distance: float) -> None:
          self.run_operation("Pull", lambda op: self._pull(op, distance), expected=distance / self.speed)

      def _pull(self, op: Running, distance: float) -> None:
          while op.sleep(0.05):              # False as soon as Stop or Abort is asked
              done = self.driver.advance()   # raise OperationFailed("why") to fail it
              op.report(100 * done / distance)
              if done >= distance:
                  return

- work the instrument does while the poll loop watches it (a stage's move):

      self.follow_operation(f"moving to {x:g} mm", expected, start=lambda: self.driver.move_to(x),
                            finished=lambda: not self.motion.moving, motion=True)

The poll loop keeps the state the operation gives (it does not set ON in the middle of a
pull); an ALARM or a FAULT the poll finds shows meanwhile, and a followed operation that ends
in a FAULT (a stage that stalled) has failed with the FAULT's reason. `halt(immediate)` is what
`Stop` and `Abort` tell the instrument (a stage's driver stop); the default tells it nothing.
Work on a thread cannot be killed: it must look at `op.sleep` or `op.stopping` often (Stop
"within 0.2 s" means at least every 0.2 s).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Any

from tango import AttrQuality, DevState, Except
from tango.server import attribute, command

from .errors import for_tango
from .hardware import HardwareDevice

#: An operation may take this much longer than expected, plus `time_margin()`, before it is an overrun.
OVERRUN_FACTOR = 1.5
#: Seconds of slack beyond `OVERRUN_FACTOR` times the expected time (a device may say otherwise).
TIME_MARGIN_S = 2.0
#: The least change of progress (%) or time left (s) worth an event, and a new value to read.
FIGURE_STEP = 0.1
DONE, STOPPED, ABORTED, FAILED = "done", "stopped", "aborted", "failed"


class OperationFailed(Exception):
    """Raised by an operation's work to end it as failed, with these words as the reason."""


class Running:
    """One operation under way: what its work sees (stop and abort requests, progress reports)
    and what the device keeps about it."""

    def __init__(
        self, device: LongOperationDevice, name: str, expected: float, motion: bool, margin: float,
        finished: Callable[[], bool] | None = None, progress: Callable[[], float | None] | None = None,
    ) -> None:
        self.device = device
        self.name = name
        self.expected = expected
        self.motion = motion
        self.started = time.monotonic()
        self.deadline = self.started + OVERRUN_FACTOR * expected + margin
        self.finished = finished
        self.progress_of = progress
        self.thread: threading.Thread | None = None
        self.stop_asked = False
        self.abort_asked = False
        self.failure: str | None = None
        self._ending = threading.Event()
        self._reported: tuple[float, float | None, float] | None = None  # percent, seconds left, when

    @property
    def stopping(self) -> bool:
        """Whether the work should wind down now (Stop, Abort or an overrun asked it to)."""
        return self._ending.is_set()

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def sleep(self, seconds: float) -> bool:
        """Wait `seconds` unless asked to end meanwhile; True while the work should go on."""
        return not self._ending.wait(seconds)

    def report(self, percent: float, time_left: float | None = None) -> None:
        """Progress in % (0-100) and, if the work knows better than the expected time, the
        seconds left; shown at once."""
        self._reported = (min(max(float(percent), 0.0), 100.0), time_left, time.monotonic())
        if self.device.running is self:  # not after an Init dropped it
            self.device._show(self.figures())

    def figures(self) -> dict[str, float]:
        """progress and timeLeft now: as reported, else from the instrument, else by the clock."""
        elapsed = self.elapsed
        time_left = max(self.expected - elapsed, 0.0)
        if self._reported is not None:
            percent, said, when = self._reported
            time_left = time_left if said is None else max(float(said) - (time.monotonic() - when), 0.0)
        elif self.progress_of is not None and (measured := self.progress_of()) is not None:
            percent = min(max(measured, 0.0), 100.0)
        else:  # the clock's guess, never 100 before it ends
            percent = min(100.0 * elapsed / self.expected, 99.0) if self.expected > 0 else 0.0
        return {"progress": percent, "timeLeft": time_left}

    def ask(self, *, abort: bool) -> None:
        self.stop_asked = True
        self.abort_asked = self.abort_asked or abort
        self._ending.set()

    def outcome(self) -> str:
        if self.failure is not None:
            return f"{FAILED}: {self.failure}"
        return ABORTED if self.abort_asked else STOPPED if self.stop_asked else DONE


class LongOperationDevice(HardwareDevice):
    """A hardware device with long operations (abstract, as `HardwareDevice`)."""

    #: How a failed operation's FAULT status ends: what clears it.
    cleared_by = "the next operation clears it"

    operation = attribute(
        dtype=str, fget=lambda device: device._figure("operation"), change_event_implemented=True,
        change_event_detect=False, doc='The long operation running now ("" when idle)',
    )
    progress = attribute(
        dtype=float, unit="%", format="%5.1f", min_value=0, max_value=100,
        fget=lambda device: device._figure("progress"), change_event_implemented=True, change_event_detect=False,
        doc="How far the running operation (or the last one) got",
    )
    timeLeft = attribute(
        dtype=float, unit="s", format="%.1f", fget=lambda device: device._figure("timeLeft"),
        change_event_implemented=True, change_event_detect=False, doc="Seconds the running operation still needs",
    )
    outcome = attribute(
        dtype=str, fget=lambda device: device._figure("outcome"), change_event_implemented=True,
        change_event_detect=False,
        doc='How the last operation ended: done, stopped, aborted or "failed: <reason>" ("" before any); '
        "its time is when it ended",
    )

    # -- what a device class may provide --------------------------------------------------------

    def halt(self, immediate: bool) -> None:
        """Tell the instrument to stop (`Stop`: gently; `Abort`, an overrun: at once), whether or
        not an operation runs; raise a DevFailed if it cannot (`call_driver` does)."""

    def time_margin(self) -> float:
        """Seconds an operation may overrun `OVERRUN_FACTOR` times its expected time."""
        return TIME_MARGIN_S

    # -- starting operations --------------------------------------------------------------------

    def run_operation(
        self, name: str, work: Callable[[Running], Any], expected: float, *, motion: bool = False
    ) -> None:
        """Start `work(running)` on a thread of its own and return at once; refused (DevFailed
        "Busy") while another operation runs. `expected` is its duration in seconds."""
        running = self._claim(name, expected, motion)
        running.thread = threading.Thread(
            target=self._work, args=(running, work), name=f"{name} on {self.get_name()}", daemon=True
        )
        self._begin(running)
        running.thread.start()

    def follow_operation(
        self, name: str, expected: float, *, start: Callable[[], Any], finished: Callable[[], bool],
        progress: Callable[[], float | None] | None = None, motion: bool = True,
    ) -> None:
        """Run `start()` (a client's call: errors reach the client and nothing begins), then
        watch the operation from the poll loop until `finished()` holds after a poll.
        `progress()` says how far it got in % (None: not known; by the clock then)."""
        running = self._claim(name, expected, motion, finished, progress)
        try:
            start()
        except BaseException:
            with self._operation_lock:
                self._running = None
            raise
        self._begin(running)

    @property
    def running(self) -> Running | None:
        """The operation under way, if any."""
        return self._running

    # -- commands -------------------------------------------------------------------------------

    @command
    def Stop(self) -> None:
        """Wind the running operation down (a stage brakes with its deceleration); outcome "stopped"."""
        self._ask(abort=False)

    @command
    def Abort(self) -> None:
        """End the running operation at once; outcome "aborted"."""
        self._ask(abort=True)

    # -- life cycle and the poll loop's part ---------------------------------------------------

    def init_device(self) -> None:
        self._operation_lock = threading.Lock()
        self._running: Running | None = None
        self._failure: str | None = None  # the last operation's, FAULT until the next one
        #: The operation attributes (value, time), apart from the poll's cache: a lost link makes
        #: readings INVALID, not what the device did.
        self._figures: dict[str, tuple[Any, float]] = {}
        self._show({"operation": "", "progress": 0.0, "timeLeft": 0.0, "outcome": ""})
        super().init_device()

    def delete_device(self) -> None:
        if (running := self._running) is not None:
            running.ask(abort=True)
        super().delete_device()

    def overrule_state(self, values: dict[str, Any], state: DevState, status: str) -> tuple[DevState, str]:
        """After each poll: end a followed operation that finished, catch an overrun, and keep
        MOVING/RUNNING while one runs (an ALARM or a FAULT the poll found shows instead)."""
        running = self._running
        if running is None:
            if self._failure is not None and state != DevState.FAULT:
                return DevState.FAULT, f"{self._failure}; {self.cleared_by}"
            return state, status
        if time.monotonic() > running.deadline and running.failure is None:
            running.failure = f"{running.name} did not finish in time ({running.expected:.1f} s expected); stopped"
            self.error_stream(running.failure)
            running.ask(abort=True)
            try:
                self.halt(immediate=True)
            except Exception as exc:  # noqa: BLE001 - the poll thread goes on; the log says why
                self.error_stream(f"could not stop after the overrun: {exc}")
        try:
            finished = running.finished is not None and (running.failure is not None or running.finished())
            figures = running.figures()
        except Exception as exc:  # noqa: BLE001 - a device's predicate failing fails its operation, not the poll
            running.failure, finished = f"{type(exc).__name__}: {exc}", running.finished is not None
            running.ask(abort=True)
            figures = {}
        if finished:
            if state == DevState.FAULT and running.failure is None:  # it ended in a fault (a stall)
                running.failure = status
            self._end(running)
            return self.overrule_state(values, state, status)
        self._show(figures)
        if running.failure is not None:  # overrun: its work is winding down
            return DevState.FAULT, f"{running.failure}; ending it"
        if state in (DevState.FAULT, DevState.ALARM):
            return state, status
        return self._busy_state(running)

    # -- internals ------------------------------------------------------------------------------

    def refuse_if_busy(self, what: str) -> None:
        """Raise DevFailed "Busy", naming the operation running, if one runs: for checks that
        come before an operation's own (a stage refuses a move while homing before it asks
        whether it is homed)."""
        if (busy := self._running) is None:
            return
        figures = busy.figures()
        state = DevState.MOVING if busy.motion else DevState.RUNNING
        Except.throw_exception(
            "Busy",
            for_tango(
                f"{what} refused: {busy.name} is running ({state}, {figures['progress']:.0f} % done, "
                f"{figures['timeLeft']:.1f} s left); wait for its end or run Stop"
            ),
            f"{self.get_name()} {what}",
        )

    def _claim(
        self, name: str, expected: float, motion: bool,
        finished: Callable[[], bool] | None = None, progress: Callable[[], float | None] | None = None,
    ) -> Running:
        if not (math.isfinite(expected) and expected >= 0):
            raise ValueError(f"the expected time of {name} must be finite and not negative, not {expected!r}")
        while True:
            with self._operation_lock:
                if self._running is None:
                    self._running = Running(self, name, expected, motion, self.time_margin(), finished, progress)
                    return self._running
            self.refuse_if_busy(name)  # (returns only if it ended meanwhile)

    def _begin(self, running: Running) -> None:
        self._failure = None
        self._set_state(*self._busy_state(running))
        self._show({"operation": running.name, **running.figures()})
        self._wake.set()  # a stage polls faster while it moves

    def _busy_state(self, running: Running) -> tuple[DevState, str]:
        state = DevState.MOVING if running.motion else DevState.RUNNING
        return state, running.name[:1].upper() + running.name[1:]

    def _work(self, running: Running, work: Callable[[Running], Any]) -> None:
        try:
            work(running)
        except OperationFailed as exc:
            running.failure = running.failure or str(exc)
        except Exception as exc:  # noqa: BLE001 - any error of the work is its outcome
            running.failure = running.failure or f"{type(exc).__name__}: {exc}"
        if self._end(running) and running.failure is not None:
            self._set_state(DevState.FAULT, f"{running.failure}; {self.cleared_by}")
        self._wake.set()  # the poll settles the state now, not at its next turn

    def _end(self, running: Running) -> bool:
        """Show the outcome and free the device for the next operation (False: an Init did)."""
        outcome = running.outcome()
        if outcome != DONE:
            self.info_stream(f"{running.name}: {outcome}")
        with self._operation_lock:
            if self._running is not running:  # dropped by an Init meanwhile
                return False
            self._running = None
            self._failure = running.failure
        ended = {"progress": 100.0} if outcome == DONE else {}  # else where it got to
        self._show({**ended, "timeLeft": 0.0, "operation": "", "outcome": outcome})
        return True

    def _ask(self, *, abort: bool) -> None:
        if (running := self._running) is not None:
            running.ask(abort=abort)
        self.halt(immediate=abort)
        self._wake.set()

    def _show(self, values: dict[str, Any]) -> None:
        """Keep and push operation attributes: words always (each outcome is stamped anew, even
        the same as the last), figures when they moved by `FIGURE_STEP` or reached where they
        end (0 s left, 100 %). Never while holding a lock: a push may wait for the device's monitor."""
        now = time.time()
        pushed = []
        for name, value in values.items():
            last = self._figures.get(name, (None, 0.0))[0]
            if not isinstance(value, float) or last is None or (value != last and (
                    abs(value - last) >= FIGURE_STEP or value in (0.0, 100.0))):
                self._figures[name] = (value, now)
                pushed.append(name)
        for name in pushed:
            self.push_change_event(name, values[name], now, AttrQuality.ATTR_VALID)

    def _figure(self, name: str) -> tuple[Any, float, AttrQuality]:
        value, when = self._figures[name]
        return value, when, AttrQuality.ATTR_VALID
