"""SQLite, the default store: one file, no server to run, read and written through ADBC.

SQLite has no timestamp or array types: times are REAL epoch seconds (UTC; a double keeps
Tango's microseconds to within 0.25 µs) and spectra are JSON text.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np

from .catalogue import DOMAINS, INVALID, Attribute
from .connection import ArchiveError, one_line
from .store import Store

_WHOLE_RESULT = 1_000_000_000  # rows: more than any query returns
# SQLite's words (sqlite3_errstr) for a file that cannot take a write now, but may later
_SQLITE_UNAVAILABLE = ("database is locked", "database or disk is full", "disk I/O error", "unable to open")


class SQLiteStore(Store):
    """The default store: one file, no server to run.

    WAL mode lets readers (history queries, other processes) work while the archiver writes;
    synchronous=NORMAL keeps the file consistent on a crash but may lose the last transactions on
    a power cut.

    It goes through the ADBC SQLite driver, which binds a batch and reads a result as Arrow
    columns in C: a million points reach numpy in a third of the time Python's sqlite3 takes
    building a tuple per row. That driver carries its own SQLite, and two SQLite libraries must
    never open one file in one process (each drops the other's POSIX locks), so nothing in
    tangolab opens an archive with Python's sqlite3.
    """

    SERIAL = "integer PRIMARY KEY"
    TIME_COLUMN = "REAL"
    TIME_PARAM = "?"
    EPOCH = "{}"
    JSON_COLUMN = "text"
    ARRAY_COLUMN = "text"  # JSON
    TABLE_OPTIONS = " WITHOUT ROWID"  # rows clustered by (att_conf_id, data_time): range scans read in order

    def __init__(self, path: str | Path, create: bool = True, read_only: bool = False) -> None:
        """Open the archive at path. create=False: a missing file is an error, not a new archive.

        read_only opens it without writing a byte (no WAL switch, no schema), for readers: an
        archive on read-only media or of another user reads as it is. A new archive is made
        only in a folder that exists (a typo in a path must not make folders), and `created`
        tells that it was.
        """
        from adbc_driver_sqlite import dbapi

        self.path = self.shown = str(path)
        target = self.path
        if self.path != ":memory:":
            file = Path(self.path)
            self._check_file(file, create and not read_only, read_only)
            self.created = not file.exists() or file.stat().st_size == 0
            if read_only:
                target = f"file:{quote(str(file.resolve()))}?mode=ro"
                if not os.access(file.parent, os.W_OK):  # no -shm can be made: read the file as it is
                    target += "&immutable=1"
        try:
            self._db = dbapi.connect(target, autocommit=True)  # transactions are begun by _tx
        except Exception as error:  # the driver's words for it, on one line
            raise ArchiveError(f"cannot open the archive {self.path}: {one_line(error)}", retry=True) from error
        try:
            self._execute("PRAGMA busy_timeout = 30000")
            if not read_only:
                if not self.created and not self._has_table("att_conf") and self._has_table(None):
                    raise ArchiveError(f"{self.path} is not an archive: a SQLite database without HDB++ tables")
                self._execute("PRAGMA journal_mode = WAL")
                self._execute("PRAGMA synchronous = NORMAL")
            super().__init__(read_only)
        except BaseException as error:
            self._db.close()
            if "file is not a database" in str(error):
                raise ArchiveError(f"{self.path} is not an archive (not a SQLite database)") from error
            if not isinstance(error, ArchiveError) and isinstance(error, Exception) and self.unavailable(error):
                raise ArchiveError(f"cannot open the archive {self.path}: {one_line(error)}", retry=True) from error
            raise

    @staticmethod
    def _check_file(file: Path, create: bool, read_only: bool) -> None:
        """Say what is wrong with an archive's path before SQLite says it less clearly."""
        if file.is_dir():
            raise ArchiveError(f"{file} is a folder, not an archive file: give a file such as {file / 'archive.db'}")
        if not file.exists():
            if not create:
                raise ArchiveError(f"no archive at {file}")
            if not file.parent.is_dir():
                raise ArchiveError(
                    f"no folder {file.parent} for the archive {file.name}: create it, or correct the path", retry=True
                )
            if not os.access(file.parent, os.W_OK | os.X_OK):
                raise ArchiveError(f"no permission to create the archive {file} in {file.parent}", retry=True)
            return
        if not os.access(file, os.R_OK):
            raise ArchiveError(f"no permission to read the archive {file}", retry=True)
        if not read_only and not os.access(file, os.W_OK):
            raise ArchiveError(f"no permission to write the archive {file} (read-only)", retry=True)
        if not read_only and not os.access(file.parent, os.W_OK | os.X_OK):
            raise ArchiveError(
                f"no permission to write in {file.parent}, where SQLite keeps the archive's journal files", retry=True
            )

    def _has_table(self, table: str | None) -> bool:
        """Whether the file has that table (any table, for None)."""
        condition, params = ("AND name = ?", (table,)) if table else ("", ())
        return bool(self._execute(f"SELECT 1 FROM sqlite_master WHERE type = 'table' {condition}", params))

    @contextmanager
    def _cursor(self, whole: bool = True) -> Iterator[Any]:
        """A cursor whose result comes as one batch (whole), or in the driver's batches of 1024 rows.

        The driver guesses a column's type from its first batch: NULLs only make it INT64, and a
        double or a string after them fails ("Type mismatch"). One batch sees every value.
        """
        with self._db.cursor() as cursor:
            if whole:
                cursor.adbc_statement.set_options(**{"adbc.sqlite.query.batch_rows": str(_WHOLE_RESULT)})
            yield cursor

    def _execute(self, sql: str, params: Iterable[Any] = ()) -> list[tuple]:
        with self._cursor() as cursor:
            cursor.execute(sql, tuple(params) or None)
            return cursor.fetchall() if cursor.description else []

    def _executemany(self, sql: str, rows: Iterable[Iterable[Any]]) -> int:
        import pyarrow as pa

        # Handed over as Arrow columns: the driver's own conversion of rows is a Python loop per value.
        columns = [pa.array(column) for column in zip(*rows)]
        if not columns:
            return 0
        with self._db.cursor() as cursor:
            cursor.executemany(sql, pa.RecordBatch.from_arrays(columns, names=[str(i) for i in range(len(columns))]))
            return cursor.rowcount

    @contextmanager
    def _tx(self) -> Iterator[None]:
        self._execute("BEGIN IMMEDIATE")  # take the write lock now, not midway
        try:
            yield
        except BaseException:
            self._execute("ROLLBACK")
            raise
        self._execute("COMMIT")

    def unavailable(self, error: BaseException) -> bool:
        return any(reason in str(error) for reason in _SQLITE_UNAVAILABLE)

    def _encode_array(self, value: list) -> str:
        return json.dumps(value)

    def column_type(self, sql_type: str) -> str:
        # HDB++'s unsigned domains would get SQLite's TEXT affinity ("uchar") or NUMERIC: integers
        return "integer" if sql_type in DOMAINS else sql_type

    def _null_is_nan(self, att: Attribute, quality: int) -> bool:
        # SQLite keeps NaN as NULL; a missing value is INVALID (an error row or an INVALID reading)
        return att.dtype.kind == "f" and quality != INVALID

    def _decode_array(self, value: str) -> list:
        return json.loads(value)

    def _numeric_series(
        self, att: Attribute, start: float, end: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        import pyarrow.compute as pc

        # In batches first, a fifth faster for a million points; as one batch when that fails
        # (over 1024 error rows first)
        for whole in (False, True):
            with self._cursor(whole) as cursor:
                try:
                    cursor.execute(self._select(att, self._between()), (att.conf_id, start, end))
                    times, values, quality = cursor.fetch_arrow_table().columns
                    break
                except OSError as error:
                    if whole or "Type mismatch" not in str(error):
                        raise
        import pyarrow as pa

        missing = values.is_null().to_numpy(zero_copy_only=False)
        if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
            values = pc.cast(values, "int64")  # an archive of an earlier version: uchar columns of text
        if values.null_count == len(values):
            data = np.zeros(len(values), att.dtype)
        else:
            filled = pc.fill_null(values, 0)
            kind = "float64" if att.dtype.kind == "f" else "int64"
            data = pc.cast(filled, kind, safe=False).to_numpy().astype(att.dtype)
        quality = quality.to_numpy().astype(np.int16)
        if att.dtype.kind == "f":
            nan = missing & (quality != INVALID)  # see _null_is_nan
            data[nan], missing = np.nan, missing & ~nan
        return times.to_numpy(), data, missing, quality

    def close(self) -> None:
        self._db.close()
