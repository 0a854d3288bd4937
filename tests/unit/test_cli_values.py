"""Typed words in Tango types (the CLI's and the GUI's): what is accepted, and refusals that say what is allowed."""

from __future__ import annotations

import pytest
from tango import CmdArgType as T

from tangolab.typed_values import BadValue, command_argument, parse_array, parse_scalar


@pytest.mark.parametrize(("text", "dtype", "value"), [
    ("85.5", T.DevDouble, 85.5), ("-3", T.DevShort, -3), ("true", T.DevBoolean, True), ("Off", T.DevBoolean, False),
    ("pid", T.DevEnum, 2), ("1", T.DevEnum, 1), ("a b", T.DevString, "a b"), ("fault", T.DevState, 8),
])
def test_words_become_values_of_the_type(text, dtype, value):
    assert parse_scalar(text, dtype, ["OFF", "MAN", "PID"]) == value


@pytest.mark.parametrize(("text", "dtype", "says"), [
    ("warm", T.DevDouble, "a number"), ("1.5", T.DevLong, "an integer"), ("70000", T.DevUShort, "0 … 65535"),
    ("maybe", T.DevBoolean, "true or false"), ("FAST", T.DevEnum, "OFF, MAN, PID (or 0…2)"),
])
def test_refusals_say_what_is_allowed(text, dtype, says):
    with pytest.raises(BadValue) as refused:
        parse_scalar(text, dtype, ["OFF", "MAN", "PID"], what="x")
    assert says in str(refused.value)


def test_spectra_images_and_command_arrays_are_json():
    assert parse_array("[1, 2.5]", T.DevDouble) == [1.0, 2.5]
    assert parse_array('["on", false]', T.DevBoolean) == [True, False]
    assert parse_array("[[1, 2], [3, 4]]", T.DevLong, image=True) == [[1, 2], [3, 4]]
    assert command_argument('["info", "me", "hi"]', T.DevVarStringArray, "Message") == ["info", "me", "hi"]
    assert command_argument('[[1], ["a"]]', T.DevVarLongStringArray, "C") == [[1], ["a"]]
    assert command_argument(None, T.DevVoid, "Stop") is None
    for text, dtype, says in (("1, 2", T.DevVarDoubleArray, "JSON array"), (None, T.DevDouble, "takes an argument"),
                              ("1", T.DevVoid, "takes no argument"), ("[1]", T.DevVarLongStringArray, "[[numbers]"),
                              ("[[1.5], []]", T.DevVarLongStringArray, "an integer")):
        with pytest.raises(BadValue, match=says.replace("[", r"\[")):
            command_argument(text, dtype, "C")
