"""The write path: attributes registered once, then batches of values and error rows, their
configuration (att_parameter), archiving events (att_history) and lab messages.

A batch goes in in one transaction; a value already archived at the same time is kept (a
re-subscription repeats the last value). An enum's labels are stored beside its numbers, as
HDB++ readers expect them.
"""

from __future__ import annotations

import json
import time as _time
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import numpy as np

from .catalogue import (
    EVENTS,
    FORMATS,
    INVALID,
    MAX_ERROR,
    PARAMETERS,
    WRITE_TYPES,
    Attribute,
    Row,
    hdb_type,
    named,
    tango_type,
)
from .connection import locked
from .hosts import split_name
from .registry import Registry

PLAIN = frozenset({float, int, str, bool, type(None)})  # types of values the database drivers take as they are


def plain(value: Any) -> Any:
    """A value the database drivers take: numpy data and Tango enums become Python numbers and lists."""
    if type(value) in PLAIN:
        return value
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, (float, str)):
        return value
    return int(value)


class Writing(Registry):
    """What the archiver calls; every public method is thread-safe."""

    def _encode_array(self, value: list) -> Any:
        """A spectrum as the back-end's column holds it."""
        return value

    def _insert_rows(self, att: Attribute, rows: list[tuple]) -> int:
        """Insert rows of att's table; a value already archived at the same time is kept."""
        values = ", ".join(self.TIME_PARAM if column == "data_time" else "?" for column in att.columns)
        return self._executemany(
            f"INSERT INTO {att.table} ({', '.join(att.columns)}) VALUES ({values}) ON CONFLICT DO NOTHING", rows
        )

    @locked
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
        data_format, write = named(data_format, FORMATS), named(write, WRITE_TYPES)
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
                (name, hdb_type(data_type), data_format, write, table, *split_name(name)),
            )
            self._insert_event(conf_id, "add", _time.time())
        self._load_attributes()
        return conf_id

    @locked
    def insert_values(self, rows: Iterable[Row]) -> int:
        """Store a batch of (conf_id, time, value_r, value_w, quality, error) in one transaction.

        A row with an error text is an error row: HDB++ keeps the text in att_error_desc. Returns
        the number of rows stored: one whose attribute already has a value at that time is skipped
        (a re-subscription repeats the last value).
        """
        by_attribute: dict[int, list[tuple]] = defaultdict(list)
        for row in rows:
            by_attribute[row[0]].append(row)
        tables: dict[str, list[tuple]] = defaultdict(list)
        atts: dict[str, Attribute] = {}
        with self._transaction():
            for conf_id, group in by_attribute.items():
                att = self._attributes.get(conf_id) or self._attribute(conf_id)
                atts[att.table] = att
                if att.is_plain and all(
                    error is None and type(value_r) in PLAIN and type(value_w) in PLAIN and type(quality) is int
                    for _, _, value_r, value_w, quality, error in group
                ):  # the archiver's usual rows, as the table takes them: no conversion per value
                    tables[att.table] += group
                    continue
                tables[att.table] += [self._table_row(att, *row) for row in group]
            return sum(self._insert_rows(atts[table], table_rows) for table, table_rows in tables.items())

    def _table_row(self, att: Attribute, conf_id: int, t: float, value_r: Any, value_w: Any, quality: int,
                   error: str | None) -> tuple:
        """A row as att's table takes it: plain values, spectra encoded, enum labels, the error's id."""
        value_r, value_w = plain(value_r), plain(value_w)
        labels = self._labels(att, value_r, value_w) if att.data_type == "DevEnum" else ()
        if att.is_array:
            value_r, value_w, *labels = (
                None if v is None else self._encode_array(v) for v in (value_r, value_w, *labels)
            )
        error_id = None if error is None else self._text_id("att_error_desc", str(error)[:MAX_ERROR])
        return (conf_id, t, value_r, value_w, int(quality), error_id, *labels)

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

    @locked
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

    @locked
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

    @locked
    def insert_messages(self, rows: Iterable[tuple[float, str, str, str]]) -> None:
        """Store lab messages given as (time, level, source, text)."""
        with self._transaction():
            self._executemany(
                f"INSERT INTO lab_message (data_time, level, source, text) VALUES ({self.TIME_PARAM}, ?, ?, ?)",
                [(t, level.upper(), source, text) for t, level, source, text in rows],
            )
