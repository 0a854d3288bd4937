"""`Archiver`: the lab's history — attribute values and lab messages in HDB++ tables.

Subscribes to the attributes its `ArchivedAttributes` property lists (and those added at run
time), queues every value for one writer thread that stores them in batches, and keeps going
when a device server restarts: the outage is stored as one error row, and values resume by
themselves. It is also a Tango log consumer: a device whose logging target is
`device::lab/archiver/1` has its log records stored as lab messages, as are the messages of the
`Message` command. Each new message is pushed as a change event of `lastMessage`.
"""

from __future__ import annotations

import os
import threading
import time
from datetime import datetime

import tango
from tango import DevState, Except
from tango.server import Device, attribute, command, device_property

from tangolab.archive_store import open_store, without_password

from ..core.server import serve
from .subscription import ArchivedAttribute
from .writer import Writer

LEVELS = ("DEBUG", "INFO", "MESSAGE", "WARNING", "ERROR", "SUCCESS")
DRAIN_PERIOD = 0.02  # seconds between two drains of the event queues
TANGO_LOG_LEVELS = {"FATAL": "ERROR", "ERROR": "ERROR", "WARN": "WARNING", "INFO": "INFO", "DEBUG": "DEBUG"}


class Archiver(Device):
    """Archives attributes into SQLite (default) or PostgreSQL, in the HDB++ schema."""

    Store = device_property(
        dtype=str, default_value="archive.db",
        doc="SQLite file (relative to the server's working folder) or postgresql://user@host:port/db URL",
    )
    ArchivedAttributes = device_property(
        dtype=(str,), default_value=[], doc="Attributes to archive: domain/family/member/attribute, one a line"
    )
    PollPeriod = device_property(
        dtype=float, default_value=1.0, doc="Seconds between reads of attributes that push no events"
    )
    RetryPeriod = device_property(
        dtype=float, default_value=5.0, doc="Seconds between tries to reach an attribute whose device is down"
    )

    def init_device(self) -> None:
        super().init_device()
        self.set_state(DevState.INIT)
        self.archived: dict[str, ArchivedAttribute] = {}
        self._retry: dict[str, tuple[float, float]] = {}  # name: (monotonic time of next try, delay)
        self._last_message = ""
        self._stop = threading.Event()
        self._wake = threading.Event()
        self.set_change_event("lastMessage", True, False)
        try:
            self.store = open_store(self.Store)
        except Exception as exc:  # noqa: BLE001 - any store failure must show, with the store named
            self.set_state(DevState.FAULT)
            self.set_status(f"cannot open the archive {self._store_shown}: {exc}")
            return
        self.writer = Writer(self.store).start()
        for name in self.ArchivedAttributes:
            try:
                full = self._full_name(name)
            except tango.DevFailed as exc:
                self.error_stream(f"ArchivedAttributes: {exc.args[0].desc}; skipped")
                continue
            self.archived[full] = ArchivedAttribute(full, self.writer)
        self._threads = [
            threading.Thread(target=self._maintain, name="archiver connections", daemon=True),
            threading.Thread(target=self._drain, name="archiver events", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def always_executed_hook(self) -> None:
        if not hasattr(self, "writer"):  # the store could not be opened: say so, not AttributeError
            Except.throw_exception("ArchiveUnavailable", self.get_status(), "Archiver")

    def delete_device(self) -> None:
        if hasattr(self, "_threads"):
            self._stop.set()
            self._wake.set()
            for thread in self._threads:
                thread.join(timeout=10)
            for archived in self.archived.values():
                archived.disconnect()
                if archived.conf_id is not None:
                    self.store.insert_history_event(archived.conf_id, "stop", time.time())
            self.writer.stop()
            self.store.close()
        super().delete_device()

    # -- attributes ---------------------------------------------------------------------------

    @attribute(dtype=(str,), max_dim_x=10_000, doc="Full names of the archived attributes")
    def AttributeList(self) -> list[str]:
        return sorted(self.archived)

    @attribute(dtype=(str,), max_dim_x=10_000, doc="Archived attributes in error, each with its error")
    def attributesInError(self) -> list[str]:
        return [f"{name}: {a.error}" for name, a in sorted(self.archived.items()) if a.error]

    @attribute(dtype=int, doc="Values received from events and polled reads since start")
    def eventsReceived(self) -> int:
        return self.writer.stats().received

    @attribute(dtype=int, doc="Rows committed to the archive since start")
    def rowsWritten(self) -> int:
        return self.writer.stats().written

    @attribute(dtype=int, doc="Values waiting to be written")
    def queueDepth(self) -> int:
        return self.writer.stats().queue_depth

    @attribute(dtype=float, unit="s", format="%6.3f", max_warning=1.0,
               doc="Age of the oldest value of the last written batch when it was committed")
    def writeLag(self) -> float:
        return self.writer.stats().lag

    @attribute(dtype=str, doc="The last lab message: time, level, source and text")
    def lastMessage(self) -> str:
        return self._last_message

    # -- commands -----------------------------------------------------------------------------

    @command(dtype_in=str, doc_in="domain/family/member/attribute (or its tango:// name) to archive")
    def AttributeAdd(self, name: str) -> None:
        full = self._full_name(name)
        if full in self.archived:
            Except.throw_exception("AlreadyArchived", f"{full} is already archived", "Archiver.AttributeAdd")
        self.archived[full] = ArchivedAttribute(full, self.writer)
        self._save_list()
        self._wake.set()

    @command(dtype_in=str, doc_in="an archived attribute, as AttributeAdd took it")
    def AttributeRemove(self, name: str) -> None:
        full = self._full_name(name)
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

    # -- internals ----------------------------------------------------------------------------

    def _maintain(self) -> None:
        """Connect what is not connected, read what pushes no events, report; until stopped.

        An unreachable attribute is tried again after 0.5 s, then twice as long each time up to
        RetryPeriod: in a lab starting up, its server is usually only seconds away.
        """
        while not self._stop.is_set():
            now = time.monotonic()
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
    def _store_shown(self) -> str:
        """The Store for the status, which anyone may read."""
        return without_password(self.Store)

    def _report(self) -> None:
        stats = self.writer.stats()
        failing = [a for a in self.archived.values() if a.error]
        if stats.failing:
            self.set_state(DevState.FAULT)
            self.set_status(
                f"writing to {self._store_shown} fails ({stats.queue_depth} values wait): {stats.last_error}"
            )
        elif failing:
            self.set_state(DevState.ALARM)
            self.set_status(f"{len(failing)} of {len(self.archived)} attributes in error, e.g. "
                            f"{failing[0].name}: {failing[0].error}")
        else:
            self.set_state(DevState.ON)
            self.set_status(f"archiving {len(self.archived)} attributes into {self._store_shown}")

    def _store_message(self, when: float, level: str, source: str, text: str, origin: str) -> None:
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

    def _full_name(self, name: str) -> str:
        name = name.strip().lower()
        if name.startswith("tango://"):
            return name
        if name.count("/") != 3:
            Except.throw_exception(
                "BadAttributeName",
                f"{name!r} is not domain/family/member/attribute (or tango://host:port/...)",
                "Archiver",
            )
        database = tango.Util.instance().get_database()
        return f"tango://{database.get_db_host()}:{database.get_db_port()}/{name}".lower()

    def _save_list(self) -> None:
        """Keep the list in the database, so a restarted archiver archives the same attributes."""
        names = sorted(self.archived)
        tango.Util.instance().get_database().put_device_property(self.get_name(), {"ArchivedAttributes": names})


def main() -> None:
    # ZeroMQ drops events beyond its queue without a word (1000 by default): let bursts wait instead
    os.environ.setdefault("TANGO_EVENT_BUFFER_HWM", "100000")
    serve(Archiver)


if __name__ == "__main__":
    main()
