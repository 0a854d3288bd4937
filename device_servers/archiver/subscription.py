"""One archived attribute: how its values reach the archive, and how its outages are recorded.

Archive events first, change events when the attribute pushes no archive events, reading it
every poll period when it pushes neither. An outage (server gone, read failing) becomes exactly
one error row when it starts; the next good value ends it. Tango's event system re-subscribes by
itself when a server comes back, so a subscription is made once and kept.

Events are received into Tango's own per-subscription queue and taken out in batches by
`drain()`: a Python callback per event costs a thread switch and the GIL each time, and halves
the rate at which one process can take events in.
"""

from __future__ import annotations

import threading
import time

import tango

from tangolab.archive_store import INVALID

from .writer import Writer

MODES = ("archive events", "change events", "polling")
INVALID_QUALITY = tango.AttrQuality.ATTR_INVALID
QUEUE_SIZE = 200_000  # events held per subscription between two drains
#: What subscribe_event says when an attribute offers no such events (neither pushed nor polled)
NOT_OFFERED = {"API_AttributePollingNotStarted", "API_EventPropertiesNotSet"}


class ArchivedAttribute:
    """A subscription (or a polled read) feeding one attribute's values to the writer."""

    def __init__(self, name: str, writer: Writer) -> None:
        self.name = name  # full: tango://host:port/domain/family/member/attribute
        self.device, _, self.attribute = name.rpartition("/")
        self.writer = writer
        self.conf_id: int | None = None
        self.mode: str | None = None
        self.error: str | None = None
        self.is_state = False
        self.writable = False
        self._proxy: tango.DeviceProxy | None = None
        self._event_id: int | None = None
        self._lock = threading.Lock()

    def connect(self) -> None:
        """Register the attribute and subscribe; raises DevFailed while its device is unreachable."""
        proxy = self._proxy = self._proxy or tango.DeviceProxy(self.device)
        proxy.ping()
        if self.conf_id is None:
            config = proxy.get_attribute_config(self.attribute)
            self.is_state = config.data_type == tango.CmdArgType.DevState
            self.writable = config.writable != tango.AttrWriteType.READ
            store = self.writer.store
            self.conf_id = store.register(
                self.name, int(config.data_type), int(config.data_format), int(config.writable)
            )
            store.insert_parameters(
                self.conf_id, time.time(), label=config.label, unit=config.unit, format=config.format,
                description=config.description, archive_abs_change=config.events.arch_event.archive_abs_change,
                archive_period=config.events.arch_event.archive_period,
                enum_labels=config.enum_labels if config.data_type == tango.CmdArgType.DevEnum else (),
            )
        for mode, event_type in zip(MODES, (tango.EventType.ARCHIVE_EVENT, tango.EventType.CHANGE_EVENT)):
            try:
                self._event_id = proxy.subscribe_event(self.attribute, event_type, QUEUE_SIZE)
                self.mode = mode
                return
            except tango.DevFailed as exc:
                if not NOT_OFFERED & {error.reason for error in exc.args}:
                    raise  # the device went away meanwhile: try again later, events first
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

    def drain(self) -> int:
        """Take the events received since the last drain to the writer; returns how many."""
        try:
            events = self._proxy.get_events(self._event_id) if self._event_id is not None else []
        except (tango.DevFailed, ValueError):  # unsubscribed meanwhile (AttributeRemove)
            return 0
        rows: list[tuple] = []
        for event in events:
            if event.err:
                self.failed(event.errors[0].desc)
            else:
                self.error = None
                rows.append(self._row(event.attr_value))
        if rows:
            self.writer.put_many(rows)
        return len(events)

    def arrived(self, reading: tango.DeviceAttribute) -> None:
        self.error = None
        self.writer.put_many([self._row(reading)])

    def _row(self, reading: tango.DeviceAttribute) -> tuple:
        """The archive row of one reading: the hot path of the archiver, every access counts."""
        quality = reading.quality
        stamp = reading.time
        value = None if quality == INVALID_QUALITY else reading.value
        if self.is_state and value is not None:
            value = int(value)  # HDB++ keeps states as their numbers
        written = reading.w_value if self.writable else None
        return (self.conf_id, stamp.tv_sec + stamp.tv_usec * 1e-6, value, written, int(quality), None)

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

