"""The read path: an attribute's values in its Tango type, its error rows, the state of
everything at a time, and lab messages.

Values come back as numpy masked arrays, masked where there is no value (an error row, an
INVALID reading): a real NaN stays a value. Numeric series come from the back-end as whole
columns (`_numeric_series`), everything else row by row.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from typing import Any

import numpy as np

from .catalogue import Attribute, Message, state_names
from .connection import locked
from .registry import Registry


def span(start: float | None, end: float | None) -> tuple[float, float]:
    """A time range whose missing ends are open."""
    return -math.inf if start is None else float(start), math.inf if end is None else float(end)


class Reading(Registry):
    """What history, the GUI's trends and HDB++-style readers call; every public method is thread-safe."""

    @abstractmethod
    def _numeric_series(
        self, att: Attribute, start: float, end: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(times, values in att.dtype, missing, qualities) of a scalar number or boolean attribute."""

    def _value_sql(self, att: Attribute) -> str:
        return "value_r"

    def _null_is_nan(self, att: Attribute, quality: int) -> bool:
        """Whether a NULL value read back stands for a NaN the store could not keep."""
        return False

    def _decode_array(self, value: Any) -> list:
        return value

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
                return state_names()[np.array(items, int)] if items else np.empty(0, object)
            if att.data_type == "DevEnum":
                labels = self._decode_array(label) if label is not None else [None] * len(items)
                return np.array([text if text is not None else int(v) for v, text in zip(items, labels)], object)
            return np.array([int(v) for v in items] if att.dtype.kind in "iu" else items, att.dtype)
        if att.data_type == "DevState":
            return state_names()[int(value)]
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

    @locked
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
        start, end = span(start, end)
        if not att.is_array and att.dtype.kind in "biuf" and att.data_type != "DevEnum":
            times, found, missing, quality = self._numeric_series(att, start, end)
            if att.data_type == "DevState":
                found = state_names()[found.astype(np.intp)]
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

    @locked
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
                (att.conf_id, *span(start, end)),
            )
        ]

    @locked
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

    @locked
    def messages(
        self,
        source: str | None = None,
        level: str | None = None,
        start: float | None = None,
        end: float | None = None,
    ) -> list[Message]:
        """Lab messages in time order, of one source and one level if given."""
        where = [self._between()]
        params: list[Any] = [*span(start, end)]
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
