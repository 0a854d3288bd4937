"""What a back-end gives the shared SQL: its dialect, one connection, statements and transactions.

The SQL of the write and read paths is written once, with `?` placeholders and the dialect's
pieces below; SQLite and PostgreSQL fill them in (sqlite.py, postgres.py).
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterable
from functools import wraps
from typing import Any, Self

from .catalogue import MAX_ERROR


class ArchiveError(Exception):
    """A store that cannot be opened or read, said in one line a person can act on.

    `retry` tells whether the same store may open later (a server not up yet, a file locked).
    """

    def __init__(self, message: str, retry: bool = False) -> None:
        super().__init__(message)
        self.retry = retry


def one_line(error: BaseException) -> str:
    """A driver's error message on one line, without its "IO:"-style prefixes."""
    text = "; ".join(line.strip() for line in str(error).splitlines() if line.strip())
    return re.sub(r"^(\w+: )?(\[\w+\] )?", "", text)[:MAX_ERROR] or type(error).__name__


def locked(method):
    """One operation at a time on a store's connection: the writer thread and queries share it."""

    @wraps(method)
    def locked_method(self, *args, **kwargs):
        with self._lock:
            self._reconnect_if_lost()
            return method(self, *args, **kwargs)

    return locked_method


class Connection(ABC):
    """A back-end's dialect and connection."""

    SERIAL: str  # an integer key that numbers itself
    TIME_COLUMN: str
    TIME_PARAM: str  # SQL turning an epoch-seconds parameter into a time value
    EPOCH: str  # SQL giving epoch seconds from a time column {}
    JSON_COLUMN: str
    ARRAY_COLUMN: str  # of the element type {}
    TABLE_OPTIONS: str

    #: where the store is, fit to show (no password)
    shown: str
    #: whether the archive was created by this opening (nothing was there)
    created: bool = False

    def column_type(self, sql_type: str) -> str:
        """The column type of a value column, from HDB++'s PostgreSQL type."""
        return sql_type

    @abstractmethod
    def _has_table(self, table: str) -> bool: ...

    @abstractmethod
    def _execute(self, sql: str, params: Iterable[Any] = ()) -> list[tuple]:
        """Run one statement with ? placeholders; returns its rows (none for a statement without)."""

    @abstractmethod
    def _executemany(self, sql: str, rows: Iterable[Iterable[Any]]) -> int:
        """Run one statement for many rows; returns the number of rows changed."""

    @abstractmethod
    def _tx(self) -> Any:
        """A context manager around one transaction."""

    @abstractmethod
    def close(self) -> None: ...

    def unavailable(self, error: BaseException) -> bool:
        """Whether an error says the database cannot be reached now, rather than that the data is wrong."""
        return False

    def _reconnect_if_lost(self) -> None:
        """Open the connection again if the database dropped it (a server restart)."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

