"""Text a person typed, as a value of a Tango type: what the CLI's `set`, `call` and `put` and the
GUI's command buttons share.

Numbers, true/false (on/off, yes/no, 1/0), an enum by label or index, a state by name, spectra
and arrays as JSON (`[1, 2, 3]`, images `[[1, 2], [3, 4]]`). A refusal says what is allowed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

import tango
from tango import CmdArgType as T


class BadValue(ValueError):
    """Text that is no value of the type; the message says what is allowed."""


INTEGER_RANGES = {
    T.DevUChar: (0, 2**8 - 1), T.DevShort: (-(2**15), 2**15 - 1), T.DevUShort: (0, 2**16 - 1),
    T.DevLong: (-(2**31), 2**31 - 1), T.DevULong: (0, 2**32 - 1), T.DevLong64: (-(2**63), 2**63 - 1),
    T.DevULong64: (0, 2**64 - 1),
}
FLOATS = (T.DevFloat, T.DevDouble)
ARRAY_ELEMENTS = {
    T.DevVarBooleanArray: T.DevBoolean, T.DevVarCharArray: T.DevUChar, T.DevVarShortArray: T.DevShort,
    T.DevVarUShortArray: T.DevUShort, T.DevVarLongArray: T.DevLong, T.DevVarULongArray: T.DevULong,
    T.DevVarLong64Array: T.DevLong64, T.DevVarULong64Array: T.DevULong64, T.DevVarFloatArray: T.DevFloat,
    T.DevVarDoubleArray: T.DevDouble, T.DevVarStringArray: T.DevString,
}
TRUE, FALSE = ("true", "1", "on", "yes"), ("false", "0", "off", "no")


def parse_scalar(text: str, dtype: T, labels: Iterable[str] = (), what: str = "the value") -> object:
    """A word in a Tango type; BadValue saying what is allowed."""
    labels = list(labels)
    word = text.strip()
    if dtype == T.DevBoolean:
        if word.lower() in TRUE + FALSE:
            return word.lower() in TRUE
        raise BadValue(f"{what} is a boolean: give true or false, not {text!r}")
    if dtype == T.DevEnum:
        for index, label in enumerate(labels):
            if label.lower() == word.lower():
                return index
        if word.isdigit() and int(word) < len(labels):
            return int(word)
        raise BadValue(f"{what} is one of {', '.join(labels)} (or 0…{len(labels) - 1}), not {text!r}")
    if dtype == T.DevState:
        if word.upper() in tango.DevState.names:
            return tango.DevState.names[word.upper()]
        raise BadValue(f"{what} is a state ({', '.join(tango.DevState.names)}), not {text!r}")
    if dtype in INTEGER_RANGES:
        low, high = INTEGER_RANGES[dtype]
        try:
            number = int(word)
        except ValueError:
            raise BadValue(f"{what} is an integer ({dtype.name}), not {text!r}") from None
        if not low <= number <= high:
            raise BadValue(f"{what} is a {dtype.name}: {low} … {high}, not {number}")
        return number
    if dtype in FLOATS:
        try:
            return float(word)
        except ValueError:
            raise BadValue(f"{what} is a number ({dtype.name}), not {text!r}") from None
    if dtype == T.DevString:
        return text
    raise BadValue(f"{what} is a {dtype.name}, which tangolab cannot write from text")


def parse_array(text: str, dtype: T, labels: Iterable[str] = (), what: str = "the value", image: bool = False) -> list:
    """A JSON array (of arrays for an image) as a list of the element type."""
    try:
        items = json.loads(text)
    except json.JSONDecodeError:
        items = None
    if not isinstance(items, list) or (image and not all(isinstance(row, list) for row in items)):
        shape = "a JSON array of arrays, e.g. [[1, 2], [3, 4]]" if image else "a JSON array, e.g. [1, 2, 3]"
        raise BadValue(f"{what} is {shape}, not {text!r}")
    if image:
        return [parse_array(json.dumps(row), dtype, labels, what) for row in items]
    return [parse_scalar(item if isinstance(item, str) else json.dumps(item), dtype, labels, what) for item in items]


def attribute_value(text: str, info: tango.AttributeInfoEx, what: str) -> object:
    """Text in an attribute's type and format."""
    dtype = T.values[int(info.data_type)]
    labels = list(info.enum_labels) if dtype == T.DevEnum else []
    if info.data_format == tango.AttrDataFormat.SCALAR:
        return parse_scalar(text, dtype, labels, what)
    return parse_array(text, dtype, labels, what, image=info.data_format == tango.AttrDataFormat.IMAGE)


def command_argument(text: str | None, dtype: T, what: str) -> object:
    """Text in a command's input type (None: no argument)."""
    dtype = T.values[int(dtype)]
    if dtype == T.DevVoid:
        if text is not None:
            raise BadValue(f"{what} takes no argument")
        return None
    if text is None:
        raise BadValue(f"{what} takes an argument ({dtype.name})")
    if dtype in ARRAY_ELEMENTS:
        return parse_array(text, ARRAY_ELEMENTS[dtype], what=what)
    if dtype in (T.DevVarLongStringArray, T.DevVarDoubleStringArray):
        try:
            numbers, strings = json.loads(text)
            element = T.DevLong if dtype == T.DevVarLongStringArray else T.DevDouble
            return [[parse_scalar(json.dumps(n), element, what=what) for n in numbers], [str(s) for s in strings]]
        except BadValue:
            raise
        except (json.JSONDecodeError, TypeError, ValueError):
            raise BadValue(f"{what} takes [[numbers], [strings]] as JSON, not {text!r}") from None
    return parse_scalar(text, dtype, what=what)
