"""One archived attribute: how its values reach the archive, and how its outages are recorded.

Archive events first, change events when the attribute pushes no archive events, reading it
every poll period when it pushes neither. A polled value is stored as Tango would send an
archive event: when it moved by the attribute's `archive_abs_change` or `archive_rel_change`
(by any amount when neither is set), when its quality changed, or when `archive_period` has
passed; a reading already stored (same time) is not stored again. An outage (server gone, read
failing) becomes exactly one error row, at the time it started as far as anyone knows it (a
server's end at the moment its supervisor saw it); the next good value ends it.

Events come through the archiver's `tangolab.events.Intake` (queues taken in batches by
`drain()`, subscriptions renewed when a server restarts, the late joiner's value read back), or
through one of its intake processes (intake.py), which sends the rows of each take to `accept`.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import tango

from tangolab.archive import INVALID, tango_type
from tangolab.events import NOT_OFFERED, Feed, Intake, attribute_name

from .intake import EVENT_KINDS, ProcessIntake, archive_row, archive_rows
from .writer import Writer

MODES = ("archive events", "change events", "polling")  # the first two: EVENT_KINDS'
EVENT_CHANNEL_QUIET = "Event channel is not responding"  # Tango's keep-alive's error, API_EventTimeout
QUEUE_SIZE = 200_000  # events held per subscription between two drains
PERIOD_TOLERANCE = 0.98  # a poll a little early for archive_period still counts, as polling jitters


def not_archivable(name: str, config: tango.AttributeInfoEx) -> str | None:
    """Why an attribute cannot be archived, or None: a stream's blocks never are."""
    if config.data_type == tango.CmdArgType.DevEncoded:
        return (f"{name} is encoded data (DevEncoded, such as a stream's blocks): blocks are never archived; "
                "archive the device's counters or views, and record its stream with `tangolab record DEVICE`")
    if config.data_format == tango.AttrDataFormat.IMAGE:
        return f"{name} is an image: images are not archived"
    try:
        tango_type(int(config.data_type))
    except ValueError as exc:
        return f"{name}: {exc}"
    return None


def _threshold(text: str) -> tuple[float, float] | None:
    """(down, up) magnitudes of a Tango change threshold: "Not specified", "0.5" or "-0.5,1"."""
    try:
        parts = [abs(float(part)) for part in str(text).split(",") if part.strip()]
    except ValueError:
        return None  # "Not specified"
    if not parts or not any(parts):
        return None
    return (parts[0], parts[-1])


@dataclass(frozen=True)
class ArchiveThresholds:
    """When a polled value is worth storing, by the attribute's archive event properties."""

    absolute: tuple[float, float] | None = None
    relative: tuple[float, float] | None = None  # percent of the last stored value
    period: float | None = None  # seconds

    @classmethod
    def of(cls, config: tango.AttributeInfoEx) -> ArchiveThresholds:
        archive = config.events.arch_event
        period = _threshold(archive.archive_period)
        return cls(
            _threshold(archive.archive_abs_change),
            _threshold(archive.archive_rel_change),
            period[-1] / 1000.0 if period else None,
        )

    def due(self, last: tuple[float, Any, int] | None, now: tuple[float, Any, int]) -> bool:
        """Whether reading `now` (time, value, quality) is stored after `last`, the last stored one."""
        if last is None:
            return True
        (then, old, old_quality), (t, value, quality) = last, now
        if t <= then:
            return False  # the same reading again (a device serving its cache)
        if quality != old_quality or (old is None) != (value is None):
            return True
        if self.period is not None and t - then >= self.period * PERIOD_TOLERANCE:
            return True
        return value is not None and self._moved(old, value)

    def _moved(self, old: Any, value: Any) -> bool:
        try:
            old_array, new_array = np.asarray(old, float), np.asarray(value, float)
        except (TypeError, ValueError):  # strings, states: any change is a change
            return not _same(old, value)
        if old_array.shape != new_array.shape:
            return True
        if self.absolute is None and self.relative is None:
            return not np.array_equal(old_array, new_array, equal_nan=True)
        delta = new_array - old_array
        if np.any(np.isnan(old_array) != np.isnan(new_array)):
            return True
        moved = False
        if self.absolute is not None:
            down, up = self.absolute
            moved |= bool(np.any((delta >= up) | (delta <= -down)))
        if self.relative is not None:
            down, up = self.relative
            with np.errstate(divide="ignore", invalid="ignore"):
                percent = np.where(old_array == 0, np.where(delta == 0, 0.0, math.inf), 100 * delta / abs(old_array))
            moved |= bool(np.any((percent >= up) | (percent <= -down)))
        return moved


def _same(old: Any, value: Any) -> bool:
    if isinstance(old, np.ndarray) or isinstance(value, np.ndarray):
        return np.array_equal(np.asarray(old), np.asarray(value))
    return old == value


class ArchivedAttribute:
    """A subscription (or a polled read) feeding one attribute's values to the writer.

    `name` is the attribute's name in the archive; `device` is where it is read (a Tango
    resource locator the archiver's host can reach: the same device by another alias, or a
    TANGO_HOST the archive keeps under the name of an earlier one).
    """

    def __init__(self, name: str, device: str, writer: Writer, intake: Intake | ProcessIntake) -> None:
        self.name = name  # full: tango://host:port/domain/family/member/attribute
        self.device = device
        self.attribute = name.rpartition("/")[2]
        self.writer = writer
        self.intake = intake
        self.conf_id: int | None = writer.store.conf_id(name)  # known when archived before
        self.mode: str | None = None
        self.error: str | None = None
        self._outage_began = 0.0  # when the current outage began (its error row's time)
        self.is_state = False
        self.writable = False
        self.thresholds = ArchiveThresholds()
        self._configured = False
        self._last: tuple[float, Any, int] | None = None  # the last polled reading stored
        self._proxy: tango.DeviceProxy | None = None
        self._feed: Feed | None = None
        self._remote_losses: int | None = None  # subscribed in an intake process: the losses it counted
        self._earlier_losses = 0  # counted by intake processes that ended since
        self._newest = 0.0  # time stamp of the newest value taken
        self._lock = threading.Lock()

    def proxy(self) -> tango.DeviceProxy:
        self._proxy = self._proxy or tango.DeviceProxy(self.device)
        return self._proxy

    def configure(self, config: tango.AttributeInfoEx) -> None:
        """Register the attribute with its configuration (type, unit, thresholds, enum labels);
        ValueError if it cannot be archived."""
        if (why := not_archivable(self.name, config)) is not None:
            raise ValueError(why)
        self.is_state = config.data_type == tango.CmdArgType.DevState
        self.writable = config.writable != tango.AttrWriteType.READ
        self.thresholds = ArchiveThresholds.of(config)
        store = self.writer.store
        self.conf_id = store.register(self.name, int(config.data_type), int(config.data_format), int(config.writable))
        archive = config.events.arch_event
        store.insert_parameters(
            self.conf_id, time.time(), label=config.label, unit=config.unit, format=config.format,
            description=config.description, archive_abs_change=archive.archive_abs_change,
            archive_rel_change=archive.archive_rel_change, archive_period=archive.archive_period,
            enum_labels=config.enum_labels if config.data_type == tango.CmdArgType.DevEnum else (),
        )
        self._configured = True

    def connect(self) -> None:
        """Register the attribute and subscribe; raises DevFailed while its device is unreachable."""
        proxy = self.proxy()
        proxy.ping()
        if not self._configured:
            self.configure(proxy.get_attribute_config(self.attribute))
        name = attribute_name(self.device, self.attribute)
        try:
            if isinstance(self.intake, ProcessIntake):
                kind = self.intake.add(self.conf_id, name, self.is_state, self.writable, self.accept, self._intake_ended)
                self._remote_losses = 0
            else:
                self._feed = self.intake.add(name, EVENT_KINDS)
                kind = self._feed.kind
            self.mode = MODES[EVENT_KINDS.index(kind)]
            return
        except tango.DevFailed as exc:
            if not NOT_OFFERED & {error.reason for error in exc.args}:
                raise  # the device went away meanwhile: try again later, events first
        self.mode = MODES[-1]
        self.poll()

    def poll(self) -> None:
        """Read the attribute once (for attributes that push no events); store it if it is due."""
        asked = time.time()
        try:
            reading = self.proxy().read_attribute(self.attribute)
        except tango.DevFailed as exc:
            self.failed(exc.args[0].desc)
            return
        self.error = None
        row = archive_row(reading, self.conf_id, self.is_state, self.writable)
        now = (row[1], row[2], row[4])
        if self.thresholds.due(self._last, now):
            self._last = now
            self.writer.put_many([row], born=max(row[1], asked))  # a device's cached reading is not late

    def drain(self) -> int:
        """Take the events received since the last drain to the writer; returns how many."""
        feed = self._feed
        if feed is None:
            return 0
        if events := feed.take():
            self.accept(*archive_rows(events, self.conf_id, self.is_state, self.writable), feed.since)
        return len(events)

    def accept(self, rows: list[tuple], errors: bool, since: float, losses: int | None = None) -> None:
        """The rows of one take of events (`archive_rows`), taken here or in an intake process, to
        the writer: an error row begins an outage (stored once), a reading ends it. `since`: when
        the subscription began, as what it read first may be older news."""
        if errors:
            values = []
            for row in rows:
                if row[5] is None:
                    self._ended_by(row[1])
                    values.append(row)
                elif not self._answers_despite(row[5]):
                    self.failed(row[5], row[1])
            rows = values
        elif rows:
            self._ended_by(rows[-1][1])
        if rows:
            self.writer.put_many(rows, born=self._born(rows, since))
        if losses is not None:
            self._remote_losses = losses

    def _born(self, rows: list[tuple], since: float) -> float | None:
        """When the oldest news among rows came into being: its time stamp, or when its subscription
        began (what a subscription reads first may be older news); a value stamped before one
        already taken is a repeat (Tango re-subscribing by itself reads the value again), no news.
        None: no news (late by nothing)."""
        newest, first = self._newest, rows[0][1]
        self._newest = max(newest, rows[-1][1])
        if first <= newest:
            first = next((row[1] for row in rows if row[1] > newest), None)
        return None if first is None else max(first, since)

    def _intake_ended(self, reason: str) -> None:
        """Its intake process ended: an outage from now, until it is subscribed again."""
        self._earlier_losses += self._remote_losses or 0
        self.mode, self._remote_losses = None, None
        self.failed(reason)

    def _answers_despite(self, reason: str) -> bool:
        """Whether the attribute answers a read although its events said their channel went quiet:
        Tango's keep-alive can say so seconds late, after the server was restarted and its events
        resumed, which would store an outage that is not."""
        if self.error is not None or not reason.startswith(EVENT_CHANNEL_QUIET):
            return False
        try:
            self.proxy().read_attribute(self.attribute)
        except tango.DevFailed:
            return False
        return True

    def _ended_by(self, stamp: float) -> None:
        """A reading ends an outage if it was taken after the outage began: one stamped before (queued
        before the server died, delivered after its death was heard) does not, or the next error of
        the same outage (the event channel's) would be stored as a second outage."""
        if stamp > self._outage_began:
            self.error = None

    def failed(self, reason: str, when: float | None = None) -> None:
        """Record the start of an outage once, at `when` (default now); repeated errors of the same
        outage add nothing."""
        when = time.time() if when is None else when
        with self._lock:
            starting = self.error is None
            self.error = reason.strip() or "unknown error"
            if starting:
                self._outage_began = when
        if starting:
            self._last = None  # the first reading after the outage is stored
            if self.conf_id is not None:
                self.writer.put(self.conf_id, when, None, INVALID, error=self.error)

    @property
    def losses(self) -> int:
        """Reports of events lost before they reached the archiver (Tango's missed events, a full queue)."""
        if self._remote_losses is not None:
            return self._earlier_losses + self._remote_losses
        return self._earlier_losses + (self._feed.losses if self._feed is not None else 0)

    def disconnect(self) -> None:
        feed, self._feed = self._feed, None
        if feed is not None:
            self.intake.remove(feed)
        elif isinstance(self.intake, ProcessIntake) and self.conf_id is not None:
            self.intake.remove(self.conf_id)
