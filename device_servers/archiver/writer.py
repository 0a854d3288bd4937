"""The archiver's writer: one thread between event callbacks and the database.

Tango calls event callbacks on its own threads, and they must return at once; a database commit
costs milliseconds. So callbacks only `put` values on a queue, and one thread takes them off in
batches (up to `batch_size` rows, or what came in `period` seconds) and stores each batch in one
transaction, which is what makes tens of thousands of values a second affordable.

A batch the database cannot take now (its server is down) is held and written again, with
back-off, while new values queue behind it; a batch the database refuses is counted and dropped.

The lag is counted from when each value came into being (the time stamp its source gave it, as
the caller says with `born`), not from when it reached this queue: values that waited in Tango's
queues, or in an intake process, count as late as they are.
"""

from __future__ import annotations

import logging
import threading
import time as _time
from collections import deque
from dataclasses import dataclass
from typing import Any, Self

from tangolab.archive import Row, Store

log = logging.getLogger(__name__)

RETRY_FIRST, RETRY_MAX = 0.5, 10.0  # seconds between attempts at a held batch
LAG_MEMORY = 1.0  # s: the lag of stored values counts this long after their commit, or as long as itself


@dataclass(frozen=True)
class WriterStats:
    """How the writer keeps up: counts of rows, the backlog, and how stale the archive is."""

    received: int  # values put, written or not
    skipped: int  # rows the archive had already (same attribute, same time)
    written: int  # rows handed to the store in batches that committed
    failed: int  # rows of batches the store refused (see last_error)
    dropped: int  # values refused because the queue was full
    queue_depth: int  # rows waiting, a held batch included
    lag: float  # s: how late the archive is, now (the oldest value waiting, or those stored last, for a while)
    stored_lag: float  # s from the birth of the oldest value of the last committed batch to its commit
    last_error: str | None  # the most recent failure, kept after the store recovers
    failing: bool  # whether the last batch failed


class Writer:
    """Batches values from any thread into a store, from one thread of its own.

    Call `stop()` (or leave the `with` block) to write what is still queued.
    """

    def __init__(
        self, store: Store, batch_size: int = 10_000, period: float = 0.1, max_queue: int = 1_000_000
    ) -> None:
        self.store = store
        self.batch_size = batch_size
        self.period = period
        self.max_queue = max_queue
        # (born, rows): one hop per batch of rows; a deque (thread-safe at both ends) shows its oldest
        self._queue: deque[tuple[float, list[Row]]] = deque()
        self._queued = 0  # rows in the queue
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="archive-writer", daemon=True)
        self._count_lock = threading.Lock()
        self._received = self._written = self._skipped = self._failed = self._dropped = 0
        self._held: list[Row] = []  # a batch to write again once the database answers
        self._taken_born: float | None = None  # birth of the oldest value of the batch being written or held
        self._stored_lag = 0.0
        self._stored_at = -LAG_MEMORY  # monotonic time of the last commit
        self._last_error: str | None = None
        self._failing = False

    def start(self) -> Self:
        self._thread.start()
        return self

    def put(
        self,
        conf_id: int,
        time: float,
        value: Any,
        quality: int = 0,
        value_w: Any = None,
        error: str | None = None,
    ) -> None:
        """Queue one value (time in epoch seconds); never blocks. An error text makes an error row."""
        self.put_many([(conf_id, time, value, value_w, quality, error)])

    def put_many(self, rows: list[Row], born: float | None = None) -> None:
        """Queue rows (conf_id, time, value_r, value_w, quality, error) at once; never blocks.

        `born`: epoch time the oldest of them came into being, which the lag counts from (default
        now). One queue hop for a whole drain of events: per-value queueing was a fifth of the
        archiver's time at 30 000 values/s.
        """
        with self._count_lock:
            self._received += len(rows)
            if self._queued + len(rows) > self.max_queue:
                self._dropped += len(rows)
                return
            self._queued += len(rows)
            self._queue.append((_time.time() if born is None else born, rows))

    def stop(self, timeout: float | None = 30.0) -> None:
        """Write everything queued so far, then end the thread."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def stats(self) -> WriterStats:
        held = self._held
        with self._count_lock:
            waiting = [self._taken_born, self._queue[0][0] if self._queue else None]
        oldest = min((t for t in waiting if t is not None), default=None)
        # values stored L s late: the next may be as late, unseen upstream, for as long (a source gone quiet: 0 then)
        recent = self._stored_lag if _time.monotonic() - self._stored_at < max(LAG_MEMORY, self._stored_lag) else 0.0
        return WriterStats(
            received=self._received,
            skipped=self._skipped,
            written=self._written,
            failed=self._failed,
            dropped=self._dropped,
            queue_depth=self._queued + len(held),
            lag=max(recent, 0.0 if oldest is None else _time.time() - oldest),
            stored_lag=self._stored_lag,
            last_error=self._last_error,
            failing=self._failing,
        )

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _take(self) -> list[Row]:
        batch: list[Row] = []
        with self._count_lock:  # the birth of what is taken is known before it leaves the queue
            try:
                while len(batch) < self.batch_size:
                    born, rows = self._queue.popleft()
                    if not batch or born < self._taken_born:
                        self._taken_born = born
                    batch += rows
            except IndexError:
                pass
            self._queued -= len(batch)
        return batch

    def _write(self, batch: list[Row]) -> bool:
        """Store a batch, or count it failed; False when the database is unreachable: the batch is held."""
        try:
            stored = self.store.insert_values(batch)
        except Exception as error:  # noqa: BLE001 - the store's trouble must not end the thread
            self._last_error = f"{type(error).__name__}: {error}"
            if self.store.unavailable(error):
                if not self._held:
                    log.error("archive unreachable, holding %d values: %s", len(batch), self._last_error)
                self._held = batch  # before failing is seen: a held batch always counts in the queue
                self._failing = True
                return False
            self._failed += len(batch)
            self._failing = True
            log.error("archiving %d values failed: %s", len(batch), self._last_error)
        else:
            self._stored_lag = max(0.0, _time.time() - self._taken_born) if self._taken_born else 0.0
            self._stored_at = _time.monotonic()
            self._written += stored
            self._skipped += len(batch) - stored
            self._failing = False  # the store works (again)
        self._held = []
        self._taken_born = None
        return True

    def _run(self) -> None:
        retry = RETRY_FIRST
        while not self._stopping.is_set():
            started = _time.monotonic()
            if (batch := self._held or self._take()) and not self._write(batch):
                self._stopping.wait(retry)
                retry = min(2 * retry, RETRY_MAX)
                continue
            retry = RETRY_FIRST
            if self._queued < self.batch_size:  # no full batch waiting: let one gather
                self._stopping.wait(max(0.0, self.period - (_time.monotonic() - started)))
        # stopping: one more attempt at what is left, given up at once if the database is unreachable
        reachable = True
        while batch := self._held or self._take():
            if not (reachable and self._write(batch)):
                reachable = False
                self._failed += len(batch)
                self._held = []
                self._taken_born = None
        if not reachable:
            log.error("archive unreachable at stop: values not archived: %s", self._last_error)
