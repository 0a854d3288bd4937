"""The archive's tables: HDB++'s TimescaleDB schema, written in each back-end's dialect.

`att_conf` with its lookup tables (`att_conf_type`, `att_conf_format`, `att_conf_write`), one
data table per format and type (`att_scalar_devdouble`, `att_array_devlong`, ...),
`att_error_desc`, `att_parameter`, `att_history` and `att_history_event`, so HDB++ tools read a
PostgreSQL archive written here; `lab_message` and `lab_tango_host` are tangolab's own.
"""

from __future__ import annotations

from .catalogue import FORMATS, PARAMETERS, TYPES, WRITE_TYPES, hdb_type
from .connection import Connection

TEXT_COLUMNS = {"att_error_desc": "error_desc", "att_history_event": "event"}  # texts kept once, by id

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


def data_tables() -> list[str]:
    """The names of the data tables: one per format (scalar, array) and type."""
    return [f"att_{shape}_{name.lower()}" for name in TYPES for shape in ("scalar", "array")]


def statements(db: Connection) -> list[str]:
    """The CREATE statements of every table and index, in the dialect of `db`'s back-end."""
    columns = {"serial": db.SERIAL, "time": db.TIME_COLUMN, "json": db.JSON_COLUMN}
    parameters = ",\n    ".join(f"{p} text NOT NULL DEFAULT ''" for p in PARAMETERS)
    result = _SCHEMA.format(parameters=parameters, **columns).split(";\n")
    for name, (_, sql_type, _) in TYPES.items():
        for shape, column in (("scalar", "{}"), ("array", db.ARRAY_COLUMN)):
            labels = f"\n    value_r_label {column.format('text')},\n    value_w_label {column.format('text')},"
            result.append(
                _DATA_TABLE.format(
                    table=f"att_{shape}_{name.lower()}",
                    value=column.format(db.column_type(sql_type)),
                    labels=labels if name == "DevEnum" else "",
                    table_options=db.TABLE_OPTIONS,
                    **columns,
                )
            )
    return result


def lookup_rows() -> list[tuple[str, str, list[tuple[str, int]]]]:
    """(table, name column, rows of (name, number)) of the lookup tables att_conf refers to."""
    return [
        ("att_conf_type", "type", [(hdb_type(n), number) for n, (number, _, _) in TYPES.items()]),
        ("att_conf_format", "format", [(f, i) for i, f in enumerate(FORMATS)]),
        ("att_conf_write", "write", [(w, i) for i, w in enumerate(WRITE_TYPES)]),
    ]
