"""How events become archive rows, in the archiver's own process or spread over intake processes.

Taking events costs the archiver most of its CPU (pytango turns each into Python objects), and
one Python process cannot use more than one core. With `ProcessIntake` above 1 the archiver
starts that many intake processes (`python -m device_servers.archiver.intake`), gives each its
share of the attributes (the one with the fewest gets the next), and each subscribes to its
share through its own `tangolab.events.Intake` (restarts, late joiners, losses handled there as
anywhere) and sends back the rows of each take, in order, errors among them. The archiver keeps
the one writer of its store and everything else: registration, outages (an error row once per
outage), polling, the figures. An intake process that ends is an outage of its attributes from
that moment; they are subscribed again, in a new process.
"""

from __future__ import annotations

import gc
import os
import pickle
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

import tango

from tangolab.archive import INVALID
from tangolab.archive.writing import plain
from tangolab.events import Intake, event_time, is_loss
from tangolab.processes import NAME_MARK, RUN_DIR_MARK

EVENT_KINDS = (tango.EventType.ARCHIVE_EVENT, tango.EventType.CHANGE_EVENT)  # in the order they are asked for
INVALID_QUALITY = tango.AttrQuality.ATTR_INVALID
DRAIN_PERIOD = 0.02  # seconds between two takes of the event queues
ANSWER_TIMEOUT = 60.0  # s an intake process may take to start and subscribe (a device answering slowly)
STOP_TIMEOUT = 5.0  # s an intake process has to end once told, before it is killed


def collect_seldom() -> None:
    """Events and rows are many short-lived objects without cycles, and a backlog holds a million
    of them: Python's default cyclic collection (every 700 allocations, the old ones scanned
    again and again) took a fifth of the time spent taking events at 80,000 values/s."""
    gc.freeze()  # what start-up made is never scanned
    gc.set_threshold(50_000, 20, 100)


def archive_rows(events: list, conf_id: int, is_state: bool, writable: bool) -> tuple[list[tuple], bool]:
    """One take of an attribute's events as archive rows, in order: a reading's row, an error
    event's error row (its text, its time); reports of lost events are left out (the feed counts
    them). Returns the rows and whether any is an error row.

    The archiver's hot path: a pytango property costs a microsecond, so each is read once.
    """
    rows = [archive_row(event.attr_value, conf_id, is_state, writable) for event in events if not event.err]
    if len(rows) == len(events):
        return rows, False
    rows = [
        (conf_id, event_time(event), None, None, INVALID, event.errors[0].desc) if event.err
        else archive_row(event.attr_value, conf_id, is_state, writable)
        for event in events if not is_loss(event)
    ]
    return rows, any(row[5] is not None for row in rows)


def archive_row(reading: tango.DeviceAttribute, conf_id: int, is_state: bool, writable: bool) -> tuple:
    """The archive row of one reading."""
    quality = reading.quality
    stamp = reading.time
    if quality is INVALID_QUALITY:
        value = None
    elif is_state:
        value = int(reading.value)  # HDB++ keeps states as their numbers
    else:
        value = reading.value
    return (conf_id, stamp.tv_sec + stamp.tv_usec * 1e-6, value, reading.w_value if writable else None,
            int(quality), None)


# what an archived attribute does with rows from an intake process: (rows, any error row, when its
# subscription began, losses so far)
Accept = Callable[[list[tuple], bool, float, int], None]
Ended = Callable[[str], None]  # its intake process ended, saying why


class ProcessIntake:
    """The archiver's side: intake processes, each with its share of the attributes."""

    def __init__(self, count: int, queue_size: int) -> None:
        self.queue_size = queue_size
        self._processes = [_IntakeProcess(self, number) for number in range(1, count + 1)]

    def add(self, conf_id: int, name: str, is_state: bool, writable: bool, accept: Accept, ended: Ended
            ) -> tango.EventType:
        """Subscribe an attribute in the intake process with the smallest share; the kind of events
        subscribed, or DevFailed as `Intake.add` raises it (the device away, no events offered)."""
        process = min(self._processes, key=lambda process: len(process.shares))
        return process.add(conf_id, name, is_state, writable, accept, ended)

    def remove(self, conf_id: int) -> None:
        for process in self._processes:
            process.remove(conf_id)

    def close(self) -> None:
        for process in self._processes:
            process.tell_to_end()
        for process in self._processes:
            process.wait()


class _IntakeProcess:
    """One intake process and the thread that receives its rows; started again when needed."""

    def __init__(self, owner: ProcessIntake, number: int) -> None:
        self.owner, self.number = owner, number
        self.shares: dict[int, tuple[Accept, Ended]] = {}  # conf_id: what to do with its rows, its end
        self._answers: dict[int, tuple] = {}
        self._answered = threading.Condition()
        self._sending = threading.Lock()
        self._popen: subprocess.Popen | None = None
        self._connection: Connection | None = None
        self._socket: socket.socket | None = None  # the connection's, to shut down
        self._gone = False  # the process ended (its attributes were told)
        self._closing = False

    def add(self, conf_id: int, name: str, is_state: bool, writable: bool, accept: Accept, ended: Ended
            ) -> tango.EventType:
        with self._answered:
            if self._popen is not None and self._popen.poll() is not None:
                self._answered.wait_for(lambda: self._gone, ANSWER_TIMEOUT)  # its attributes told first
            if self._popen is None or self._gone:
                self._start()
            self._answers.pop(conf_id, None)
            self.shares[conf_id] = (accept, ended)
        self._send(("add", conf_id, name, is_state, writable))
        with self._answered:
            if not self._answered.wait_for(lambda: conf_id in self._answers or self._gone, ANSWER_TIMEOUT) \
                    or self._gone:
                self.shares.pop(conf_id, None)
                tango.Except.throw_exception(
                    "IntakeProcessSilent", f"intake process {self.number} ended or did not answer within "
                    f"{ANSWER_TIMEOUT:g} s", "Archiver intake")
            kind, errors = self._answers.pop(conf_id)
        if kind is None:
            self.shares.pop(conf_id, None)
            raise tango.DevFailed(*(_dev_error(reason, desc) for reason, desc in errors))
        return EVENT_KINDS[kind]

    def remove(self, conf_id: int) -> None:
        if self.shares.pop(conf_id, None) is not None:
            self._send(("remove", conf_id))

    def tell_to_end(self) -> None:
        """The end of its connection tells the process to end (and wakes the thread receiving)."""
        self._closing = True
        if self._socket is not None:
            try:
                self._socket.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # closed: the process had ended

    def wait(self) -> None:
        """Until the process has ended; killed if it lingers."""
        if self._popen is not None:
            try:
                self._popen.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self._popen.kill()
                self._popen.wait()

    def _start(self) -> None:
        """A new process (the old one, if any, has ended); not a lab program of its own: no lab
        marks, and it ends when its connection to the archiver does."""
        ours, theirs = socket.socketpair()
        environment = {key: value for key, value in os.environ.items() if key not in (RUN_DIR_MARK, NAME_MARK)}
        self._popen = subprocess.Popen(
            [sys.executable, "-m", __name__, str(theirs.fileno()), str(self.owner.queue_size)],
            pass_fds=(theirs.fileno(),), env=environment,
        )
        theirs.close()
        self._gone = False
        self._socket, self._connection = ours, Connection(os.dup(ours.fileno()))
        threading.Thread(target=self._receive, args=(ours, self._connection), name=f"intake process {self.number}",
                         daemon=True).start()

    def _send(self, message: tuple) -> None:
        with self._sending:
            try:
                self._connection.send(message)
            except (OSError, AttributeError):
                pass  # it ended: the receiving thread says so to every attribute of its share

    def _receive(self, ours: socket.socket, connection: Connection) -> None:
        """Until the process ends: its rows to their attributes, its answers to `add`."""
        try:
            while True:
                message = connection.recv()
                if message[0] == "rows":
                    for conf_id, rows, errors, since, losses in message[1]:
                        share = self.shares.get(conf_id)
                        if share is not None:
                            share[0](rows, errors, since, losses)
                else:  # ("added", conf_id, kind or None, errors)
                    with self._answered:
                        self._answers[message[1]] = message[2:]
                        self._answered.notify_all()
        except (EOFError, OSError):
            pass
        finally:
            connection.close()
            ours.close()
        if self._closing:
            return
        self.wait()  # ended, or made to
        code = self._popen.returncode
        with self._answered:
            ended, self.shares = list(self.shares.values()), {}
            self._gone = True
            self._answered.notify_all()
        for _, end in ended:
            end(f"its intake process {self.number} ended (exit status {code}) at "
                f"{time.strftime('%H:%M:%S')}; subscribing again")


def _plain(row: tuple) -> tuple:
    conf_id, t, value_r, value_w, quality, error = row
    return (conf_id, t, plain(value_r), plain(value_w), quality, error)


def _dev_error(reason: str, desc: str) -> tango.DevError:
    error = tango.DevError()
    error.reason, error.desc, error.origin, error.severity = reason, desc, "Archiver intake", tango.ErrSeverity.ERR
    return error


def serve(connection: Connection, queue_size: int) -> None:
    """An intake process: subscribe what the archiver asks, send the rows of each take, until the
    archiver closes the connection (or ends)."""
    intake = Intake(queue_size=queue_size)
    shares: dict[int, tuple[Any, bool, bool]] = {}  # conf_id: (feed, is_state, writable)
    sending = threading.Lock()
    ended = threading.Event()

    def send(message: tuple) -> None:
        with sending:
            connection.send(message)

    def answer() -> None:
        try:
            while True:
                message = connection.recv()
                if message[0] == "add":
                    _, conf_id, name, is_state, writable = message
                    try:
                        feed = intake.add(name, EVENT_KINDS)
                    except tango.DevFailed as exc:
                        send(("added", conf_id, None, [(error.reason, error.desc) for error in exc.args]))
                    else:
                        shares[conf_id] = (feed, is_state, writable)
                        send(("added", conf_id, EVENT_KINDS.index(feed.kind), None))
                elif (share := shares.pop(message[1], None)) is not None:  # ("remove", conf_id)
                    intake.remove(share[0])
        except (EOFError, OSError):
            ended.set()

    threading.Thread(target=answer, name="archiver requests", daemon=True).start()
    try:
        while not ended.wait(DRAIN_PERIOD):
            taken = []
            for conf_id, (feed, is_state, writable) in list(shares.items()):
                if events := feed.take():
                    rows, errors = archive_rows(events, conf_id, is_state, writable)
                    taken.append((conf_id, rows, errors, feed.since, feed.losses))
            if taken:
                try:
                    send(("rows", taken))
                except (pickle.PicklingError, TypeError, AttributeError):  # a value of a type of pytango's own
                    send(("rows", [(conf_id, [_plain(row) for row in rows], *rest) for conf_id, rows, *rest in taken]))
    except (EOFError, OSError):
        pass  # the archiver went away
    os._exit(0)  # at once: cppTango's exit handlers can hang with subscriptions left


if __name__ == "__main__":
    os.environ.setdefault("TANGO_EVENT_BUFFER_HWM", "100000")
    collect_seldom()
    serve(Connection(int(sys.argv[1])), int(sys.argv[2]))
