"""`CcdHead`: one CCD head's Peltier channel, vacuum gauge and coolant pen as one health.

The head watches five attributes of other devices (properties: their full names), driven by
their change events (through `tangolab.events.Intake`, by callback: a few sources, each event
taken at once): each batch of events is assessed at once by the rules of `health.py`, and `health` and `reason` push change and archive events when
they change. A source whose server is down, or starts after this one, is picked up when it
comes; until then it is a source with no value, and says why. A source whose server ends is
lost at that moment (its supervisor says so), not at Tango's 10 s keep-alive.

Change events come only when a value moves, so a quiet source is not a dead one: a source that
has sent nothing for half of `MaxSilence` is read once, and counts as heard if its reading is
newer than the last one known (a device serving its poll cache stamps each poll). A source
that has produced nothing new for `MaxSilence` is an ERROR, and so is one whose read fails.

State: ALARM while the health is ERROR, ON otherwise; a WARNING (a head a few degrees from its
target, as every head is while it cools down) shows in the status and as the WARNING quality of
`health`, and is not an ALARM that operators learn to ignore. FAULT only when the device itself
cannot work (its properties are wrong).

Optional interlock (`Interlock`): when the coolant flow is measured below `MinFlow`, write
`InterlockValue` to `InterlockAttribute` (the Peltier channel's output stage) once, and say so
in the lab log. It never switches anything back on: a person does, once the flow is back.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import tango
from tango import AttrQuality, AttrWriteType, DevState
from tango.server import Device, attribute, device_property

from tangolab.events import Feed, Intake, is_loss

from ..core.hardware import set_state_and_status
from ..core.server import serve
from .health import HeadReadings, Health, Reading, Thresholds, Verdict, assess, flow_lost

VALID, WARNING, ALARM, INVALID = (
    AttrQuality.ATTR_VALID, AttrQuality.ATTR_WARNING, AttrQuality.ATTR_ALARM, AttrQuality.ATTR_INVALID
)
HEALTH_QUALITY = {Health.OK: VALID, Health.WARNING: WARNING, Health.ERROR: ALARM}
READ_TIMEOUT_MS = 2000  # a liveness read or an interlock write waits no longer than this
STATUS_SHOWN = 120  # characters of a source device's status quoted in a reason

#: source key → (property, mirror attribute, what it is in words)
SOURCES = {
    "temperature": ("TemperatureAttribute", "temperature", "CCD temperature"),
    "target": ("TargetAttribute", "target", "target temperature"),
    "peltier_running": ("PeltierStateAttribute", "peltierRunning", "Peltier state"),
    "pressure": ("PressureAttribute", "pressure", "vacuum reading"),
    "flow": ("FlowAttribute", "flow", "coolant flow reading"),
}


def split_attribute(name: str) -> tuple[str, str]:
    """(device, attribute) of a full attribute name: `lab/tec/1/State` or a TRL such as
    `tango://host:port/lab/tec/1/State#dbase=no` (the `#dbase=no` stays with the device)."""
    text, hash_, option = name.strip().partition("#")
    device, _, attr = text.rpartition("/")
    bare = device.removeprefix("tango://").split("/", 1)[-1] if device.startswith("tango://") else device
    if not attr or bare.count("/") != 2 or not all(bare.split("/")):
        raise ValueError(f"{name!r} is not domain/family/member/attribute (or tango://host:port/...)")
    return device + hash_ + option, attr


class Watched:
    """One watched attribute: its subscription and the last reading's source time stamp."""

    def __init__(self, key: str, name: str, proxy: tango.DeviceProxy, attr: str) -> None:
        self.key, self.name, self.proxy, self.attr = key, name, proxy, attr
        self.device = name.partition("#")[0].rpartition("/")[0]
        self.feed: Feed | None = None
        self.stamp: float | None = None  # source time of the newest reading known
        self.last_read = 0.0  # monotonic time of the last liveness read
        self.mirror: tuple[Any, float, AttrQuality] | None = None  # for the mirror attribute


class CcdHead(Device):
    """A CCD head's health, from its Peltier channel, vacuum gauge and coolant pen."""

    TemperatureAttribute = device_property(
        dtype=str, mandatory=True, doc="The CCD temperature (degC), e.g. lab/tec/1/objectTemperature"
    )
    TargetAttribute = device_property(
        dtype=str, mandatory=True, doc="The temperature the Peltier regulates to (degC), e.g. lab/tec/1/targetTemperature"
    )
    PeltierStateAttribute = device_property(
        dtype=str, mandatory=True, doc="What says whether the Peltier runs, e.g. lab/tec/1/State"
    )
    PeltierRunningValue = device_property(
        dtype=str, default_value="RUNNING", doc="The value of PeltierStateAttribute that means running"
    )
    PressureAttribute = device_property(
        dtype=str, mandatory=True, doc="The head's vacuum (mbar), e.g. lab/gauge/1/pressure"
    )
    FlowAttribute = device_property(dtype=str, mandatory=True, doc="The coolant flow (l/min), e.g. lab/flow/1/pen1")
    MaxPressure = device_property(dtype=float, default_value=8e-3, doc="ERROR above this pressure (mbar)")
    MinFlow = device_property(dtype=float, default_value=0.4, doc="ERROR below this coolant flow (l/min)")
    MaxTemperatureError = device_property(
        dtype=float, default_value=2.0, doc="WARNING when the temperature is further than this from its target (degC)"
    )
    MaxSilence = device_property(
        dtype=float, default_value=60.0, doc="ERROR when a source has produced nothing new for this long (s)"
    )
    CheckPeriod = device_property(
        dtype=float, default_value=1.0, doc="Seconds between two checks for silent sources"
    )
    Interlock = device_property(
        dtype=bool, default_value=False,
        doc="When the coolant flow is lost, write InterlockValue to InterlockAttribute once (never back)",
    )
    InterlockAttribute = device_property(
        dtype=str, default_value="", doc="What switches the Peltier channel off, e.g. lab/tec/1/outputStage"
    )
    InterlockValue = device_property(
        dtype=str, default_value="OFF", doc="The value written to InterlockAttribute (an enum label, a number, true/false)"
    )

    # -- Tango life cycle ---------------------------------------------------------------------

    def init_device(self) -> None:
        super().init_device()
        self._intake: Intake | None = None
        self._stop = threading.Event()
        self._verdict = Verdict(Health.ERROR, ("no value yet from any source",))
        self._interlock_tripped = False
        self._interlock_error = ""
        self.watched: dict[str, Watched] = {}
        self._thread: threading.Thread | None = None
        for name in ("State", "Status"):
            self.set_change_event(name, True, False)
        for name in ("health", "reason", *(mirror for _, mirror, _ in SOURCES.values()), "interlockTripped"):
            self.set_change_event(name, True, False)
            self.set_archive_event(name, True, False)
        try:
            self._configure()
        except (ValueError, tango.DevFailed) as exc:
            text = exc.args[0].desc if isinstance(exc, tango.DevFailed) else str(exc)
            self._set_state(DevState.FAULT, f"cannot watch the head: {text}; correct the properties and run Init")
            self.error_stream(self.get_status())
            return
        self.set_state(DevState.INIT)
        self.set_status("subscribing to " + ", ".join(w.name for w in self.watched.values()))
        self._thread = threading.Thread(target=self._watch, name=f"watch {self.get_name()}", daemon=True)
        self._thread.start()

    def delete_device(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._intake is not None:
            self._intake.close()
        super().delete_device()

    def dev_state(self) -> DevState:
        return self.get_state()

    def dev_status(self) -> str:
        return self.get_status()

    def _configure(self) -> None:
        """Proxies for the sources (one per device); raises ValueError on a malformed name."""
        self.limits = Thresholds(self.MaxPressure, self.MinFlow, self.MaxTemperatureError, self.MaxSilence)
        proxies: dict[str, tango.DeviceProxy] = {}
        readings = {}
        for key, (prop, _, what) in SOURCES.items():
            name = getattr(self, prop).strip()
            device, attr = split_attribute(name)
            if device not in proxies:
                proxies[device] = tango.DeviceProxy(device)
                proxies[device].set_timeout_millis(READ_TIMEOUT_MS)
            self.watched[key] = Watched(key, name, proxies[device], attr)
            readings[key] = Reading(name.partition("#")[0], what)
        self.readings = HeadReadings(**readings)
        self.interlock: tuple[tango.DeviceProxy, str] | None = None
        if self.Interlock:
            if not self.InterlockAttribute.strip():
                raise ValueError("Interlock is true but InterlockAttribute is empty: name what switches the Peltier off")
            device, attr = split_attribute(self.InterlockAttribute)
            proxy = proxies.get(device) or tango.DeviceProxy(device)
            self.interlock = (proxy, attr)

    # -- attributes ---------------------------------------------------------------------------

    @attribute(dtype=Health, doc="OK, WARNING (the head works, but look) or ERROR (act now); reason says why")
    def health(self) -> tuple[int, float, AttrQuality]:
        return int(self._verdict.health), time.time(), HEALTH_QUALITY[self._verdict.health]

    @attribute(dtype=str, doc="What is wrong and what to do, errors first; empty when the head is OK")
    def reason(self) -> str:
        return self._verdict.reason

    @attribute(dtype=float, unit="degC", format="%7.2f", doc="The CCD temperature, as TemperatureAttribute says")
    def temperature(self) -> tuple[float, float, AttrQuality]:
        return self._mirrored("temperature", float("nan"))

    @attribute(dtype=float, unit="degC", format="%7.2f", doc="The target temperature, as TargetAttribute says")
    def target(self) -> tuple[float, float, AttrQuality]:
        return self._mirrored("target", float("nan"))

    @attribute(dtype=float, unit="mbar", format="%9.2e", doc="The head's vacuum, as PressureAttribute says")
    def pressure(self) -> tuple[float, float, AttrQuality]:
        return self._mirrored("pressure", float("nan"))

    @attribute(dtype=float, unit="l/min", format="%6.3f", doc="The coolant flow, as FlowAttribute says")
    def flow(self) -> tuple[float, float, AttrQuality]:
        return self._mirrored("flow", float("nan"))

    @attribute(dtype=bool, doc="Whether the Peltier runs, as PeltierStateAttribute says")
    def peltierRunning(self) -> tuple[bool, float, AttrQuality]:
        return self._mirrored("peltier_running", False)

    @attribute(dtype=bool, doc="Whether the interlock switched the Peltier off since the flow was last good")
    def interlockTripped(self) -> bool:
        return self._interlock_tripped

    def _mirrored(self, key: str, placeholder: Any) -> tuple[Any, float, AttrQuality]:
        watched = self.watched.get(key)
        if watched is None or watched.mirror is None:
            return placeholder, time.time(), INVALID
        return watched.mirror

    # -- the watch thread: every event and check, one at a time -------------------------------

    def _watch(self) -> None:
        while tango.Util.instance().is_svr_starting() and not self._stop.is_set():
            self._stop.wait(0.05)  # a source in this same server answers only once it runs
        self._intake = Intake(by_callback=True)  # a handful of sources: each event at once, no polling of queues
        for watched in self.watched.values():
            watched.feed = self._intake.add(watched.name, now=False)  # subscribed, or tried again, in the background
        next_check = time.monotonic()
        while not self._stop.is_set():
            self._intake.wait(max(next_check - time.monotonic(), 0.0))
            taken = False
            for watched in self.watched.values():
                for event in watched.feed.take():  # all that queued meanwhile, then one assessment
                    self._take_event(watched.key, event)
                    taken = True
            if time.monotonic() >= next_check:
                self._check_quiet_sources()
                next_check = time.monotonic() + self.CheckPeriod
                taken = True
            if not taken:
                continue
            try:
                self._publish()
            except Exception as exc:  # noqa: BLE001 - a bug must show in the status, not end the watch
                self._set_state(DevState.FAULT, f"{type(exc).__name__}: {exc}")
                self._stop.wait(self.CheckPeriod)

    def _take_event(self, key: str, event: tango.EventData) -> None:
        watched, reading = self.watched[key], getattr(self.readings, key)
        if is_loss(event):
            return  # values were lost on the way; the next event or liveness read tells the present
        if event.err:
            reading.lose(_first_error(event.errors))
            self._mirror(watched, None, INVALID)
            return
        self._take_reading(watched, reading, event.attr_value, time.monotonic())

    def _take_reading(self, watched: Watched, reading: Reading, value: tango.DeviceAttribute, now: float) -> None:
        stamp = value.time.totime()
        watched.stamp = stamp
        if value.quality == INVALID:
            reading.hear(None, now, f"its value is INVALID{self._said_by(watched)}")
            self._mirror(watched, None, INVALID, stamp)
            return
        if watched.key == "peltier_running":
            reading.hear(str(value.value) == self.PeltierRunningValue, now)
        else:
            reading.hear(float(value.value), now)
        self._mirror(watched, reading.value, value.quality, stamp)

    def _said_by(self, watched: Watched) -> str:
        """What the source's device says in its status, for a reason (it knows why)."""
        try:
            status = " ".join(watched.proxy.status().split())
        except tango.DevFailed:
            return ""
        return f" ({watched.device} says: {status[:STATUS_SHOWN]}{'…' if len(status) > STATUS_SHOWN else ''})"

    def _check_quiet_sources(self) -> None:
        """Read each source quiet for half of MaxSilence: heard if it has something newer."""
        now = time.monotonic()
        for key, watched in self.watched.items():
            reading = getattr(self.readings, key)
            if now - max(reading.heard or 0.0, watched.last_read) < self.MaxSilence / 2:
                continue
            watched.last_read = now
            try:
                value = watched.proxy.read_attribute(watched.attr)
            except tango.DevFailed as exc:
                reading.lose(_first_error(exc.args))
                self._mirror(watched, None, INVALID)
                continue
            if watched.stamp is None or value.time.totime() > watched.stamp:
                self._take_reading(watched, reading, value, now)
        if self.interlock is not None and flow_lost(self.readings, self.limits) and not self._interlock_tripped:
            self._trip_interlock()  # a write that failed is tried again here

    def _mirror(self, watched: Watched, value: Any, quality: AttrQuality, stamp: float | None = None) -> None:
        """Keep a source's value for its mirror attribute and push it (the last value, INVALID, when lost)."""
        stamp = time.time() if stamp is None else stamp
        if value is None:
            if watched.mirror is None:
                return
            value = watched.mirror[0]
        watched.mirror = (value, stamp, quality)
        attr = SOURCES[watched.key][1]
        self.push_change_event(attr, value, stamp, quality)
        self.push_archive_event(attr, value, stamp, quality)

    # -- health, state, interlock -------------------------------------------------------------

    def _publish(self) -> None:
        if flow_lost(self.readings, self.limits):
            if self.interlock is not None and not self._interlock_tripped and not self._interlock_error:
                self._trip_interlock()
        elif self._interlock_tripped or self._interlock_error:
            self._interlock_tripped, self._interlock_error = False, ""  # armed again for the next loss
            self._push_both("interlockTripped", False)
        verdict = assess(self.readings, self.limits, time.monotonic())
        if self._interlock_tripped:
            verdict = Verdict(verdict.health, (*verdict.errors, _tripped_note(self.InterlockAttribute)), verdict.warnings)
        elif self._interlock_error:
            verdict = Verdict(verdict.health, (*verdict.errors, self._interlock_error), verdict.warnings)
        previous, self._verdict = self._verdict, verdict
        if verdict.health != previous.health:
            self._push_both("health", int(verdict.health), HEALTH_QUALITY[verdict.health])
        if verdict.reason != previous.reason or self.get_state() == DevState.INIT:
            self._push_both("reason", verdict.reason)
        if verdict.health is Health.ERROR:
            self._set_state(DevState.ALARM, f"ERROR: {verdict.reason}")
        elif verdict.health is Health.WARNING:
            self._set_state(DevState.ON, f"WARNING: {verdict.reason}")
        else:
            self._set_state(DevState.ON, "OK: vacuum, coolant flow, Peltier and temperature within limits")

    def _trip_interlock(self) -> None:
        """Switch the Peltier off, once per loss of flow; say so in the lab log."""
        proxy, attr = self.interlock
        try:
            proxy.write_attribute(attr, _value_for(proxy, attr, self.InterlockValue))
        except (tango.DevFailed, ValueError) as exc:
            text = exc.args[0].desc.strip() if isinstance(exc, tango.DevFailed) else str(exc)
            error = f"interlock could not switch the Peltier off ({self.InterlockAttribute}): {text}; trying again"
            if error != self._interlock_error:
                self.error_stream(f"coolant flow lost ({self.FlowAttribute}): {error}")
            self._interlock_error = error
            return
        self._interlock_tripped, self._interlock_error = True, ""
        self.error_stream(
            f"interlock: coolant flow below {self.MinFlow:g} l/min ({self.FlowAttribute}); wrote "
            f"{self.InterlockValue} to {self.InterlockAttribute}. It stays off: switch it on by hand once the "
            f"flow is back"
        )
        self._push_both("interlockTripped", True)

    def _push_both(self, name: str, value: Any, quality: AttrQuality = VALID) -> None:
        stamp = time.time()
        self.push_change_event(name, value, stamp, quality)
        self.push_archive_event(name, value, stamp, quality)

    def _set_state(self, state: DevState, status: str) -> None:
        set_state_and_status(self, state, status)


def _first_error(errors: Any) -> str:
    """The description a person can read from a DevError stack (the first says what failed)."""
    for error in errors:
        if desc := " ".join(str(error.desc).split()):
            return desc
    return "unknown error"


def _tripped_note(target: str) -> str:
    return f"interlock switched the Peltier off ({target}); switch it on by hand once the flow is back"


def _value_for(proxy: tango.DeviceProxy, attr: str, text: str) -> Any:
    """`text` as a value of the attribute's type: an enum's label as its index, a bool, a number."""
    config = proxy.get_attribute_config(attr)
    if config.writable == AttrWriteType.READ:
        raise ValueError(f"{attr} is read-only")
    kind = config.data_type
    if kind == tango.CmdArgType.DevEnum:
        labels = list(config.enum_labels)
        if text not in labels:
            raise ValueError(f"{text!r} is not one of {', '.join(labels)}")
        return labels.index(text)
    if kind == tango.CmdArgType.DevBoolean:
        return text.strip().lower() in ("1", "true", "on", "yes")
    if kind == tango.CmdArgType.DevString:
        return text
    if kind in (tango.CmdArgType.DevFloat, tango.CmdArgType.DevDouble):
        return float(text)
    return int(text)


def main() -> None:
    serve(CcdHead)


if __name__ == "__main__":
    main()
