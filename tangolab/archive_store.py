"""Archive storage: HDB++ tables in SQLite (the default) or PostgreSQL/TimescaleDB.

The tables and columns are those of HDB++'s TimescaleDB schema: `att_conf` with its lookup tables
(`att_conf_type`, `att_conf_format`, `att_conf_write`), one data table per format and type
(`att_scalar_devdouble`, `att_array_devlong`, ...), `att_error_desc`, `att_parameter`,
`att_history` and `att_history_event`. So HDB++ tools (pyhdbpp, the HDB++ viewers) read a
PostgreSQL archive written here. `lab_message` is tangolab's own table.

SQLite has no timestamp or array types: there, times are REAL epoch seconds (UTC; a double keeps
Tango's microseconds to within 0.25 µs) and spectra are JSON text. Times cross this API as epoch
seconds with both stores.

Names: an attribute is kept once, as `tango://<host>:<port>/domain/family/member/attribute`
with the host in one canonical spelling (`canonical_host`: this machine's name for localhost,
127.0.0.1 and its own addresses, else the fully qualified name), so any alias of the host finds
it. The table `lab_tango_host` (tangolab's own) maps each TANGO_HOST a lab archived from to the
host:port its attributes are kept under: a lab restarted on another port continues its history.

Values come back in their Tango type: numbers in their own numpy dtype, booleans as bool,
states as `DevState`, enums as their labels, as numpy masked arrays masked where there is no
value (an error row, an INVALID reading): a real NaN stays a value.
"""

from __future__ import annotations

import functools
import json
import math
import os
import re
import socket
import threading
import time as _time
from abc import ABC, abstractmethod
from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from functools import wraps
from pathlib import Path
from typing import Any, NamedTuple, Self
from urllib.parse import quote, urlsplit, urlunsplit

import numpy as np

# Tango data type: (CmdArgType number, PostgreSQL column type as in HDB++, numpy dtype of a value).
# In HDB++'s order, so att_conf_type ids match an HDB++ database's (but DEV_ENUM's: no DEV_ENCODED here).
TYPES = {
    "DevBoolean": (1, "boolean", "bool"),
    "DevShort": (2, "smallint", "int16"),
    "DevLong": (3, "integer", "int32"),
    "DevFloat": (4, "real", "float32"),
    "DevDouble": (5, "double precision", "float64"),
    "DevUShort": (6, "ushort", "uint16"),
    "DevULong": (7, "ulong", "uint32"),
    "DevString": (8, "text", "object"),
    "DevState": (19, "integer", "int32"),
    "DevUChar": (22, "uchar", "uint8"),
    "DevLong64": (23, "bigint", "int64"),
    "DevULong64": (24, "ulong64", "uint64"),
    "DevEnum": (29, "smallint", "int16"),
}
FORMATS = ("SCALAR", "SPECTRUM", "IMAGE")
WRITE_TYPES = ("READ", "READ_WITH_WRITE", "WRITE", "READ_WRITE")
QUALITIES = ("VALID", "INVALID", "ALARM", "CHANGING", "WARNING")
INVALID = 1
MAX_ERROR = 1000  # characters of an error text kept: PostgreSQL's unique index takes ~2700 bytes at most
EVENTS = ("add", "remove", "start", "stop", "pause", "crash", "insert_param", "update_ttl")
PARAMETERS = (
    "label",
    "unit",
    "standard_unit",
    "display_unit",
    "format",
    "archive_rel_change",
    "archive_abs_change",
    "archive_period",
    "description",
)

# (att_conf_id, time, value_r, value_w, quality, error text or None)
Row = tuple[int, float, Any, Any, int, "str | None"]


class Attribute(NamedTuple):
    """An archived attribute, as registered in att_conf."""

    conf_id: int
    name: str
    data_type: str
    data_format: str
    write: str
    table: str

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(TYPES[self.data_type][2])

    @property
    def is_array(self) -> bool:
        return self.data_format != "SCALAR"

    @property
    def columns(self) -> tuple[str, ...]:
        """The data columns written for this attribute, in the order of its rows."""
        return _DATA_COLUMNS + (_LABEL_COLUMNS if self.data_type == "DevEnum" else ())


class Message(NamedTuple):
    """A lab message: what happened, told by whom, how serious."""

    time: float
    level: str
    source: str
    text: str


def tango_type(data_type: str | int) -> str:
    """The Tango type name ("DevDouble") of a name in any spelling or a CmdArgType."""
    if isinstance(data_type, str):
        key = data_type.lower().replace("_", "").removeprefix("dev")
        found = [name for name in TYPES if name[3:].lower() == key]
    else:
        found = [name for name, (number, _, _) in TYPES.items() if number == int(data_type)]
    if not found:
        raise ValueError(f"cannot archive Tango type {data_type!r}: archived types are {', '.join(TYPES)}")
    return found[0]


def _named(value: str | int, names: tuple[str, ...]) -> str:
    """The name of an enumerated value given by name or by number (a Tango enum)."""
    name = value.upper() if isinstance(value, str) else names[int(value)]
    if name not in names:
        raise ValueError(f"{value!r} is none of {', '.join(names)}")
    return name


def _hdb_type(name: str) -> str:
    return "DEV_" + name[3:].upper()


def _split(name: str) -> list[str]:
    """cs_name (the Tango host), domain, family, member and name of tango://host:port/d/f/m/attr."""
    parts = name.removeprefix("tango://").split("/")
    if len(parts) == 4:
        parts.insert(0, "")
    if len(parts) != 5 or not all(parts[1:]):
        raise ValueError(
            f"{name!r} is not an attribute name like tango://host:port/lab/cryocon/1/temperatureA"
        )
    return parts


class ArchiveError(Exception):
    """A store that cannot be opened or read, said in one line a person can act on.

    `retry` tells whether the same store may open later (a server not up yet, a file locked).
    """

    def __init__(self, message: str, retry: bool = False) -> None:
        super().__init__(message)
        self.retry = retry


def _local_addresses() -> set[str]:
    names = {"localhost", "localhost.localdomain", "::1", "0.0.0.0", socket.gethostname().lower()}
    names.add(socket.getfqdn().lower())
    try:
        names.update(socket.gethostbyname_ex(socket.gethostname())[2])
    except OSError:
        pass
    return names


@functools.cache
def _this_host() -> str:
    """This machine's name as other machines know it: its FQDN, else its host name."""
    fqdn = socket.getfqdn().lower()
    return fqdn if "." in fqdn and not fqdn.startswith("localhost") else socket.gethostname().lower()


@functools.cache
def canonical_host(host: str) -> str:
    """One spelling per host: this machine's name for its aliases, else the fully qualified name."""
    host = host.strip().lower().strip("[]")
    if host.startswith("127.") or host in _local_addresses():
        return _this_host()
    try:
        fqdn = socket.getfqdn(host).lower()
    except (OSError, UnicodeError):
        return host
    if fqdn.startswith("127.") or fqdn in _local_addresses():
        return _this_host()
    return fqdn if "." in fqdn else host


def canonical_tango_host(tango_host: str) -> str:
    """host:port of a TANGO_HOST (the first of a list), the host canonical."""
    host, _, port = tango_host.split(",")[0].strip().rpartition(":")
    return f"{canonical_host(host)}:{port}" if host else tango_host.lower()


def canonical_name(name: str) -> str:
    """An attribute's full name with its host canonical; a short name stays short."""
    cs_name, *rest = _split(name.strip().lower())
    path = "/".join(rest)
    return f"tango://{canonical_tango_host(cs_name)}/{path}" if cs_name else path


def _plain(value: Any) -> Any:
    """A value the database drivers take: numpy data and Tango enums become Python numbers and lists."""
    if value is None or type(value) in (float, int, str, bool):
        return value
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (float, str)):
        return value
    return int(value)


def _span(start: float | None, end: float | None) -> tuple[float, float]:
    """A time range whose missing ends are open."""
    return -math.inf if start is None else float(start), math.inf if end is None else float(end)


def _state_names() -> np.ndarray:
    """DevState members indexed by their numbers."""
    from tango import DevState

    return np.array([DevState.values[i] for i in range(len(DevState.values))], object)


def _locked(method):
    """One operation at a time on a store's connection: the writer thread and queries share it."""

    @wraps(method)
    def locked(self, *args, **kwargs):
        with self._lock:
            self._reconnect_if_lost()
            return method(self, *args, **kwargs)

    return locked


_DOMAINS = {"uchar": (3, 255), "ushort": (5, 65535), "ulong": (10, 2**32 - 1), "ulong64": (20, 2**64 - 1)}
_DATA_COLUMNS = ("att_conf_id", "data_time", "value_r", "value_w", "quality", "att_error_desc_id")
_LABEL_COLUMNS = ("value_r_label", "value_w_label")  # DevEnum tables: the labels of the values, as HDB++
_TEXT_COLUMNS = {"att_error_desc": "error_desc", "att_history_event": "event"}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS att_conf_type (
    att_conf_type_id {serial}, type text NOT NULL UNIQUE, type_num smallint NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS att_conf_format (
    att_conf_format_id {serial}, format text NOT NULL UNIQUE, format_num smallint NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS att_conf_write (
    att_conf_write_id {serial}, write text NOT NULL UNIQUE, write_num smallint NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS att_conf (
    att_conf_id {serial},
    att_name text NOT NULL UNIQUE,
    att_conf_type_id smallint NOT NULL REFERENCES att_conf_type (att_conf_type_id),
    att_conf_format_id smallint NOT NULL REFERENCES att_conf_format (att_conf_format_id),
    att_conf_write_id smallint NOT NULL REFERENCES att_conf_write (att_conf_write_id),
    table_name text NOT NULL,
    cs_name text NOT NULL DEFAULT '',
    domain text NOT NULL DEFAULT '',
    family text NOT NULL DEFAULT '',
    member text NOT NULL DEFAULT '',
    name text NOT NULL DEFAULT '',
    ttl integer,
    hide boolean DEFAULT false);
CREATE TABLE IF NOT EXISTS att_history_event (att_history_event_id {serial}, event text NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS att_history (
    att_conf_id integer NOT NULL REFERENCES att_conf (att_conf_id),
    att_history_event_id integer NOT NULL REFERENCES att_history_event (att_history_event_id),
    event_time {time},
    details {json},
    PRIMARY KEY (att_conf_id, event_time));
CREATE TABLE IF NOT EXISTS att_parameter (
    att_conf_id integer NOT NULL REFERENCES att_conf (att_conf_id),
    recv_time {time} NOT NULL,
    {parameters},
    details {json});
CREATE INDEX IF NOT EXISTS att_parameter_att_conf_id_idx ON att_parameter (att_conf_id, recv_time);
CREATE TABLE IF NOT EXISTS att_error_desc (att_error_desc_id {serial}, error_desc text NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS lab_message (
    message_id {serial},
    data_time {time} NOT NULL,
    level text NOT NULL,
    source text NOT NULL,
    text text NOT NULL);
CREATE INDEX IF NOT EXISTS lab_message_data_time_idx ON lab_message (data_time);
CREATE INDEX IF NOT EXISTS lab_message_source_idx ON lab_message (source, data_time);
CREATE TABLE IF NOT EXISTS lab_tango_host (
    tango_host text PRIMARY KEY,
    archived_as text NOT NULL,
    since {time} NOT NULL)
"""

# HDB++'s data tables, less its foreign keys: checking them on every row halves PostgreSQL's
# insert rate, and the ids come from att_conf and att_error_desc rows written first.
_DATA_TABLE = """
CREATE TABLE IF NOT EXISTS {table} (
    att_conf_id integer NOT NULL,
    data_time {time} NOT NULL,{labels}
    value_r {value},
    value_w {value},
    quality smallint,
    att_error_desc_id integer,
    details {json},
    PRIMARY KEY (att_conf_id, data_time)){table_options}
"""


class Store(ABC):
    """An archive: attributes registered once, then their values, errors and history; lab messages.

    The SQL is shared; a subclass gives its dialect (the class attributes below) and its
    connection. Every public method is thread-safe.
    """

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

    def __init__(self, read_only: bool = False) -> None:
        self.read_only = read_only
        self._lock = threading.RLock()
        self._attributes: dict[int, Attribute] = {}
        self._by_name: dict[str, Attribute] = {}  # by canonical name
        self._ids: dict[tuple[str, str], int] = {}
        self._enum_labels: dict[int, list[str]] = {}
        if read_only:
            self._check_is_archive()
        else:
            self._create_schema()
        self._load_attributes()

    def _check_is_archive(self) -> None:
        if not self._has_table("att_conf"):
            raise ArchiveError(f"{self.shown} is not an archive: it has no HDB++ tables (att_conf)")

    @abstractmethod
    def _has_table(self, table: str) -> bool: ...

    # -- dialect and connection, given by subclasses --------------------------------------------

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

    def _encode_array(self, value: list) -> Any:
        return value

    def _column_type(self, sql_type: str) -> str:
        """The column type of a value column, from HDB++'s PostgreSQL type."""
        return sql_type

    def _null_is_nan(self, att: Attribute, quality: int) -> bool:
        """Whether a NULL value read back stands for a NaN the store could not keep."""
        return False

    def _decode_array(self, value: Any) -> list:
        return value

    def _insert_rows(self, att: Attribute, rows: list[tuple]) -> int:
        """Insert rows of att's table; a value already archived at the same time is kept."""
        values = ", ".join(self.TIME_PARAM if column == "data_time" else "?" for column in att.columns)
        return self._executemany(
            f"INSERT INTO {att.table} ({', '.join(att.columns)}) VALUES ({values}) ON CONFLICT DO NOTHING", rows
        )

    def _value_sql(self, att: Attribute) -> str:
        return "value_r"

    @abstractmethod
    def _numeric_series(
        self, att: Attribute, start: float, end: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(times, values in att.dtype, missing, qualities) of a scalar number or boolean attribute."""

    # -- schema and caches ------------------------------------------------------------------------

    def _schema(self) -> list[str]:
        columns = {"serial": self.SERIAL, "time": self.TIME_COLUMN, "json": self.JSON_COLUMN}
        parameters = ",\n    ".join(f"{p} text NOT NULL DEFAULT ''" for p in PARAMETERS)
        statements = _SCHEMA.format(parameters=parameters, **columns).split(";\n")
        for name, (_, sql_type, _) in TYPES.items():
            for shape, column in (("scalar", "{}"), ("array", self.ARRAY_COLUMN)):
                labels = f"\n    value_r_label {column.format('text')},\n    value_w_label {column.format('text')},"
                statements.append(
                    _DATA_TABLE.format(
                        table=f"att_{shape}_{name.lower()}",
                        value=column.format(self._column_type(sql_type)),
                        labels=labels if name == "DevEnum" else "",
                        table_options=self.TABLE_OPTIONS,
                        **columns,
                    )
                )
        return statements

    def _create_schema(self) -> None:
        with self._transaction():
            for statement in self._schema():
                self._execute(statement)
            for table, column, rows in (
                ("att_conf_type", "type", [(_hdb_type(n), number) for n, (number, _, _) in TYPES.items()]),
                ("att_conf_format", "format", [(f, i) for i, f in enumerate(FORMATS)]),
                ("att_conf_write", "write", [(w, i) for i, w in enumerate(WRITE_TYPES)]),
            ):
                self._executemany(
                    f"INSERT INTO {table} ({column}, {column}_num) VALUES (?, ?) ON CONFLICT DO NOTHING", rows
                )

    def _load_attributes(self) -> None:
        """Read att_conf again: another process may have registered attributes."""
        tango_names = {_hdb_type(name): name for name in TYPES}
        rows = self._execute(
            "SELECT att_conf_id, att_name, type, format, write, table_name FROM att_conf"
            " JOIN att_conf_type USING (att_conf_type_id) JOIN att_conf_format USING (att_conf_format_id)"
            " JOIN att_conf_write USING (att_conf_write_id)"
        )
        attributes = [
            Attribute(conf_id, name, tango_names[data_type], data_format, write, table)
            for conf_id, name, data_type, data_format, write, table in rows
            if data_type in tango_names
        ]
        self._attributes = {att.conf_id: att for att in attributes}
        self._by_name = {}
        for att in sorted(attributes, key=lambda att: att.conf_id):  # the first registered wins
            self._by_name.setdefault(canonical_name(att.name), att)
        self._host_map = None

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        try:
            with self._tx():
                yield
        except BaseException:
            self._ids.clear()  # ids inserted in a rolled-back transaction do not exist
            raise

    def _text_id(self, table: str, text: str) -> int:
        """The id of an error description or a history event, added on first use."""
        if (key := (table, text)) not in self._ids:
            column = _TEXT_COLUMNS[table]
            self._execute(f"INSERT INTO {table} ({column}) VALUES (?) ON CONFLICT DO NOTHING", (text,))
            ((self._ids[key],),) = self._execute(f"SELECT {table}_id FROM {table} WHERE {column} = ?", (text,))
        return self._ids[key]

    def _attribute(self, key: int | str) -> Attribute:
        """An attribute by conf id, or by name with any alias of its host, or without host.

        A name without host means the lab's: the attributes archived from $TANGO_HOST, else
        from the TANGO_HOST that archived last, when more than one host has the name.
        """
        for reload in (False, True):
            if reload:
                self._load_attributes()
            if isinstance(key, int):
                if key in self._attributes:
                    return self._attributes[key]
                continue
            name = canonical_name(key)
            if not name.startswith("tango://"):
                found = [att for full, att in self._by_name.items() if full.endswith("/" + name)]
                if len(found) > 1:
                    found = [att for att in found if att.name.startswith(f"tango://{self._lab_host()}/")] or found
                if len(found) > 1:
                    raise ValueError(f"{key!r} is ambiguous: {', '.join(att.name for att in found)}")
                if found:
                    return found[0]
                continue
            if name in self._by_name:
                return self._by_name[name]
            host, path = name.removeprefix("tango://").split("/", 1)
            archived_as = self._hosts().get(host)
            if archived_as and (att := self._by_name.get(f"tango://{archived_as}/{path}")):
                return att
        raise KeyError(f"{key!r} is not archived")

    def _hosts(self) -> dict[str, str]:
        """Each TANGO_HOST a lab archived from: the host:port its attributes are kept under."""
        if not hasattr(self, "_host_map") or self._host_map is None:
            rows = self._execute(f"SELECT tango_host, archived_as, {self.EPOCH.format('since')} FROM lab_tango_host")
            self._host_map = {h: a for h, a, _ in sorted(rows, key=lambda row: row[2])}  # the latest last
        return self._host_map

    def _lab_host(self) -> str | None:
        """Where a name without host is looked for: $TANGO_HOST's attributes, else the latest lab's."""
        hosts = self._hosts()
        if (env := os.environ.get("TANGO_HOST")) and (found := hosts.get(canonical_tango_host(env))):
            return found
        return next(reversed(hosts.values()), None)

    @_locked
    def conf_id(self, name: str) -> int | None:
        """The att_conf_id of an archived attribute, found as `values` finds it; None if not archived."""
        try:
            return self._attribute(name).conf_id
        except (KeyError, ValueError):
            return None

    @_locked
    def archived_name(self, name: str) -> str:
        """The name a full attribute name is (or would be) archived under: host canonical, and the
        host:port `archive_host` chose for its TANGO_HOST."""
        name = canonical_name(name)
        if not name.startswith("tango://"):
            raise ValueError(f"{name!r} is not an attribute name like tango://host:port/lab/cryocon/1/temperatureA")
        host, path = name.removeprefix("tango://").split("/", 1)
        return f"tango://{self._hosts().get(host, host)}/{path}"

    @_locked
    def archive_host(self, tango_host: str, continue_history: bool = True) -> str:
        """The host:port under which an archiver on `tango_host` keeps its lab's attributes.

        The first TANGO_HOST to archive here keeps its own name. Another one (the lab restarted
        on another port or host name) continues that history, unless continue_history is False:
        then it starts its own. The choice is kept, so every later start makes the same.
        """
        current = canonical_tango_host(tango_host)
        self._host_map = None
        hosts = self._hosts()
        if current in hosts and (continue_history or hosts[current] == current):
            return hosts[current]
        archived_as = next(reversed(hosts.values())) if hosts and continue_history else current
        with self._transaction():
            self._execute("DELETE FROM lab_tango_host WHERE tango_host = ?", (current,))
            self._execute(
                f"INSERT INTO lab_tango_host (tango_host, archived_as, since) VALUES (?, ?, {self.TIME_PARAM})",
                (current, archived_as, _time.time()),
            )
        self._host_map = None
        return archived_as

    def _between(self) -> str:
        return f"data_time BETWEEN {self.TIME_PARAM} AND {self.TIME_PARAM}"

    def _select(self, att: Attribute, condition: str, order: str = "") -> str:
        """SQL for the (time, value, quality[, label]) rows of att that meet a condition, in time order.

        An enum's rows carry the labels stored with them, as HDB++ readers find them.
        """
        label = ", value_r_label" if att.data_type == "DevEnum" else ""
        return (
            f"SELECT {self.EPOCH.format('data_time')}, {self._value_sql(att)}, COALESCE(quality, 0){label}"
            f" FROM {att.table} WHERE att_conf_id = ? AND {condition} ORDER BY data_time{order}"
        )

    def _decode(self, att: Attribute, value: Any, label: Any = None) -> Any:
        """A value as read back in its Tango type: a Python scalar, a DevState, an enum's label
        (its number where it had none), or a numpy array for a spectrum."""
        if value is None:
            return None
        if att.is_array:
            items = self._decode_array(value)
            if att.data_type == "DevState":
                return _state_names()[np.array(items, int)] if items else np.empty(0, object)
            if att.data_type == "DevEnum":
                labels = self._decode_array(label) if label is not None else [None] * len(items)
                return np.array([text if text is not None else int(v) for v, text in zip(items, labels)], object)
            return np.array([int(v) for v in items] if att.dtype.kind in "iu" else items, att.dtype)
        if att.data_type == "DevState":
            return _state_names()[int(value)]
        if att.data_type == "DevEnum":
            return label if label is not None else int(value)
        python_type = {"b": bool, "i": int, "u": int, "f": float}.get(att.dtype.kind)
        return python_type(value) if python_type else value

    def _series_from_rows(
        self, att: Attribute, start: float, end: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """_numeric_series by rows: for what a store cannot hand over as arrays."""
        rows = self._execute(self._select(att, self._between()), (att.conf_id, start, end))
        missing = np.array([row[1] is None for row in rows], bool)
        values = np.array([0 if row[1] is None else int(row[1]) for row in rows], att.dtype)
        times = np.array([row[0] for row in rows], np.float64)
        return times, values, missing, np.array([row[2] for row in rows], np.int16)

    # -- writing -----------------------------------------------------------------------------------

    @_locked
    def register(
        self, name: str, data_type: str | int, data_format: str | int = "SCALAR", write: str | int = "READ"
    ) -> int:
        """The att_conf_id of an attribute, registering it (and an "add" event) if new.

        name is the full name, tango://host:port/domain/family/member/attribute, as HDB++ keeps it,
        with any alias of the host: it is kept with the host canonical, under the host:port that
        `archive_host` chose for that TANGO_HOST. Types and formats are Tango enums or their
        names ("DevDouble", "SPECTRUM", "READ_WRITE").
        """
        name, data_type = self.archived_name(name), tango_type(data_type)
        data_format, write = _named(data_format, FORMATS), _named(write, WRITE_TYPES)
        if data_format == "IMAGE":
            raise ValueError(f"{name}: images are not archived")
        self._load_attributes()
        if (att := self._by_name.get(name)) is not None:
            if (att.data_type, att.data_format) != (data_type, data_format):
                raise ValueError(
                    f"{name} is archived as {att.data_format} {att.data_type}, not {data_format} {data_type}"
                )
            return att.conf_id
        table = f"att_{'scalar' if data_format == 'SCALAR' else 'array'}_{data_type.lower()}"
        with self._transaction():
            ((conf_id,),) = self._execute(
                "INSERT INTO att_conf (att_name, att_conf_type_id, att_conf_format_id, att_conf_write_id,"
                " table_name, cs_name, domain, family, member, name) VALUES (?,"
                " (SELECT att_conf_type_id FROM att_conf_type WHERE type = ?),"
                " (SELECT att_conf_format_id FROM att_conf_format WHERE format = ?),"
                " (SELECT att_conf_write_id FROM att_conf_write WHERE write = ?),"
                " ?, ?, ?, ?, ?, ?) RETURNING att_conf_id",
                (name, _hdb_type(data_type), data_format, write, table, *_split(name)),
            )
            self._insert_event(conf_id, "add", _time.time())
        self._load_attributes()
        return conf_id

    @_locked
    def insert_values(self, rows: Iterable[Row]) -> int:
        """Store a batch of (conf_id, time, value_r, value_w, quality, error) in one transaction.

        A row with an error text is an error row: HDB++ keeps the text in att_error_desc. Returns
        the number of rows stored: one whose attribute already has a value at that time is skipped
        (a re-subscription repeats the last value).
        """
        tables: dict[str, list[tuple]] = defaultdict(list)
        atts: dict[str, Attribute] = {}
        with self._transaction():
            for conf_id, t, value_r, value_w, quality, error in rows:
                att = self._attributes.get(conf_id) or self._attribute(conf_id)
                value_r, value_w = _plain(value_r), _plain(value_w)
                labels = self._labels(att, value_r, value_w) if att.data_type == "DevEnum" else ()
                if att.is_array:
                    value_r, value_w, *labels = (
                        None if v is None else self._encode_array(v) for v in (value_r, value_w, *labels)
                    )
                error_id = None if error is None else self._text_id("att_error_desc", str(error)[:MAX_ERROR])
                tables[att.table].append((conf_id, t, value_r, value_w, int(quality), error_id, *labels))
                atts[att.table] = att
            return sum(self._insert_rows(atts[table], table_rows) for table, table_rows in tables.items())

    def _labels(self, att: Attribute, *values: Any) -> tuple:
        """The labels of DevEnum values (lists of labels for a spectrum), None where there is none."""
        if att.conf_id not in self._enum_labels:
            found = self._execute(
                "SELECT CAST(details AS text) FROM att_parameter WHERE att_conf_id = ? AND details IS NOT NULL"
                " ORDER BY recv_time DESC LIMIT 1",
                (att.conf_id,),
            )
            self._enum_labels[att.conf_id] = json.loads(found[0][0]).get("enum_labels", []) if found else []
        labels = self._enum_labels[att.conf_id]

        def label(value: Any) -> str | None:
            return labels[value] if type(value) is int and 0 <= value < len(labels) else None

        if not att.is_array:
            return tuple(label(value) for value in values)
        return tuple(None if value is None else [label(v) for v in value] for value in values)

    def insert_error(self, conf_id: int, time: float, error: str) -> None:
        """An error row: no value, quality INVALID, and the reason."""
        self.insert_values([(conf_id, time, None, None, INVALID, error)])

    @_locked
    def insert_parameters(
        self, conf_id: int, time: float, enum_labels: Iterable[str] = (), **parameters: str
    ) -> None:
        """The attribute's configuration at a time: label, unit, format, archive_period, ...

        A DevEnum's labels go into the row's details, and name the values stored from then on.
        """
        if unknown := set(parameters) - set(PARAMETERS):
            raise ValueError(f"unknown parameters {sorted(unknown)}: known are {', '.join(PARAMETERS)}")
        enum_labels = list(enum_labels)
        details = json.dumps({"enum_labels": enum_labels}) if enum_labels else None
        columns = "".join(f", {p}" for p in parameters)
        self._execute(
            f"INSERT INTO att_parameter (att_conf_id, recv_time, details{columns})"
            f" VALUES (?, {self.TIME_PARAM}, ?{', ?' * len(parameters)})",
            (conf_id, time, details, *map(str, parameters.values())),
        )
        if enum_labels:
            self._enum_labels[conf_id] = enum_labels

    @_locked
    def insert_history_event(self, conf_id: int, event: str, time: float) -> None:
        """An archiving event of the attribute: add, remove, start, stop, pause, crash, ..."""
        if event not in EVENTS:
            raise ValueError(f"unknown event {event!r}: HDB++ events are {', '.join(EVENTS)}")
        with self._transaction():
            self._insert_event(conf_id, event, time)

    def _insert_event(self, conf_id: int, event: str, time: float) -> None:
        self._execute(
            "INSERT INTO att_history (att_conf_id, att_history_event_id, event_time)"
            f" VALUES (?, ?, {self.TIME_PARAM}) ON CONFLICT DO NOTHING",
            (conf_id, self._text_id("att_history_event", event), time),
        )

    @_locked
    def insert_messages(self, rows: Iterable[tuple[float, str, str, str]]) -> None:
        """Store lab messages given as (time, level, source, text)."""
        with self._transaction():
            self._executemany(
                f"INSERT INTO lab_message (data_time, level, source, text) VALUES ({self.TIME_PARAM}, ?, ?, ?)",
                [(t, level.upper(), source, text) for t, level, source, text in rows],
            )

    # -- reading -----------------------------------------------------------------------------------

    @_locked
    def values(
        self, att_name: str, start: float | None = None, end: float | None = None
    ) -> tuple[np.ndarray, np.ma.MaskedArray, np.ndarray]:
        """(times, values, qualities) of an attribute between start and end (epoch seconds), in order.

        Times are float64 epoch seconds, qualities int16 (0 VALID, 1 INVALID, ...). Values are a
        masked array in the attribute's Tango type, masked where there is no value (an error
        row, an INVALID reading): numbers in their numpy dtype (float64, int16, uint64, ...),
        booleans as bool, and an object array of str, DevState, enum labels, or 1-D arrays for
        spectra. A real NaN is a value, not masked. (Masked float values hold NaN beneath.)
        """
        att = self._attribute(att_name)
        start, end = _span(start, end)
        if not att.is_array and att.dtype.kind in "biuf" and att.data_type != "DevEnum":
            times, found, missing, quality = self._numeric_series(att, start, end)
            if att.data_type == "DevState":
                found = _state_names()[found.astype(np.intp)]
                found[missing] = None
                return times, np.ma.MaskedArray(found, missing, fill_value=None), quality
            if found.dtype.kind == "f":
                found[missing] = np.nan
            return times, np.ma.MaskedArray(found, missing), quality
        rows = self._execute(self._select(att, self._between()), (att.conf_id, start, end))
        values = np.empty(len(rows), object)
        for i, row in enumerate(rows):
            values[i] = self._decode(att, row[1], row[3] if len(row) > 3 else None)
        times = np.array([row[0] for row in rows], np.float64)
        missing = np.array([row[1] is None for row in rows], bool)
        return times, np.ma.MaskedArray(values, missing, fill_value=None), np.array([row[2] for row in rows], np.int16)

    @_locked
    def errors(
        self, att_name: str, start: float | None = None, end: float | None = None
    ) -> list[tuple[float, str]]:
        """(time, error text) of the attribute's error rows, in order."""
        att = self._attribute(att_name)
        return [
            tuple(row)
            for row in self._execute(
                f"SELECT {self.EPOCH.format('data_time')}, error_desc FROM {att.table}"
                " JOIN att_error_desc USING (att_error_desc_id)"
                f" WHERE att_conf_id = ? AND {self._between()} ORDER BY data_time",
                (att.conf_id, *_span(start, end)),
            )
        ]

    @_locked
    def state_at(self, time: float) -> dict[str, tuple[float, Any, int]]:
        """The last archived (time, value, quality) of every attribute at the time (epoch seconds).

        Values are in their Tango type: Python bool, int, float, str, DevState, an enum's label,
        or a numpy array for a spectrum; None for an error row. Attributes with nothing archived
        by then are absent.
        """
        self._load_attributes()
        state = {}
        for att in self._attributes.values():
            before = f"data_time <= {self.TIME_PARAM}"
            for row in self._execute(self._select(att, before, " DESC LIMIT 1"), (att.conf_id, time)):
                value = self._decode(att, row[1], row[3] if len(row) > 3 else None)
                if value is None and self._null_is_nan(att, row[2]):
                    value = math.nan
                state[att.name] = (row[0], value, row[2])
        return state

    @_locked
    def messages(
        self,
        source: str | None = None,
        level: str | None = None,
        start: float | None = None,
        end: float | None = None,
    ) -> list[Message]:
        """Lab messages in time order, of one source and one level if given."""
        where = [self._between()]
        params: list[Any] = [*_span(start, end)]
        for column, value in (("source", source), ("level", level and level.upper())):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        rows = self._execute(
            f"SELECT {self.EPOCH.format('data_time')}, level, source, text FROM lab_message"
            f" WHERE {' AND '.join(where)} ORDER BY data_time, message_id",
            params,
        )
        return [Message(*row) for row in rows]

    @_locked
    def attributes(self) -> list[Attribute]:
        """Every archived attribute, by name."""
        self._load_attributes()
        return sorted(self._attributes.values(), key=lambda att: att.name)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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
            raise ArchiveError(f"cannot open the archive {self.path}: {_one_line(error)}", retry=True) from error
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
                raise ArchiveError(f"cannot open the archive {self.path}: {_one_line(error)}", retry=True) from error
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

    def _column_type(self, sql_type: str) -> str:
        # HDB++'s unsigned domains would get SQLite's TEXT affinity ("uchar") or NUMERIC: integers
        return "integer" if sql_type in _DOMAINS else sql_type

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


CONNECT_TIMEOUT = 10  # seconds: an unreachable PostgreSQL host fails a batch, it does not hang the writer
# SQLSTATEs after which the same batch may well go in later: admin/crash shutdown, cannot connect
# now, disk full, out of memory, too many connections
_PG_UNAVAILABLE = {"57P01", "57P02", "57P03", "53100", "53200", "53300"}
_PG_EPOCH_US = 946_684_800 * 1_000_000  # PostgreSQL counts microseconds from 2000-01-01


def _one_line(error: BaseException) -> str:
    """A driver's error message on one line, without its "IO:"-style prefixes."""
    text = "; ".join(line.strip() for line in str(error).splitlines() if line.strip())
    return re.sub(r"^(\w+: )?(\[\w+\] )?", "", text)[:MAX_ERROR] or type(error).__name__


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
            raise ArchiveError(f"cannot reach PostgreSQL at {self.shown}: {_one_line(error)}", retry=True) from error
        self._staged: set[str] = set()
        self._closed = False
        self.timescale = False
        try:
            self.created = not read_only and not self._has_table("att_conf")
            super().__init__(read_only)
        except BaseException as error:
            self._db.close()
            if isinstance(error, psycopg.Error):
                raise ArchiveError(f"cannot use PostgreSQL at {self.shown}: {_one_line(error)}", retry=True) from error
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
            for domain, (digits, top) in _DOMAINS.items():
                self._execute(
                    f"DO $$ BEGIN CREATE DOMAIN {domain} AS numeric({digits}) CHECK (VALUE >= 0 AND VALUE <= {top});"
                    " EXCEPTION WHEN duplicate_object THEN NULL; END $$"
                )
            super()._create_schema()
            if self.timescale:
                data_tables = [
                    (f"att_{s}_{n.lower()}", "data_time") for n in TYPES for s in ("scalar", "array")
                ]
                for table, column in [("att_parameter", "recv_time"), *data_tables]:
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
        unsigned_array = att.is_array and TYPES[att.data_type][1] in _DOMAINS
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
