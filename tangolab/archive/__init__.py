"""The lab's archive: HDB++ tables in SQLite (the default) or PostgreSQL/TimescaleDB.

    store = open_store("var/archive.db")          # or postgresql://user@host:port/db
    conf_id = store.register("tango://host:10000/lab/cryocon/1/temperatureA", "DevDouble")
    store.insert_values([(conf_id, time.time(), 80.1, None, 0, None)])
    times, values, qualities = store.values("lab/cryocon/1/temperatureA")

The tables are HDB++'s (schema.py), so HDB++ tools (pyhdbpp, the HDB++ viewers) read a
PostgreSQL archive written here. An attribute is kept once under its full name, its host in one
spelling (hosts.py). Values come back in their Tango type, as numpy masked arrays masked where
there is no value.

catalogue  HDB++'s types, formats, qualities, events; Attribute, Message, Row
hosts      one spelling per Tango host, full attribute names
schema     the tables, in each back-end's dialect
connection what a back-end gives: dialect, statements, transactions; ArchiveError
registry   attributes, texts and lab hosts registered, and how a name finds them
writing    the write path          reading   the read path
store      Store: both paths       sqlite, postgres   the back-ends
"""

from __future__ import annotations

from pathlib import Path

from .catalogue import INVALID, QUALITIES, TYPES, Attribute, Message, Row, tango_type
from .connection import ArchiveError
from .hosts import canonical_host, canonical_name, canonical_tango_host
from .postgres import PostgresStore, without_password
from .sqlite import SQLiteStore
from .store import Store

__all__ = [
    "INVALID", "QUALITIES", "TYPES", "ArchiveError", "Attribute", "Message", "PostgresStore", "Row",
    "SQLiteStore", "Store", "canonical_host", "canonical_name", "canonical_tango_host", "open_store",
    "tango_type", "without_password",
]


def open_store(url: str | Path, create: bool = True, read_only: bool = False) -> Store:
    """The store at a URL: postgresql://user@host:port/db, sqlite:///path, or a plain file path.

    sqlite:/// is followed by the path as SQLAlchemy has it (sqlite:////abs/archive.db). With
    create=False a missing SQLite file is an error rather than a new, empty archive; read_only
    opens without writing anything (for readers). What cannot be opened raises ArchiveError.
    """
    url = str(url)
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresStore(url, read_only)
    if url.startswith("sqlite:///"):
        return SQLiteStore(url.removeprefix("sqlite:///"), create, read_only)
    if "://" in url:
        raise ArchiveError(f"unknown archive URL {url!r}: give a file path, sqlite:///path or postgresql://...")
    return SQLiteStore(url, create, read_only)
