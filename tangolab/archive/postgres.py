"""PostgreSQL, with TimescaleDB hypertables where that extension can be created (psycopg 3).

Times are `timestamp with time zone`, spectra PostgreSQL arrays, the unsigned types HDB++'s
domains; pyhdbpp and the HDB++ viewers read the archive as they read HDB++'s own.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np

from .catalogue import DOMAINS, TYPES, Attribute
from .connection import ArchiveError, one_line
from .schema import data_tables
from .store import Store

CONNECT_TIMEOUT = 10  # seconds: an unreachable PostgreSQL host fails a batch, it does not hang the writer
# SQLSTATEs after which the same batch may well go in later: admin/crash shutdown, cannot connect
# now, disk full, out of memory, too many connections
_PG_UNAVAILABLE = {"57P01", "57P02", "57P03", "53100", "53200", "53300"}
_PG_EPOCH_US = 946_684_800 * 1_000_000  # PostgreSQL counts microseconds from 2000-01-01


def without_password(url: str) -> str:
    """A store URL fit to show: its password, in the user part or the query, replaced by ***."""
    parts = urlsplit(url)
    if "://" not in url or (parts.password is None and "password=" not in parts.query):
        return url
    netloc = parts.netloc
    if parts.password is not None:
        user, _, host = netloc.rpartition("@")
        netloc = f"{user.partition(':')[0]}:***@{host}"
    query = re.sub(r"(^|&)(password=)[^&]*", r"\1\2***", parts.query)
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def _pg_array(data: bytes | None, element: str) -> np.ndarray:
    """The elements of a one-dimensional array without NULLs in PostgreSQL's binary form (array_send):
    a 20-byte header, then each element's length and big-endian value."""
    if data is None:  # array_agg of no rows
        return np.empty(0, element)
    if int.from_bytes(data[:4], "big") != 1:
        raise ValueError("expected a one-dimensional array")
    return np.frombuffer(data, [("size", ">i4"), ("value", element)], offset=20)["value"]


class PostgresStore(Store):
    """PostgreSQL, with TimescaleDB hypertables where that extension can be created.

    Batches go in by COPY into a temporary table, then one INSERT ... ON CONFLICT DO NOTHING;
    numeric series come out as binary arrays straight into numpy. A connection the server
    dropped (a restart) is opened again by the next call.
    """

    SERIAL = "serial PRIMARY KEY"
    TIME_COLUMN = "timestamp with time zone"
    TIME_PARAM = "to_timestamp(?)"
    EPOCH = "date_part('epoch', {})"
    JSON_COLUMN = "json"
    ARRAY_COLUMN = "{}[]"
    TABLE_OPTIONS = ""

    def __init__(self, url: str, read_only: bool = False) -> None:
        import psycopg

        self.url = url
        self.shown = without_password(url)
        try:
            self._db = psycopg.connect(url, autocommit=True, connect_timeout=CONNECT_TIMEOUT)
        except psycopg.Error as error:
            raise ArchiveError(f"cannot reach PostgreSQL at {self.shown}: {one_line(error)}", retry=True) from error
        self._staged: set[str] = set()
        self._closed = False
        self.timescale = False
        try:
            self.created = not read_only and not self._has_table("att_conf")
            super().__init__(read_only)
        except BaseException as error:
            self._db.close()
            if isinstance(error, psycopg.Error):
                raise ArchiveError(f"cannot use PostgreSQL at {self.shown}: {one_line(error)}", retry=True) from error
            raise

    def _has_table(self, table: str) -> bool:
        return bool(self._execute("SELECT to_regclass(?)", (table,))[0][0])

    def unavailable(self, error: BaseException) -> bool:
        if self._closed:
            return False  # closed on purpose: nothing will take the data
        if self._db.broken or self._db.closed:
            return True
        # connection exceptions, shutdowns, and the server short of disk, memory or connections
        state = getattr(error, "sqlstate", None) or ""
        return state.startswith("08") or state in _PG_UNAVAILABLE

    def _reconnect_if_lost(self) -> None:
        import psycopg

        if (self._db.closed or self._db.broken) and not self._closed:
            self._db.close()
            self._db = psycopg.connect(self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT)
            self._staged.clear()  # temporary tables went with the old session

    def _execute(self, sql: str, params: Iterable[Any] = ()) -> list[tuple]:
        with self._db.execute(sql.replace("?", "%s"), tuple(params) or None) as cursor:
            return cursor.fetchall() if cursor.description else []

    def _executemany(self, sql: str, rows: Iterable[Iterable[Any]]) -> int:
        with self._db.cursor() as cursor:
            cursor.executemany(sql.replace("?", "%s"), rows)
            return cursor.rowcount

    @contextmanager
    def _tx(self) -> Iterator[None]:
        try:
            with self._db.transaction():
                yield
        except BaseException:
            self._staged.clear()  # temporary tables created in the transaction are gone
            raise

    def _create_schema(self) -> None:
        import psycopg

        self._execute("SELECT pg_advisory_lock(7263)")  # two archivers starting together
        try:
            try:
                self._execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
                self.timescale = True
            except psycopg.Error:
                self.timescale = False  # not installed, or not in shared_preload_libraries
            for domain, (digits, top) in DOMAINS.items():
                self._execute(
                    f"DO $$ BEGIN CREATE DOMAIN {domain} AS numeric({digits}) CHECK (VALUE >= 0 AND VALUE <= {top});"
                    " EXCEPTION WHEN duplicate_object THEN NULL; END $$"
                )
            super()._create_schema()
            if self.timescale:
                for table, column in [("att_parameter", "recv_time"), *((t, "data_time") for t in data_tables())]:
                    self._execute(
                        "SELECT create_hypertable(?, ?, chunk_time_interval => interval '28 days',"
                        " if_not_exists => TRUE, create_default_indexes => FALSE, migrate_data => TRUE)",
                        (table, column),
                    )
        finally:
            self._execute("SELECT pg_advisory_unlock(7263)")

    def _insert_rows(self, att: Attribute, rows: list[tuple]) -> int:
        stage = f"stage_{att.table}"
        if stage not in self._staged:
            self._execute(
                f"CREATE TEMPORARY TABLE IF NOT EXISTS {stage} (LIKE {att.table}) ON COMMIT DELETE ROWS;"
                f" ALTER TABLE {stage} ALTER COLUMN data_time TYPE double precision USING 0"
            )
            self._staged.add(stage)
        with self._db.cursor() as cursor:
            with cursor.copy(f"COPY {stage} ({', '.join(att.columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            cursor.execute(
                f"INSERT INTO {att.table} ({', '.join(att.columns)})"
                f" SELECT {', '.join(f'to_timestamp({c})' if c == 'data_time' else c for c in att.columns)}"
                f" FROM {stage} ON CONFLICT DO NOTHING"
            )
            return cursor.rowcount

    def _value_sql(self, att: Attribute) -> str:
        # psycopg knows no arrays of HDB++'s unsigned domains (ushort[], ...): read them as numeric[]
        unsigned_array = att.is_array and TYPES[att.data_type][1] in DOMAINS
        return "CAST(value_r AS numeric[])" if unsigned_array else "value_r"

    def _numeric_series(
        self, att: Attribute, start: float, end: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        if att.data_type == "DevULong64":  # beyond bigint: row by row, exact
            return self._series_from_rows(att, start, end)
        # Four arrays aggregated by the server, in binary, cost a fraction of a million rows read
        # one by one. Aggregates take a sorted subquery's order in practice, not by the standard:
        # checked below.
        if att.dtype.kind == "f":
            value, element = "CAST(value_r AS double precision)", ">f8"
        else:  # integers (the unsigned ones numeric domains) and booleans, through integer
            value = "CAST(value_r AS integer)" if att.data_type == "DevBoolean" else "value_r"
            value, element = f"CAST({value} AS bigint)", ">i8"
        query = (
            "SELECT array_send(array_agg(data_time)),"
            f" array_send(array_agg(COALESCE({value}, 0))),"
            " array_send(array_agg(value_r IS NULL)),"
            " array_send(array_agg(CAST(COALESCE(quality, 0) AS smallint)))"
            f" FROM (SELECT * FROM {att.table} WHERE att_conf_id = %s"
            " AND data_time BETWEEN to_timestamp(%s) AND to_timestamp(%s) ORDER BY data_time) AS rows"
        )
        with self._db.cursor(binary=True) as cursor:
            times, values, missing, quality = cursor.execute(query, (att.conf_id, start, end)).fetchone()
        times = (_pg_array(times, ">i8") + _PG_EPOCH_US) / 1e6
        values = _pg_array(values, element).astype(att.dtype)
        missing = _pg_array(missing, "?").astype(bool)
        quality = _pg_array(quality, ">i2").astype(np.int16)
        if np.any(np.diff(times) < 0):
            order = np.argsort(times, kind="stable")
            times, values, missing, quality = times[order], values[order], missing[order], quality[order]
        return times, values, missing, quality

    def close(self) -> None:
        self._closed = True
        self._db.close()
