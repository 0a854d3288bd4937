"""The spy: every event of the lab's attributes, one JSON line each, and every loss said aloud.

    for record in Spy("lab/tec/*").records():
        print(json.dumps(record))

Each attribute that offers change events (State included) is subscribed with an event queue
of its own, drained in turn. A record is one of:

- `{"kind": "event", "time", "device", "attribute", "value", "quality", "error": null}`
- `{"kind": "error", ..., "error": "API_EventTimeout: ..."}` a device went away, a read failed;
  when it comes back its events simply resume;
- `{"kind": "lost", "time", "device", "attribute", "lost": text}` events were dropped: Tango
  reported missed events (`API_MissedEvents`), or the spy's own queue of that attribute was full
  when drained (a queue keeps the newest `queue_size` events and overwrites older ones);
- `{"kind": "unwatched", "device", "attributes": [...], "reason"}` attributes without events;
- `{"kind": "down", "device", "error"}` a device that does not answer (found by pinging every
  device each `health_period` seconds, sooner than Tango's 10 s event keep-alive tells);
  `{"kind": "up", "device"}` when it answers again; its events then resume by themselves.

Tango itself can still drop the tail of a burst at ZeroMQ's high-water mark without telling
any client: where every value counts, count them at the source.
"""

from __future__ import annotations

import fnmatch
import math
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import tango

from .names import Names, trl
from .restarts import RestartListener, device_of

NO_EVENTS = ("API_AttributePollingNotStarted", "API_EventPropertiesNotSet", "API_AttributeNotDataReadyEnabled")
LOSS_REASONS = ("API_MissedEvents",)
DEFAULT_QUEUE = 100_000


def json_value(value: object, labels: tuple[str, ...] = ()) -> object:
    """A Tango value as JSON has it: states and enum labels by name, spectra as lists, NaN as text."""
    if isinstance(value, tango.DevState):
        return str(value)
    if labels and isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return labels[int(value)] if 0 <= int(value) < len(labels) else int(value)
    if isinstance(value, np.ndarray):
        return [json_value(v, labels) for v in value.tolist()]
    if isinstance(value, (list, tuple)):
        return [json_value(v, labels) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value).replace("inf", "Infinity").replace("nan", "NaN")
    return value


def stamp(epoch: float) -> str:
    """Local time with offset, to the microsecond."""
    return datetime.fromtimestamp(epoch).astimezone().isoformat(timespec="microseconds")


def error_text(errors: object) -> str:
    """`REASON: description` of a DevFailed's first error, on one line."""
    first = errors[0]
    return f"{first.reason}: {' '.join(first.desc.split())}"


def quality_name(quality: tango.AttrQuality) -> str:
    return str(quality).removeprefix("ATTR_")


@dataclass
class Subscription:
    """One attribute's event queue."""

    proxy: tango.DeviceProxy
    device: str
    attribute: str
    event_id: int
    labels: tuple[str, ...] = ()
    received: int = 0


@dataclass
class Spy:
    """Subscribes every matching attribute of the lab and turns their events into records.

    `pattern` is a device glob (`lab/tec/*`), a short device name (`tec`), or either followed by
    an attribute glob (`lab/tec/*/objectTemperature`, `cryocon/temperature*`); "*" is the lab.
    """

    pattern: str = "*"
    queue_size: int = DEFAULT_QUEUE
    names: Names | None = None  # the database's names; made on start when not given
    devices: list[str] | None = None  # these devices (full names or TRLs), `pattern` then globs their attributes
    rescan_period: float = 5.0  # how often devices that were down are tried again, and new attributes looked for
    health_period: float = 1.0  # how often every device is pinged, to tell going away and coming back
    subscriptions: list[Subscription] = field(default_factory=list)
    _health: deque = field(default_factory=deque)  # records from the pinging thread
    _stopping: threading.Event = field(default_factory=threading.Event)
    _pinger: threading.Thread | None = None
    _pending: dict[str, str] = field(default_factory=dict)  # device -> attribute glob, not yet subscribed
    _next_rescan: float = 0.0
    _seen: dict[str, set[str]] = field(default_factory=dict)  # device -> attributes subscribed or unwatched
    _globs: dict[str, str] = field(default_factory=dict)  # device -> its attribute glob
    _restarts: RestartListener | None = None  # devices a supervisor says came up again

    def start(self) -> list[dict]:
        """Subscribe what the pattern matches; records of what could not be (down, unwatched)."""
        devices, attribute_glob = self._devices_and_glob()
        if not devices:
            raise LookupError(f"no device of the database matches {self.pattern!r}: `tangolab devices` lists them")
        records = []
        for device in devices:
            records += self._subscribe_device(device, attribute_glob)
        self._next_rescan = time.monotonic() + self.rescan_period
        trls = [device for device in devices if "://" in device]
        self._restarts = RestartListener(trls[0].split("/")[2] if trls else None)
        try:
            self._restarts.start()
        except tango.DevFailed:
            pass  # no supervisor: Tango's own keep-alive subscribes again, within 10 s
        self._pinger = threading.Thread(target=self._ping_devices, args=(devices,), name="spy-health", daemon=True)
        self._pinger.start()
        return records

    def poll(self) -> list[dict]:
        """Drain every queue once: the records in time order (and losses where they happened)."""
        records: list[dict] = []
        while self._health:
            records.append(self._health.popleft())
        for device in self._restarts.restarted() if self._restarts is not None else ():
            records += self._subscribe_again(device)
        for sub in self.subscriptions:
            try:
                events = sub.proxy.get_events(sub.event_id)
            except tango.DevFailed as exc:
                records.append(self._record(sub, time.time(), error=error_text(exc.args), kind="error"))
                continue
            if not events:
                continue
            sub.received += len(events)
            if len(events) >= self.queue_size:
                records.append({  # just before the events it kept, where the gap is
                    "kind": "lost", "time": stamp(_event_time(events[0])), "device": sub.device,
                    "attribute": sub.attribute,
                    "lost": f"the spy's queue of {self.queue_size} events was full when drained: events before "
                    f"{stamp(_event_time(events[0]))} were dropped (a larger queue or a narrower pattern keeps up)",
                })
            records += [self._event_record(sub, event) for event in events]
        if time.monotonic() >= self._next_rescan:  # devices back, attributes created at run time (the relay's)
            for device, glob in list(self._globs.items()):
                self._pending.pop(device, None)
                records += self._subscribe_device(device, glob, report_down=False)
            self._next_rescan = time.monotonic() + self.rescan_period
        records.sort(key=lambda r: r.get("time", ""))
        return records

    def records(self, interval: float = 0.02) -> Iterator[dict]:
        """Start, then every record as it comes, until the caller stops iterating."""
        yield from self.start()
        while True:
            batch = self.poll()
            yield from batch
            if not batch:
                time.sleep(interval)

    def stop(self) -> None:
        """Unsubscribe everything, and end the pinging (a Tango call at interpreter exit aborts it)."""
        self._stopping.set()
        if self._restarts is not None:
            self._restarts.stop()
        if self._pinger is not None:
            self._pinger.join(timeout=self.health_period + 5)
        for sub in self.subscriptions:
            try:
                sub.proxy.unsubscribe_event(sub.event_id)
            except tango.DevFailed:
                pass
        self.subscriptions.clear()

    # -- internals ----------------------------------------------------------------------------

    def _ping_devices(self, devices: list[str]) -> None:
        """Ping every device each `health_period`; say when one stops answering and when it is back."""
        proxies = {}
        for device in devices:
            proxies[device] = tango.DeviceProxy(trl(device))
            proxies[device].set_timeout_millis(max(200, int(self.health_period * 1000)))
        answering = {device: device not in self._pending for device in devices}
        while not self._stopping.wait(self.health_period):
            for device, proxy in proxies.items():
                try:
                    proxy.ping()
                    if not answering[device]:
                        self._health.append({"kind": "up", "time": stamp(time.time()), "device": device})
                    answering[device] = True
                except tango.DevFailed as exc:
                    if answering[device]:
                        self._health.append({"kind": "down", "time": stamp(time.time()), "device": device,
                                             "error": error_text(exc.args)})
                    answering[device] = False

    def _devices_and_glob(self) -> tuple[list[str], str]:
        if self.devices is not None:
            return list(self.devices), self.pattern
        self.names = self.names or Names()
        return self.names.devices_and_attribute_glob(self.pattern)

    def _subscribe_again(self, restarted: str) -> list[dict]:
        """A device's server came up again: drop its subscriptions and subscribe anew, at once."""
        records = []
        for device, glob in list(self._globs.items()):
            if device_of(device) != restarted:
                continue
            for sub in [sub for sub in self.subscriptions if sub.device == device]:
                try:
                    sub.proxy.unsubscribe_event(sub.event_id)
                except tango.DevFailed:
                    pass
                self.subscriptions.remove(sub)
            self._seen.pop(device, None)
            records += self._subscribe_device(device, glob, report_down=False)
        return records

    def _subscribe_device(self, device: str, glob: str, report_down: bool = True) -> list[dict]:
        """Subscribe the device's attributes matching `glob` not subscribed yet."""
        self._globs[device] = glob
        seen = self._seen.setdefault(device, set())
        proxy = next((s.proxy for s in self.subscriptions if s.device == device), None) or tango.DeviceProxy(trl(device))
        try:
            infos = proxy.attribute_list_query_ex()
        except tango.DevFailed as exc:
            self._pending[device] = glob
            return [{"kind": "down", "time": stamp(time.time()), "device": device,
                     "error": error_text(exc.args)}] if report_down else []
        unwatched, reason = [], ""
        for info in infos:
            if info.name in seen or not fnmatch.fnmatchcase(info.name.lower(), glob.lower()):
                continue
            labels = tuple(info.enum_labels) if info.data_type == tango.CmdArgType.DevEnum else ()
            try:
                event_id = proxy.subscribe_event(info.name, tango.EventType.CHANGE_EVENT, self.queue_size)
            except tango.DevFailed as exc:
                if exc.args[0].reason in NO_EVENTS:
                    seen.add(info.name)
                    unwatched.append(info.name)
                    reason = "no change events (neither pushed by the device nor polled)"
                    continue
                self._pending[device] = glob  # went away between the two calls: try again later
                return [{"kind": "down", "time": stamp(time.time()), "device": device, "error": error_text(exc.args)}]
            seen.add(info.name)
            self.subscriptions.append(Subscription(proxy, device, info.name, event_id, labels))
        if unwatched:
            return [{"kind": "unwatched", "time": stamp(time.time()), "device": device, "attributes": unwatched,
                     "reason": reason}]
        return []

    def _event_record(self, sub: Subscription, event: tango.EventData) -> dict:
        if event.err:
            reason = event.errors[0].reason
            if reason in LOSS_REASONS:
                return {"kind": "lost", "time": stamp(_event_time(event)), "device": sub.device,
                        "attribute": sub.attribute, "lost": error_text(event.errors)}
            return self._record(sub, _event_time(event), error=error_text(event.errors), kind="error")
        value = event.attr_value
        return self._record(sub, _event_time(event), json_value(value.value, sub.labels), quality_name(value.quality))

    @staticmethod
    def _record(sub: Subscription, when: float, value: object = None, quality: str | None = None,
                error: str | None = None, kind: str = "event") -> dict:
        return {"kind": kind, "time": stamp(when), "device": sub.device, "attribute": sub.attribute,
                "value": value, "quality": quality, "error": error}


def _event_time(event: tango.EventData) -> float:
    if not event.err and event.attr_value is not None:
        return event.attr_value.time.totime()
    return event.reception_date.totime()
