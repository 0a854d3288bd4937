"""One archived attribute: how its values reach the archive, and how its outages are recorded.

Archive events first, change events when the attribute pushes no archive events, reading it
every poll period when it pushes neither. An outage (server gone, read failing) becomes exactly
one error row when it starts; the next good value ends it. Tango's event system re-subscribes by
itself when a server comes back, so a subscription is made once and kept.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import tango

from .storage import INVALID
from .writer import Writer

MODES = ("archive events", "change events", "polling")


class ArchivedAttribute:
    """A subscription (or a polled read) feeding one attribute's values to the writer."""

    def __init__(self, name: str, writer: Writer) -> None:
        self.name = name  # full: tango://host:port/domain/family/member/attribute
        self.device, _, self.attribute = name.rpartition("/")
        self.writer = writer
        self.conf_id: int | None = None
        self.mode: str | None = None
        self.error: str | None = None
        self.received = 0
        self._proxy: tango.DeviceProxy | None = None
        self._event_id: int | None = None
        self._lock = threading.Lock()

    def connect(self) -> None:
        """Register the attribute and subscribe; raises DevFailed while its device is unreachable."""
        proxy = self._proxy = self._proxy or tango.DeviceProxy(self.device)
        proxy.ping()
        if self.conf_id is None:
            config = proxy.get_attribute_config(self.attribute)
            store = self.writer.store
            self.conf_id = store.register(
                self.name, int(config.data_type), int(config.data_format), int(config.writable)
            )
            store.insert_parameters(
                self.conf_id, time.time(), label=config.label, unit=config.unit, format=config.format,
                description=config.description, archive_abs_change=config.events.arch_event.archive_abs_change,
                archive_period=config.events.arch_event.archive_period,
            )
        for mode, event_type in zip(MODES, (tango.EventType.ARCHIVE_EVENT, tango.EventType.CHANGE_EVENT)):
            try:
                self._event_id = proxy.subscribe_event(self.attribute, event_type, self.push_event)
                self.mode = mode
                return
            except tango.DevFailed:
                continue  # this kind of event is not offered: try the next
        self.mode = MODES[-1]
        self.poll()

    def poll(self) -> None:
        """Read the attribute once (for attributes that push no events)."""
        try:
            reading = self._proxy.read_attribute(self.attribute)
        except tango.DevFailed as exc:
            self.failed(exc.args[0].desc)
            return
        self.arrived(reading)

    def push_event(self, event: tango.EventData) -> None:
        """Tango's event callback: must return at once, so it only queues."""
        if event.err:
            self.failed(event.errors[0].desc)
        else:
            self.arrived(event.attr_value)

    def arrived(self, reading: tango.DeviceAttribute) -> None:
        self.received += 1
        self.error = None
        value = None if reading.quality == tango.AttrQuality.ATTR_INVALID else reading.value
        self.writer.put(self.conf_id, reading.time.totime(), _plain(value), int(reading.quality),
                        _plain(reading.w_value))

    def failed(self, reason: str) -> None:
        """Record the start of an outage once; repeated errors of the same outage add nothing."""
        with self._lock:
            starting = self.error is None
            self.error = reason.strip() or "unknown error"
        if starting and self.conf_id is not None:
            self.writer.put(self.conf_id, time.time(), None, INVALID, error=self.error)

    def disconnect(self) -> None:
        if self._event_id is not None and self._proxy is not None:
            try:
                self._proxy.unsubscribe_event(self._event_id)
            except tango.DevFailed:
                pass  # the server is gone: nothing left to undo
        self._event_id = None


def _plain(value: Any) -> Any:
    """DevState and DevEnum values as their numbers, as HDB++ stores them."""
    return int(value) if isinstance(value, tango.DevState) else value
