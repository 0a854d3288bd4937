"""One subscription per attribute, whatever the number of browsers.

The hub subscribes an attribute once, through the lab's one event intake (change events, else
periodic ones, else a read every `poll_period`), keeps its last value so that a new page is
filled at once, and hands every update to each watcher's own latest-value box: a box holds at
most one value per attribute, so a browser that reads slowly (or not at all) skips values
instead of holding up the others or the devices. When the last watcher of an attribute leaves,
its subscription is undone after `linger` seconds (a page reload does not subscribe anew).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterable

import numpy as np
import tango

from ..events import Intake, error_text, event_time
from ..images import binned
from ..spy import json_value, quality_name

KINDS = (tango.EventType.CHANGE_EVENT, tango.EventType.PERIODIC_EVENT)
PUMP_PERIOD = 0.02  # s between two takes from the intake
MAX_ELEMENTS = 2000  # a longer spectrum is sent as its shape: pages show values, not data sets
IMAGE_SIDE = 128  # an image goes to pages averaged in square bins, this many pixels a side at most


class Watcher:
    """One browser's subscriptions and its latest-value box, read by its event stream."""

    def __init__(self, hub: Hub, names: tuple[str, ...], loop: asyncio.AbstractEventLoop | None) -> None:
        self.hub = hub
        self.names = names
        self.loop = loop
        self.ready = asyncio.Event() if loop is not None else None
        self._box: dict[str, str] = {}
        self._lock = threading.Lock()

    def offer(self, name: str, update: str) -> None:
        """From the hub's thread: keep the newest value (as JSON) of each attribute, wake the reader once."""
        with self._lock:
            wake = not self._box
            self._box[name] = update  # a value the browser has not taken yet is skipped
        if wake and self.loop is not None:
            try:
                self.loop.call_soon_threadsafe(self.ready.set)
            except RuntimeError:  # its loop closed: the browser left
                pass

    def take(self) -> list[str]:
        with self._lock:
            box, self._box = self._box, {}
        if self.ready is not None:
            self.ready.clear()
        return list(box.values())

    async def next(self, timeout: float) -> list[str]:
        """The updates (JSON objects) since the last call, waiting up to `timeout` for one."""
        if updates := self.take():
            return updates
        try:
            await asyncio.wait_for(self.ready.wait(), timeout)
        except TimeoutError:
            return []
        return self.take()

    def close(self) -> None:
        self.hub.unwatch(self)


class Hub:
    """The web service's subscriptions: one feed per attribute, shared by every watcher."""

    def __init__(self, tango_host: str, poll_period: float = 1.0, linger: float = 2.0) -> None:
        self.tango_host = tango_host
        self.poll_period = poll_period
        self.linger = linger
        self.intake = Intake(queue_size=1000)
        self._lock = threading.Lock()
        self._feeds: dict[str, object] = {}  # attribute name (lower case) -> Feed
        self._watchers: dict[str, set[Watcher]] = {}
        self._latest: dict[str, str] = {}  # attribute -> its last update, as JSON (made once for every watcher)
        self._idle_since: dict[str, float] = {}
        self._labels: dict[str, tuple[str, ...]] = {}  # feed name -> an enumeration's labels
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._pump, name="web hub", daemon=True)
        self._thread.start()

    def watch(self, names: Iterable[str], loop: asyncio.AbstractEventLoop | None = None) -> Watcher:
        """Watch attributes (`domain/family/member/attribute`); their last values are in the box at once."""
        watcher = Watcher(self, tuple(dict.fromkeys(name.lower() for name in names)), loop)
        with self._lock:
            for name in watcher.names:
                self._watchers.setdefault(name, set()).add(watcher)
                self._idle_since.pop(name, None)
                if name not in self._feeds:
                    self._feeds[name] = self.intake.add(f"tango://{self.tango_host}/{name}", KINDS,
                                                        poll_period=self.poll_period, now=False)
                if (latest := self._latest.get(name)) is not None:
                    watcher.offer(name, latest)
        return watcher

    def unwatch(self, watcher: Watcher) -> None:
        with self._lock:
            for name in watcher.names:
                watchers = self._watchers.get(name, set())
                watchers.discard(watcher)
                if not watchers:
                    self._idle_since[name] = time.monotonic()

    def latest(self, name: str) -> dict | None:
        latest = self._latest.get(name.lower())
        return None if latest is None else json.loads(latest)

    @property
    def subscriptions(self) -> int:
        """Attributes subscribed now (what the devices see)."""
        with self._lock:
            return len(self._feeds)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.intake.close()

    def _pump(self) -> None:
        while not self._stop.wait(PUMP_PERIOD):
            with self._lock:
                feeds = list(self._feeds.items())
                idle = [name for name, since in self._idle_since.items() if time.monotonic() - since > self.linger]
                for name in idle:
                    del self._idle_since[name]
                    self._watchers.pop(name, None)
                    self.intake.remove(self._feeds.pop(name))
                    self._latest.pop(name, None)
            for name, feed in feeds:
                events = feed.take()
                if not events:
                    continue
                try:
                    update = json.dumps(self._update(name, feed, events[-1]))
                except (TypeError, ValueError) as error:  # a value JSON cannot carry: said, the pump goes on
                    update = json.dumps({"name": name, "value": None, "quality": "INVALID", "time": time.time(),
                                         "error": f"cannot be shown on a page: {error}"})
                self._latest[name] = update
                with self._lock:
                    watchers = list(self._watchers.get(name, ()))
                for watcher in watchers:
                    watcher.offer(name, update)

    def _update(self, name: str, feed, event) -> dict:
        when = event_time(event)
        if event.err:
            return {"name": name, "value": None, "quality": "INVALID", "time": when, "error": error_text(event.errors)}
        reading = event.attr_value
        return {"name": name, "value": plain(reading.value, self._enum_labels(feed, reading)),
                "quality": quality_name(reading.quality), "time": when, "error": None}

    def _enum_labels(self, feed, reading: tango.DeviceAttribute) -> tuple[str, ...]:
        """An enumeration's labels, asked once, so that its values go out by name."""
        if reading.type != tango.CmdArgType.DevEnum:
            return ()
        labels = self._labels.get(feed.name)
        if labels is None:
            try:
                labels = tuple(feed.proxy.get_attribute_config(feed.attribute).enum_labels)
            except tango.DevFailed:
                return ()  # asked again at the next value
            self._labels[feed.name] = labels
        return labels


def plain(value: object, labels: tuple[str, ...] = ()) -> object:
    """A Tango value for JSON: a numeric image binned for a page (`{"image": rows, "shape":
    [height, width]}`, the shape the device's), a spectrum too long for a page as its size, an
    encoded block as its format and size."""
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], (bytes, bytearray, memoryview)):
        return {"encoded": value[0], "bytes": len(value[1])}  # a DevEncoded block: its format and size
    if isinstance(value, np.ndarray) and value.ndim == 2 and value.dtype.kind in "iuf" and value.size:
        small = np.nan_to_num(binned(value, IMAGE_SIDE).astype(float)).round(2)
        return {"image": small.tolist(), "shape": list(value.shape)}
    size = getattr(value, "size", None)
    if size is not None and size > MAX_ELEMENTS:
        return {"shape": list(value.shape)}
    return json_value(value, labels)
