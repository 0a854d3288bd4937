"""Archive storage: HDB++ tables in SQLite (the default) or PostgreSQL/TimescaleDB.

The tables and columns are those of HDB++'s TimescaleDB schema: `att_conf` with its lookup tables
(`att_conf_type`, `att_conf_format`, `att_conf_write`), one data table per format and type
(`att_scalar_devdouble`, `att_array_devlong`, ...), `att_error_desc`, `att_parameter`,
`att_history` and `att_history_event`. So HDB++ tools (pyhdbpp, the HDB++ viewers) read a
PostgreSQL archive written here. `lab_message` is tangolab's own table.

SQLite has no timestamp or array types: there, times are REAL epoch seconds (UTC; a double keeps
Tango's microseconds to within 0.25 µs) and spectra are JSON text. Times cross this API as epoch
seconds with both stores.
"""

from __future__ import annotations

import json
import math
import re
import threading
import time as _time
from abc import ABC, abstractmethod
from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from functools import wraps
from pathlib import Path
from typing import Any, NamedTuple, Self
from urllib.parse import urlsplit, urlunsplit

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


def _float_sql(att: Attribute) -> str:
    """value_r as a double; booleans go through integer, which PostgreSQL requires."""
    value = "CAST(value_r AS integer)" if att.data_type == "DevBoolean" else "value_r"
    return f"CAST({value} AS double precision)"


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
_SERIES = np.dtype([("time", "f8"), ("value", "f8"), ("quality", "i2")])
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
CREATE INDEX IF NOT EXISTS lab_message_source_idx ON lab_message (source, data_time)
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

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._attributes: dict[int, Attribute] = {}
        self._by_name: dict[str, Attribute] = {}
        self._ids: dict[tuple[str, str], int] = {}
        self._enum_labels: dict[int, list[str]] = {}
        self._create_schema()
        self._load_attributes()

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
    def _numeric_series(self, att: Attribute, start: float, end: float) -> np.ndarray:
        """(time, value, quality) rows of a scalar number attribute as a _SERIES array, NaN for no value."""

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
                        value=column.format(sql_type),
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
        self._by_name = {att.name: att for att in attributes}

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
        """An attribute by conf id, full name, or name without the tango://host:port/ prefix."""
        for reload in (False, True):
            if reload:
                self._load_attributes()
            if isinstance(key, int):
                if key in self._attributes:
                    return self._attributes[key]
                continue
            name = key.lower()
            if name in self._by_name:
                return self._by_name[name]
            found = [att for full, att in self._by_name.items() if full.endswith("/" + name)]
            if len(found) > 1:
                raise ValueError(f"{key!r} is ambiguous: {', '.join(att.name for att in found)}")
            if found:
                return found[0]
        raise KeyError(f"{key!r} is not archived")

    def _between(self) -> str:
        return f"data_time BETWEEN {self.TIME_PARAM} AND {self.TIME_PARAM}"

    def _select(self, att: Attribute, condition: str, order: str = "") -> str:
        """SQL for the (time, value, quality) rows of att that meet a condition, in time order."""
        return (
            f"SELECT {self.EPOCH.format('data_time')}, {self._value_sql(att)}, COALESCE(quality, 0)"
            f" FROM {att.table} WHERE att_conf_id = ? AND {condition} ORDER BY data_time{order}"
        )

    def _decode(self, att: Attribute, value: Any) -> Any:
        """A value as read back: a Python scalar, or a numpy array for a spectrum."""
        if value is None:
            return None
        if att.is_array:
            items = self._decode_array(value)
            return np.array([int(v) for v in items] if att.dtype.kind in "iu" else items, att.dtype)
        python_type = {"b": bool, "i": int, "u": int, "f": float}.get(att.dtype.kind)
        return python_type(value) if python_type else value

    # -- writing -----------------------------------------------------------------------------------

    @_locked
    def register(
        self, name: str, data_type: str | int, data_format: str | int = "SCALAR", write: str | int = "READ"
    ) -> int:
        """The att_conf_id of an attribute, registering it (and an "add" event) if new.

        name is the full name, tango://host:port/domain/family/member/attribute, as HDB++ keeps it;
        types and formats are Tango enums or their names ("DevDouble", "SPECTRUM", "READ_WRITE").
        """
        name, data_type = name.lower(), tango_type(data_type)
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
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(times, values, qualities) of an attribute between start and end (epoch seconds), in order.

        Times are float64 epoch seconds, qualities int16 (0 VALID, 1 INVALID, ...). Numbers come
        as float64 whatever their Tango type, NaN where there is no value (an error row); 64-bit
        integers beyond 2**53 are rounded. Strings and spectra come as an object array holding
        str or 1-D arrays of the attribute's type, and None for error rows.
        """
        att = self._attribute(att_name)
        start, end = _span(start, end)
        if not att.is_array and att.dtype.kind in "biuf":
            series = self._numeric_series(att, start, end)
            return series["time"], series["value"], series["quality"]
        rows = self._execute(self._select(att, self._between()), (att.conf_id, start, end))
        values = np.empty(len(rows), object)
        for i, row in enumerate(rows):
            values[i] = self._decode(att, row[1])
        times = np.array([row[0] for row in rows], np.float64)
        return times, values, np.array([row[2] for row in rows], np.int16)

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

        Values are Python bool, int, float, str, or a numpy array for a spectrum; None for an
        error row. Attributes with nothing archived by then are absent.
        """
        self._load_attributes()
        state = {}
        for att in self._attributes.values():
            before = f"data_time <= {self.TIME_PARAM}"
            for t, value, quality in self._execute(self._select(att, before, " DESC LIMIT 1"), (att.conf_id, time)):
                state[att.name] = (t, self._decode(att, value), quality)
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

    def __init__(self, path: str | Path, create: bool = True) -> None:
        from adbc_driver_sqlite import dbapi

        self.path = str(path)
        if self.path != ":memory:":
            if not create and not Path(self.path).exists():
                raise FileNotFoundError(f"no archive at {self.path}")
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._db = dbapi.connect(self.path, autocommit=True)  # transactions are begun by _tx
        try:
            self._execute("PRAGMA busy_timeout = 30000")
            self._execute("PRAGMA journal_mode = WAL")
            self._execute("PRAGMA synchronous = NORMAL")
            super().__init__()
        except BaseException:
            self._db.close()
            raise

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

    def _decode_array(self, value: str) -> list:
        return json.loads(value)

    def _numeric_series(self, att: Attribute, start: float, end: float) -> np.ndarray:
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
        series = np.empty(len(times), _SERIES)
        series["time"] = times.to_numpy()
        # integers and booleans become float64 (beyond 2**53 rounded), and NULL (an error row) NaN
        series["value"] = pc.cast(values, "float64", safe=False).to_numpy(zero_copy_only=False)
        series["quality"] = quality.to_numpy()
        return series

    def close(self) -> None:
        self._db.close()


CONNECT_TIMEOUT = 10  # seconds: an unreachable PostgreSQL host fails a batch, it does not hang the writer
# SQLSTATEs after which the same batch may well go in later: admin/crash shutdown, cannot connect
# now, disk full, out of memory, too many connections
_PG_UNAVAILABLE = {"57P01", "57P02", "57P03", "53100", "53200", "53300"}
_PG_EPOCH_US = 946_684_800 * 1_000_000  # PostgreSQL counts microseconds from 2000-01-01


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

    def __init__(self, url: str) -> None:
        import psycopg

        self.url = url
        self._db = psycopg.connect(url, autocommit=True, connect_timeout=CONNECT_TIMEOUT)
        self._staged: set[str] = set()
        self._closed = False
        self.timescale = False
        super().__init__()

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

    def _numeric_series(self, att: Attribute, start: float, end: float) -> np.ndarray:
        # Three arrays aggregated by the server, in binary, cost a fraction of a million rows read
        # one by one. Aggregates take a sorted subquery's order in practice, not by the standard:
        # checked below.
        query = (
            "SELECT array_send(array_agg(data_time)),"
            f" array_send(array_agg(COALESCE({_float_sql(att)}, 'NaN'))),"
            " array_send(array_agg(CAST(COALESCE(quality, 0) AS smallint)))"
            f" FROM (SELECT * FROM {att.table} WHERE att_conf_id = %s"
            " AND data_time BETWEEN to_timestamp(%s) AND to_timestamp(%s) ORDER BY data_time) AS rows"
        )
        with self._db.cursor(binary=True) as cursor:
            times, values, quality = cursor.execute(query, (att.conf_id, start, end)).fetchone()
        times = (_pg_array(times, ">i8") + _PG_EPOCH_US) / 1e6
        series = np.empty(len(times), _SERIES)
        series["time"] = times
        series["value"] = _pg_array(values, ">f8")
        series["quality"] = _pg_array(quality, ">i2")
        if np.any(np.diff(series["time"]) < 0):
            series.sort(order="time", kind="stable")
        return series

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


def open_store(url: str | Path, create: bool = True) -> Store:
    """The store at a URL: postgresql://user@host:port/db, sqlite:///path, or a plain file path.

    sqlite:/// is followed by the path as SQLAlchemy has it (sqlite:////abs/archive.db). With
    create=False a missing SQLite file is an error rather than a new, empty archive.
    """
    url = str(url)
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresStore(url)
    if url.startswith("sqlite:///"):
        return SQLiteStore(url.removeprefix("sqlite:///"), create)
    if "://" in url:
        raise ValueError(f"unknown archive URL {url!r}: give a file path, sqlite:///path or postgresql://...")
    return SQLiteStore(url, create)
