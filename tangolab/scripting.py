"""Helpers for lab scripts: wait for a value, ramp a set-point, read many attributes at once.

    from tangolab.scripting import ramp, wait_for, snapshot

    ramp("cryocon/setpoint1", 80.0, rate=0.5)                          # K/s, written step by step
    wait_for("cryocon/temperatureA", lambda t: abs(t - 80) < 0.1, timeout=1800, stable_for=30)
    snapshot("lab/tec/*")                                              # {"lab/tec/1/objectTemperature": -90.1, ...}
    run("lab/afm/1", "Pull", 2.0)                                       # a long operation, to its end

Attribute names are full (`lab/cryocon/1/temperatureA`, `tango://host:port/...`) or short
(`cryocon/temperatureA`, resolved against the database of $TANGO_HOST, see `tangolab.names`).
"""

from __future__ import annotations

import fnmatch
import sys
import time
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
import tango

from .events import Intake, Notice, attribute_name, is_loss
from .names import Names, trl

T = TypeVar("T")
#: What every device with long operations shows (device_servers/core/operations.py).
OPERATION_ATTRIBUTES = ("operation", "progress", "timeLeft", "outcome")


class ConditionTimeout(TimeoutError):
    """The condition did not hold in time; the message says which and what was seen last."""

    def __init__(self, message: str, last_value: object = None, held_for: float = 0.0):
        super().__init__(message)
        self.last_value = last_value
        self.held_for = held_for  # seconds the condition had held when time ran out (0 if it did not hold)


def wait_until(
    condition: Callable[[], T], timeout: float = 30.0, interval: float = 0.1, what: str = ""
) -> T:
    """Call `condition` until it returns something true, and return that; errors count as false."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            result = condition()
            if result:
                return result
            last = result
        except Exception as exc:  # noqa: BLE001 - a device still starting raises; keep waiting
            last = exc
        if time.monotonic() > deadline:
            raise ConditionTimeout(f"{what or condition!r} did not hold within {timeout:g} s (last: {last!r})", last)
        time.sleep(interval)


def device_and_attribute(name: str, names: Names | None = None) -> tuple[tango.DeviceProxy, str]:
    """The device proxy and attribute of a full or short attribute name."""
    device, attribute = (names or Names()).attribute(name)
    return tango.DeviceProxy(trl(device)), attribute


def wait_for(
    attr: str,
    condition: Callable[[Any], bool],
    timeout: float = 60.0,
    stable_for: float = 0.0,
    poll_period: float = 1.0,
    what: str = "",
) -> Any:
    """Wait until `condition(value)` of `attr` is true (and has stayed true `stable_for` seconds);
    the value that made it so.

    Driven by change events: each value the attribute sends is tested in turn, so the wait ends on
    the first event that satisfies the condition. An attribute without events is read every
    `poll_period` seconds instead. Events come through `tangolab.events.Intake`: a value pushed
    while the new subscription was still on its way to the server (ZMQ's late joiner) is read
    back, and a server restarted meanwhile is subscribed again at once. A read error, or the
    attribute's server ending, counts as the condition not holding. On time-out,
    `ConditionTimeout` says the last value seen and for how long the condition had held.
    """
    intake = Intake(queue_size=tango.constants.ALL_EVENTS)
    try:
        feed = intake.add(_full_name(attr), poll_period=poll_period, now=False)
        start = time.monotonic()
        deadline = start + timeout
        last: object = None
        held_since: float | None = None
        while True:
            for value in (_value_of(event) for event in feed.take() if not is_loss(event)):
                last = value
                holds = not isinstance(value, tango.DevFailed) and _holds(condition, value)
                if not holds:
                    held_since = None
                elif held_since is None:
                    held_since = time.monotonic()
                if holds and stable_for <= 0:
                    return value
            now = time.monotonic()
            if held_since is not None and stable_for > 0 and now - held_since >= stable_for:
                return last
            if now > deadline:
                held = now - held_since if held_since is not None else 0.0
                shown = f"{last.args[0].reason}" if isinstance(last, tango.DevFailed) else repr(last)
                wanted = what or "the condition"
                raise ConditionTimeout(
                    f"{attr}: {wanted} did not hold{f' for {stable_for:g} s' if stable_for else ''} within "
                    f"{timeout:g} s; last value {shown}, "
                    + (f"holding for {held:.1f} s" if held_since is not None else "not holding"),
                    last, held,
                )
            time.sleep(0.01)
    finally:
        intake.close()


def _full_name(attr: str) -> str:
    """The attribute's full name (TRL), from a full or short name."""
    device, attribute = Names().attribute(attr)
    return attribute_name(trl(device), attribute)


def _value_of(event: tango.EventData | Notice) -> object:
    """An event's value, or its error as a DevFailed."""
    return tango.DevFailed(*event.errors) if event.err else event.attr_value.value


def _holds(condition: Callable[[Any], bool], value: object) -> bool:
    try:
        return bool(condition(value))
    except Exception:  # noqa: BLE001 - a condition that cannot judge a value (None, NaN) is false
        return False


def ramp(attr: str, target: float, rate: float, step_period: float = 0.5) -> float:
    """Move a writable attribute from its set value to `target` at `rate` units per second,
    writing a step every `step_period` seconds; returns once `target` is written.

    Interrupted (Ctrl-C), the set-point stays at the last step written.
    """
    if rate <= 0:
        raise ValueError(f"rate must be positive, got {rate!r}")
    device, name = device_and_attribute(attr)
    reading = device.read_attribute(name)
    start_value = reading.w_value if reading.w_value is not None else reading.value
    start_value = float(start_value)
    distance = float(target) - start_value
    duration = abs(distance) / rate
    began = time.monotonic()
    while True:
        elapsed = time.monotonic() - began
        if elapsed >= duration:
            device.write_attribute(name, float(target))
            return float(target)
        device.write_attribute(name, start_value + distance * elapsed / duration)
        time.sleep(min(step_period, duration - elapsed))


class Snapshot(dict):
    """Values by full attribute name; `errors` holds the attributes that could not be read, with why."""

    def __init__(self) -> None:
        super().__init__()
        self.errors: dict[str, str] = {}
        self.quality: dict[str, str] = {}
        self.time = time.time()


def snapshot(pattern: str = "*", names: Names | None = None) -> Snapshot:
    """Read every attribute that `pattern` matches (`lab/tec/*`, `tec/object*`, `*`), one request
    per device; values by name (`lab/tec/1/objectTemperature`), unreadable ones in `.errors`."""
    names = names or Names()
    devices, glob = names.devices_and_attribute_glob(pattern)
    result = Snapshot()
    for device in devices:
        proxy = tango.DeviceProxy(trl(device))
        try:
            attributes = [a for a in proxy.get_attribute_list() if fnmatch.fnmatchcase(a.lower(), glob.lower())]
            readings = proxy.read_attributes(attributes) if attributes else []
        except tango.DevFailed as exc:
            result.errors[device] = f"{exc.args[0].reason}: {exc.args[0].desc.strip()}"
            continue
        for reading in readings:
            full = f"{device}/{reading.name}"
            if reading.has_failed:
                result.errors[full] = "; ".join(f"{e.reason}: {e.desc.strip()}" for e in reading.get_err_stack())
            else:
                value = reading.value
                result[full] = value.copy() if isinstance(value, np.ndarray) else value
                result.quality[full] = str(reading.quality).removeprefix("ATTR_")
    return result


class OperationError(RuntimeError):
    """A long operation that did not end "done": stopped, aborted or failed (`outcome` says which
    and why, as the device does: "failed: <reason>")."""

    def __init__(self, message: str, outcome: str):
        super().__init__(message)
        self.outcome = outcome


def run(
    device: str | tango.DeviceProxy, command: str, arg: Any = None, timeout: float | None = None,
    on_progress: Callable[[str, float, float], None] | None = None, interval: float = 0.1,
) -> Any:
    """Run a device's command and, if it starts a long operation (a move, a pull, an exposure),
    wait for its end; what the command returned. `device` is a full or short name, or a proxy.

    Raises `OperationError` with the device's reason unless the operation ended "done". On
    `timeout` (seconds; None waits for ever) or Ctrl-C it sends `Stop` to the device, then raises
    `ConditionTimeout` or `KeyboardInterrupt`. `on_progress(operation, percent, seconds_left)`
    hears how it goes every `interval` seconds.
    """
    proxy = device if isinstance(device, tango.DeviceProxy) else tango.DeviceProxy(trl(Names().device(device)))
    attributes = {name.lower() for name in proxy.get_attribute_list()}
    if not attributes >= {name.lower() for name in OPERATION_ATTRIBUTES}:
        return proxy.command_inout(command, arg) if arg is not None else proxy.command_inout(command)
    # an outcome stamped after this one is the new operation's, even if it ended before we looked
    previous = proxy.read_attribute("outcome").time.totime()
    deadline = None if timeout is None else time.monotonic() + timeout
    running = ""
    try:  # a Ctrl-C while the command is on its way stops what it started too
        result = proxy.command_inout(command, arg) if arg is not None else proxy.command_inout(command)
        while True:
            operation, progress, time_left, outcome = proxy.read_attributes(list(OPERATION_ATTRIBUTES))
            if operation.value:
                running = operation.value
                if on_progress is not None:
                    on_progress(running, float(progress.value), float(time_left.value))
            elif outcome.time.totime() > previous:
                break
            elif not running:
                return result  # the command started no long operation
            if deadline is not None and time.monotonic() > deadline:
                _stop(proxy)
                raise ConditionTimeout(
                    f"{proxy.dev_name()} {command}: {running} did not end within {timeout:g} s; Stop was sent",
                    operation.value,
                )
            time.sleep(interval)
    except KeyboardInterrupt:
        running = running or _now_running(proxy)  # interrupted before it looked
        _stop(proxy)
        raise KeyboardInterrupt(f"Stop was sent to {proxy.dev_name()}{f' ({running})' if running else ''}") from None
    if outcome.value != "done":
        raise OperationError(f"{proxy.dev_name()} {command}: {running or command} {outcome.value}", outcome.value)
    return result


def _now_running(proxy: tango.DeviceProxy) -> str:
    try:
        return proxy.read_attribute("operation").value
    except tango.DevFailed:
        return ""


def _stop(proxy: tango.DeviceProxy) -> None:
    """Ask the device to stop its operation; a device that does not answer is said, not raised."""
    try:
        proxy.command_inout("Stop")
    except tango.DevFailed as exc:
        print(f"{proxy.dev_name()} Stop failed: {exc.args[0].desc.strip()}", file=sys.stderr)
