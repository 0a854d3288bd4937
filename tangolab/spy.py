"""The spy: every event of the lab's attributes, one JSON line each, and every loss said aloud.

    for record in Spy("lab/tec/*").records():
        print(json.dumps(record))

Each attribute that offers change events (State included) is subscribed with an event queue
of its own, drained in turn. A record is one of:

- `{"kind": "event", "time", "device", "attribute", "value", "quality", "error": null}`
- `{"kind": "error", ..., "error": "API_EventTimeout: ..."}` a device went away, a read failed,
  its server ended (`TangoLab_ServerEnded`, at the moment its supervisor saw it); when it comes
  back its events simply resume;
- `{"kind": "lost", "time", "device", "attribute", "lost": text}` events were dropped: Tango
  reported missed events (`API_MissedEvents`), or the spy's own queue of that attribute was full
  when drained (a queue keeps the newest `queue_size` events and overwrites older ones);
- `{"kind": "unwatched", "device", "attributes": [...], "reason"}` attributes without events;
- `{"kind": "down", "device", "error"}` a device that does not answer (found by pinging every
  device each `health_period` seconds, sooner than Tango's 10 s event keep-alive tells);
  `{"kind": "up", "device"}` when it answers again; its events then resume by themselves.

Events come through a `tangolab.events.Intake`: queues drained in turn, subscriptions renewed
when a supervisor says a server restarted, a value pushed right after subscribing read back.
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

from .events import (
    DEFAULT_QUEUE,
    NOT_OFFERED,
    QUEUE_FULL,
    Feed,
    Intake,
    attribute_name,
    error_text,
    event_time,
    is_loss,
)
from .names import Names, trl


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


def quality_name(quality: tango.AttrQuality) -> str:
    return str(quality).removeprefix("ATTR_")


@dataclass
class Subscription:
    """One attribute's events."""

    feed: Feed
    device: str
    attribute: str
    labels: tuple[str, ...] = ()


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
    _proxies: dict[str, tango.DeviceProxy] = field(default_factory=dict)  # device -> proxy listing its attributes
    _intake: Intake | None = None

    def start(self) -> list[dict]:
        """Subscribe what the pattern matches; records of what could not be (down, unwatched)."""
        devices, attribute_glob = self._devices_and_glob()
        if not devices:
            raise LookupError(f"no device of the database matches {self.pattern!r}: `tangolab devices` lists them")
        self._intake = Intake(queue_size=self.queue_size)
        records = []
        for device in devices:
            records += self._subscribe_device(device, attribute_glob)
        self._next_rescan = time.monotonic() + self.rescan_period
        self._pinger = threading.Thread(target=self._ping_devices, args=(devices,), name="spy-health", daemon=True)
        self._pinger.start()
        return records

    def poll(self) -> list[dict]:
        """Drain every queue once: the records in time order (and losses where they happened)."""
        records: list[dict] = []
        while self._health:
            records.append(self._health.popleft())
        for sub in self.subscriptions:
            records += [self._event_record(sub, event) for event in sub.feed.take()]
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
        if self._pinger is not None:
            self._pinger.join(timeout=self.health_period + 5)
        if self._intake is not None:
            self._intake.close()
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

    def _subscribe_device(self, device: str, glob: str, report_down: bool = True) -> list[dict]:
        """Subscribe the device's attributes matching `glob` not subscribed yet."""
        self._globs[device] = glob
        seen = self._seen.setdefault(device, set())
        try:
            proxy = self._proxies.get(device) or self._proxies.setdefault(device, tango.DeviceProxy(trl(device)))
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
                feed = self._intake.add(attribute_name(trl(device), info.name))
            except tango.DevFailed as exc:
                if exc.args[0].reason in NOT_OFFERED:
                    seen.add(info.name)
                    unwatched.append(info.name)
                    reason = "no change events (neither pushed by the device nor polled)"
                    continue
                self._pending[device] = glob  # went away between the two calls: try again later
                return [{"kind": "down", "time": stamp(time.time()), "device": device, "error": error_text(exc.args)}]
            seen.add(info.name)
            self.subscriptions.append(Subscription(feed, device, info.name, labels))
        if unwatched:
            return [{"kind": "unwatched", "time": stamp(time.time()), "device": device, "attributes": unwatched,
                     "reason": reason}]
        return []

    def _event_record(self, sub: Subscription, event: tango.EventData) -> dict:
        if event.err:
            if is_loss(event):
                when = stamp(event_time(event))
                lost = (f"the spy's queue of {self.queue_size} events was full when drained: events before {when} were "
                        "dropped (a larger queue or a narrower pattern keeps up)"
                        if event.errors[0].reason == QUEUE_FULL else error_text(event.errors))
                return {"kind": "lost", "time": when, "device": sub.device, "attribute": sub.attribute, "lost": lost}
            return self._record(sub, event_time(event), error=error_text(event.errors), kind="error")
        value = event.attr_value
        return self._record(sub, event_time(event), json_value(value.value, sub.labels), quality_name(value.quality))

    @staticmethod
    def _record(sub: Subscription, when: float, value: object = None, quality: str | None = None,
                error: str | None = None, kind: str = "event") -> dict:
        return {"kind": kind, "time": stamp(when), "device": sub.device, "attribute": sub.attribute,
                "value": value, "quality": quality, "error": error}

