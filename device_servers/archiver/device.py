"""`Archiver`: the lab's history — attribute values and lab messages in HDB++ tables.

Subscribes to the attributes its `ArchivedAttributes` property lists (and those added at run
time) through one `tangolab.events.Intake`, queues every value for one writer thread that stores
them in batches, and keeps going when a device server restarts: the outage is stored as one
error row from when it began (a server's end as its supervisor saw it), and values resume by
themselves. It is also a Tango log consumer: a device whose logging target is
`device::lab/archiver/1` has its log records stored as lab messages, as are the messages of the
`Message` command. Each new message is pushed as a change event of `lastMessage`.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from datetime import datetime

import tango
from tango import DevState, Except
from tango.server import Device, attribute, command, device_property

from tangolab.archive import ArchiveError, Store, open_store, without_password
from tangolab.events import Intake
from tangolab.processes import RUN_DIR_MARK

from ..core.server import serve
from .intake import ProcessIntake, collect_seldom
from .subscription import QUEUE_SIZE, ArchivedAttribute, not_archivable
from .writer import Writer, WriterStats

LEVELS = ("DEBUG", "INFO", "MESSAGE", "WARNING", "ERROR", "SUCCESS")
DRAIN_PERIOD = 0.02  # seconds between two drains of the event queues
STORE_RETRY_FIRST, STORE_RETRY_MAX = 1.0, 30.0  # seconds between tries to open the store
LAG_TREND = 5.0  # s over which the status tells whether the lag grows
NO_STATS = WriterStats(0, 0, 0, 0, 0, 0, 0.0, 0.0, None, False)  # while the store is not open
TANGO_LOG_LEVELS = {"FATAL": "ERROR", "ERROR": "ERROR", "WARN": "WARNING", "INFO": "INFO", "DEBUG": "DEBUG"}


class Archiver(Device):
    """Archives attributes into SQLite (default) or PostgreSQL, in the HDB++ schema."""

    Store = device_property(
        dtype=str, default_value="archive.db",
        doc="SQLite file (relative to the lab's run folder, else to the server's working folder) or "
        "postgresql://user@host:port/db URL",
    )
    ArchivedAttributes = device_property(
        dtype=(str,), default_value=[],
        doc="Attributes to archive, one a line: domain/family/member/attribute (this lab's) or tango://host:port/...",
    )
    PollPeriod = device_property(
        dtype=float, default_value=1.0, doc="Seconds between reads of attributes that push no events"
    )
    RetryPeriod = device_property(
        dtype=float, default_value=5.0, doc="Seconds between tries to reach an attribute whose device is down"
    )
    LagAlarm = device_property(
        dtype=float, default_value=5.0,
        doc="Seconds late (writeLag) at which the archive is falling behind: the archiver turns ALARM, with the "
        "figure in its status, long before a queue would overflow",
    )
    IntakeProcesses = device_property(
        dtype=int, default_value=1,
        doc="Processes that take the events, each its share of the attributes (1: the archiver's own; more where "
        "one core cannot keep up); the archiver's process stores what they take",
    )
    NewHistory = device_property(
        dtype=bool, default_value=False,
        doc="Keep this TANGO_HOST's attributes under its own name, rather than continuing the history the "
        "archive holds for the TANGO_HOST that archived into it first (a lab restarted on another port)",
    )

    def init_device(self) -> None:
        super().init_device()
        self.set_state(DevState.INIT)
        self.set_status(f"opening the archive {self._store_shown}")
        self.store: Store | None = None
        self.writer: Writer | None = None
        self.archive_host: str | None = None  # host:port this lab's attributes are archived under
        self.archived: dict[str, ArchivedAttribute] = {}
        self._retry: dict[str, tuple[float, float]] = {}  # name: (monotonic time of next try, delay)
        self._store_retry = (0.0, 0.0)  # (monotonic time of the next try to open the store, delay)
        self._new_archive = ""
        self._last_message = ""
        self._lags: deque[tuple[float, float]] = deque()  # (monotonic time, writeLag) of the last LAG_TREND s
        self._stop = threading.Event()
        self._wake = threading.Event()
        self.set_change_event("lastMessage", True, False)
        if self.IntakeProcesses > 1:
            self.intake: Intake | ProcessIntake = ProcessIntake(self.IntakeProcesses, QUEUE_SIZE)
        else:
            if self.IntakeProcesses < 1:
                self.warn_stream(f"IntakeProcesses {self.IntakeProcesses} taken as 1: events are taken in this process")
            self.intake = Intake(queue_size=QUEUE_SIZE)
        self._open_store()
        self._threads = [
            threading.Thread(target=self._maintain, name="archiver connections", daemon=True),
            threading.Thread(target=self._drain, name="archiver events", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def delete_device(self) -> None:
        self._stop.set()
        self._wake.set()
        for thread in getattr(self, "_threads", []):
            thread.join(timeout=10)
        for archived in self.archived.values():
            archived.disconnect()
            if archived.conf_id is not None:
                self._ignoring_store(self.store.insert_history_event, archived.conf_id, "stop", time.time())
        self.intake.close()
        if self.writer is not None:
            self.writer.stop()
        if self.store is not None:
            self.store.close()
        super().delete_device()

    # -- attributes ---------------------------------------------------------------------------

    @attribute(dtype=(str,), max_dim_x=10_000, doc="Full names of the archived attributes, as the archive has them")
    def AttributeList(self) -> list[str]:
        return sorted(name for name, archived in self.archived.items() if archived.conf_id is not None)

    @attribute(dtype=(str,), max_dim_x=10_000,
               doc="Attributes in error, each with its error; those whose device was never reached wait here")
    def attributesInError(self) -> list[str]:
        return [f"{name}: {a.error}" for name, a in sorted(self.archived.items()) if a.error]

    @attribute(dtype=int, doc="Values received from events and polled reads since start")
    def eventsReceived(self) -> int:
        return self._stats().received

    @attribute(dtype=int, doc="Reports of events lost before they reached the archiver (Tango's missed events, "
               "a queue full when drained); each report stands for one or more values")
    def eventsLost(self) -> int:
        return sum(archived.losses for archived in list(self.archived.values()))

    @attribute(dtype=int, doc="Rows committed to the archive since start")
    def rowsWritten(self) -> int:
        return self._stats().written

    @attribute(dtype=int, doc="Values waiting to be written")
    def queueDepth(self) -> int:
        return self._stats().queue_depth

    @attribute(dtype=float, unit="s", format="%6.3f", max_warning=1.0,
               doc="How late the archive is, now: from a value's own time stamp to when it is stored, whatever "
               "queue it waited in (the oldest value waiting, else the last stored, for as long as they were late)")
    def writeLag(self) -> float:
        return self._stats().lag

    @attribute(dtype=str, doc="The last lab message: time, level, source and text")
    def lastMessage(self) -> str:
        return self._last_message

    # -- commands -----------------------------------------------------------------------------

    @command(dtype_in=str, doc_in="domain/family/member/attribute (or its tango:// name) to archive")
    def AttributeAdd(self, name: str) -> None:
        """Archive one more attribute: it must exist and be archivable; a device that is down is
        accepted (its attribute waits in attributesInError and is archived once it answers)."""
        self._require_store("Archiver.AttributeAdd")
        full, device = self._full_name(name)
        if full in self.archived:
            Except.throw_exception("AlreadyArchived", f"{full} is already archived", "Archiver.AttributeAdd")
        archived = ArchivedAttribute(full, device, self.writer, self.intake)
        self._check_attribute(archived)
        self.archived[full] = archived
        self._save_list()
        self._wake.set()

    @command(dtype_in=str, doc_in="an archived attribute, as AttributeAdd took it")
    def AttributeRemove(self, name: str) -> None:
        self._require_store("Archiver.AttributeRemove")
        full, _ = self._full_name(name)
        archived = self.archived.pop(full, None)
        if archived is None:
            Except.throw_exception(
                "NotArchived", f"{full} is not archived; AttributeList has those that are", "Archiver.AttributeRemove"
            )
        self._retry.pop(full, None)
        archived.disconnect()
        if archived.conf_id is not None:
            self.store.insert_history_event(archived.conf_id, "remove", time.time())
        self._save_list()

    @command(dtype_in=(str,), doc_in=f"[level, source, text]; level one of {', '.join(LEVELS).lower()}")
    def Message(self, argin: list[str]) -> None:
        if len(argin) != 3:
            Except.throw_exception(
                "BadMessage", f"Message takes [level, source, text], got {len(argin)} strings", "Archiver.Message"
            )
        level, source, text = argin
        if level.upper() not in LEVELS:
            Except.throw_exception(
                "BadMessage", f"unknown level {level!r}: use one of {', '.join(LEVELS).lower()}", "Archiver.Message"
            )
        self._store_message(time.time(), level.upper(), source, text, "Archiver.Message")

    @command(dtype_in=(str,), doc_in="Tango log record: [time ms, level, source, message, NDC, thread]")
    def Log(self, argin: list[str]) -> None:
        """The Tango logging target `device::<this device>` calls this for each record."""
        stamp, level, source, text = argin[:4]
        level = TANGO_LOG_LEVELS.get(level.upper(), "INFO")
        self._store_message(float(stamp) / 1000.0, level, source, text, "Archiver.Log")

    # -- the store ----------------------------------------------------------------------------

    def _open_store(self) -> bool:
        """Open the store, or say why not in FAULT and plan the next try (back-off up to 30 s)."""
        try:
            store = open_store(self._store_location)
        except Exception as exc:  # noqa: BLE001 - any store failure must show, with the store named
            reason = str(exc) if isinstance(exc, ArchiveError) else f"{type(exc).__name__}: {exc}"
            delay = min(max(2 * self._store_retry[1], STORE_RETRY_FIRST), STORE_RETRY_MAX)
            self._store_retry = (time.monotonic() + delay, delay)
            self.set_state(DevState.FAULT)
            self.set_status(f"cannot open the archive {self._store_shown}: {reason}; trying again every {delay:g} s")
            self.error_stream(self.get_status())
            return False
        self.store, self.writer = store, Writer(store).start()
        if (tango_host := self._tango_host()) is not None:
            self.archive_host = store.archive_host(tango_host, continue_history=not self.NewHistory)
        if store.created:
            stamp = datetime.now().isoformat(sep=" ", timespec="seconds")
            self._new_archive = f"; a new archive, created {stamp}"
            note = f"created a new archive at {self._store_shown}: nothing was there"
            self.warn_stream(note)
            self._ignoring_store(store.insert_messages, [(time.time(), "WARNING", self.get_name(), note)])
        for name in self.ArchivedAttributes:
            try:
                full, device = self._full_name(name)
            except tango.DevFailed as exc:
                self.error_stream(f"ArchivedAttributes: {exc.args[0].desc}; skipped")
                continue
            self.archived.setdefault(full, ArchivedAttribute(full, device, self.writer, self.intake))
        self.set_state(DevState.INIT)  # ON once the attributes are subscribed (_report)
        self.set_status(f"connecting {len(self.archived)} attributes; archiving into {self._store_shown}"
                        f"{self._new_archive}")
        self._wake.set()
        return True

    def _require_store(self, origin: str) -> None:
        if self.store is None:
            Except.throw_exception("ArchiveUnavailable", self.get_status(), origin)

    def _stats(self) -> WriterStats:
        return self.writer.stats() if self.writer is not None else NO_STATS

    def _ignoring_store(self, operation, *args) -> None:
        """A bookkeeping write (a history event, a note) that must not stop what calls it."""
        try:
            operation(*args)
        except Exception as exc:  # noqa: BLE001 - the values' own writes report the store's trouble
            self.warn_stream(f"archive bookkeeping failed: {exc}")

    # -- internals ----------------------------------------------------------------------------

    def _check_attribute(self, archived: ArchivedAttribute) -> None:
        """Refuse an attribute that does not exist or cannot be archived; accept one whose device is down."""
        origin = "Archiver.AttributeAdd"
        try:
            proxy = archived.proxy()
        except tango.DevFailed as exc:
            Except.throw_exception("NoSuchDevice", f"{archived.device}: {exc.args[-1].desc.strip()}", origin)
        try:
            proxy.ping()
        except tango.DevFailed as exc:
            archived.error = f"waiting for its device: {exc.args[-1].desc.strip()}"
            return
        try:
            config = proxy.get_attribute_config(archived.attribute)
        except tango.DevFailed:
            known = ", ".join(sorted(proxy.get_attribute_list(), key=str.lower))
            Except.throw_exception(
                "NoSuchAttribute", f"{archived.device} has no attribute {archived.attribute!r}; it has {known}", origin
            )
        if (why := not_archivable(archived.name, config)) is not None:
            Except.throw_exception("NotArchivable", why, origin)
        try:
            archived.configure(config)
        except Exception as exc:  # noqa: BLE001 - a store that refuses: the caller hears why
            Except.throw_exception("ArchiveUnavailable", f"{archived.name} not registered: {exc}", origin)

    def _maintain(self) -> None:
        """Connect what is not connected, read what pushes no events, report; until stopped.

        An unreachable attribute is tried again after 0.5 s, then twice as long each time up to
        RetryPeriod: in a lab starting up, its server is usually only seconds away.
        """
        while not self._stop.is_set():
            now = time.monotonic()
            if self.store is None:  # not open yet: try again when due, nothing else to do
                if now >= self._store_retry[0]:
                    self._open_store()
                self._wake.wait(max(min(self._store_retry[0] - time.monotonic(), 1.0), 0.05))
                self._wake.clear()
                continue
            for name, archived in list(self.archived.items()):
                if archived.mode is None and now >= self._retry.get(name, (0.0, 0.0))[0]:
                    try:
                        archived.connect()
                        self._retry.pop(name, None)
                        self.store.insert_history_event(archived.conf_id, "start", time.time())
                    except Exception as exc:  # noqa: BLE001 - unreachable device or failing store: retry
                        archived.failed(exc.args[-1].desc if isinstance(exc, tango.DevFailed) else repr(exc))
                        delay = min(self._retry.get(name, (0.0, 0.25))[1] * 2, self.RetryPeriod)
                        self._retry[name] = (now + delay, delay)
                elif archived.mode == "polling":
                    archived.poll()
            self._report()
            pending = [due for name, (due, _) in self._retry.items() if name in self.archived]
            next_retry = min(pending, default=now + self.PollPeriod)
            self._wake.wait(max(min(self.PollPeriod, next_retry - time.monotonic()), 0.05))
            self._wake.clear()

    def _drain(self) -> None:
        """Move received events to the writer, in batches, until the device stops."""
        while not self._stop.wait(DRAIN_PERIOD):  # the pause makes the batches
            for archived in list(self.archived.values()):
                archived.drain()

    @property
    def _store_location(self) -> str:
        """A relative SQLite file is in the lab's run folder, where `tangolab history` looks, whoever
        started the server (Tango's Starter runs it in its log folder)."""
        run_dir = os.environ.get(RUN_DIR_MARK)
        if run_dir and "://" not in self.Store and not os.path.isabs(self.Store):
            return os.path.join(run_dir, self.Store)
        return self.Store

    @property
    def _store_shown(self) -> str:
        """The Store for the status, which anyone may read."""
        return without_password(self._store_location)

    def _report(self) -> None:
        stats = self._stats()
        trend = self._lag_trend(stats.lag)
        failing = [a for a in self.archived.values() if a.error]
        if stats.failing:
            self.set_state(DevState.FAULT)
            self.set_status(
                f"writing to {self._store_shown} fails ({stats.queue_depth} values wait): {stats.last_error}"
            )
        elif (lag := stats.lag) >= self.LagAlarm:
            self.set_state(DevState.ALARM)
            self.set_status(f"falling behind: values reach the archive {lag:.1f} s after their time stamps "
                            f"({stats.queue_depth} wait to be written){trend}; ALARM from "
                            f"{self.LagAlarm:g} s (LagAlarm)")
        elif failing:
            self.set_state(DevState.ALARM)
            self.set_status(f"{len(failing)} of {len(self.archived)} attributes in error, e.g. "
                            f"{failing[0].name}: {failing[0].error}")
        else:
            self.set_state(DevState.ON)
            self.set_status(f"archiving {len(self.archived)} attributes into {self._store_shown}{self._new_archive}")

    def _lag_trend(self, lag: float) -> str:
        """How the lag moved over the last LAG_TREND s, for the status."""
        now = time.monotonic()
        self._lags.append((now, lag))
        while now - self._lags[0][0] > LAG_TREND:
            self._lags.popleft()
        then, old = self._lags[0]
        if now - then < 0.5:
            return ""
        rate = (lag - old) / (now - then)
        return f", {'later' if rate > 0 else 'catching up'} by {abs(rate):.2f} s each second"

    def _store_message(self, when: float, level: str, source: str, text: str, origin: str) -> None:
        if self.store is None:
            Except.throw_exception("ArchiveUnavailable", f"the message was not stored: {self.get_status()}", origin)
        try:
            self.store.insert_messages([(when, level, source, text)])
        except Exception as exc:  # noqa: BLE001 - whatever the database says, the caller must hear it
            Except.throw_exception(
                "ArchiveUnavailable",
                f"the message was not stored: writing to {self._store_shown} fails ({type(exc).__name__}: {exc})",
                origin,
            )
        stamp = datetime.fromtimestamp(when).isoformat(sep=" ", timespec="seconds")
        self._last_message = f"{stamp} {level} {source}: {text}"
        self.push_change_event("lastMessage", self._last_message)

    def _full_name(self, name: str) -> tuple[str, str]:
        """(the name in the archive, the device to read it from) of a name AttributeAdd takes.

        A name without host is this lab's. A name whose host the archive keeps under this lab's
        archive host (the lab on an earlier port) is read from this lab too.
        """
        text = name.strip().lower()
        if text.startswith("tango://"):
            where = text
        elif text.count("/") == 3 and all(text.split("/")) and (tango_host := self._tango_host()):
            where = f"tango://{tango_host}/{text}"
        else:
            Except.throw_exception(
                "BadAttributeName", f"{name!r} is not domain/family/member/attribute (or tango://host:port/...)",
                "Archiver",
            )
        try:
            full = self.store.archived_name(where)
        except ValueError as exc:
            Except.throw_exception("BadAttributeName", str(exc), "Archiver")
        if self.archive_host and full.startswith(f"tango://{self.archive_host}/"):
            where = f"tango://{self._tango_host()}/{full.split('/', 3)[3]}"
        return full, where.rpartition("/")[0]

    def _tango_host(self) -> str | None:
        """host:port of this server's Tango database; None without one (a test context)."""
        try:
            database = tango.Util.instance().get_database()
            return f"{database.get_db_host()}:{database.get_db_port()}".lower()
        except (tango.DevFailed, AttributeError, RuntimeError):
            return None

    def _save_list(self) -> None:
        """Keep the list in the database, so a restarted archiver archives the same attributes:
        this lab's by their short names, so that the list holds wherever the lab runs next."""
        own = f"tango://{self.archive_host}/"
        names = sorted(name.removeprefix(own) if self.archive_host else name for name in self.archived)
        tango.Util.instance().get_database().put_device_property(self.get_name(), {"ArchivedAttributes": names})


def main() -> None:
    # ZeroMQ drops events beyond its queue without a word (1000 by default): let bursts wait instead
    os.environ.setdefault("TANGO_EVENT_BUFFER_HWM", "100000")
    collect_seldom()
    serve(Archiver)


if __name__ == "__main__":
    main()
