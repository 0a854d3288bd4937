"""HDB++'s catalogue: the Tango types, formats, write types, qualities and history events an
archive knows, with their numbers and column types, and the shapes of what crosses the Store API.

The order of TYPES is HDB++'s, so att_conf_type ids match an HDB++ database's (but DEV_ENUM's:
no DEV_ENCODED here).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

# Tango data type: (CmdArgType number, PostgreSQL column type as in HDB++, numpy dtype of a value).
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
# HDB++'s PostgreSQL domains of the unsigned types: (digits, largest value)
DOMAINS = {"uchar": (3, 255), "ushort": (5, 65535), "ulong": (10, 2**32 - 1), "ulong64": (20, 2**64 - 1)}
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
DATA_COLUMNS = ("att_conf_id", "data_time", "value_r", "value_w", "quality", "att_error_desc_id")
LABEL_COLUMNS = ("value_r_label", "value_w_label")  # DevEnum tables: the labels of the values, as HDB++

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
    def is_plain(self) -> bool:
        """Whether its rows can go in as they come: a scalar that is no enum (whose labels go beside)."""
        return self.data_format == "SCALAR" and self.data_type != "DevEnum"

    @property
    def columns(self) -> tuple[str, ...]:
        """The data columns written for this attribute, in the order of its rows."""
        return DATA_COLUMNS + (LABEL_COLUMNS if self.data_type == "DevEnum" else ())


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


def named(value: str | int, names: tuple[str, ...]) -> str:
    """The name of an enumerated value given by name or by number (a Tango enum)."""
    name = value.upper() if isinstance(value, str) else names[int(value)]
    if name not in names:
        raise ValueError(f"{value!r} is none of {', '.join(names)}")
    return name


def hdb_type(name: str) -> str:
    """HDB++'s name of a Tango type: DevDouble -> DEV_DOUBLE."""
    return "DEV_" + name[3:].upper()


def state_names() -> np.ndarray:
    """DevState members indexed by their numbers."""
    from tango import DevState

    return np.array([DevState.values[i] for i in range(len(DevState.values))], object)
