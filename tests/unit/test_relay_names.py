"""The relay's name rule `<name>_<t><count>` and what each kind of variable accepts, without Tango."""

from __future__ import annotations

import pytest

from device_servers.core.errors import RejectedValue
from device_servers.relay.names import MAX_COUNT, VariableSpec, parse_name


@pytest.mark.parametrize(
    ("name", "letter", "count", "ring", "is_array"),
    [
        ("temperature_f1", "f", 1, False, False),
        ("positions_i3", "i", 3, False, True),
        ("comment_c80", "c", 80, False, False),
        ("valve_open_b1", "b", 1, False, False),
        ("flags_b4", "b", 4, False, True),
        ("history_F100", "f", 100, True, True),
        ("counts_I2", "i", 2, True, True),
        ("log_C500", "c", 500, True, False),
        ("bits_B8", "b", 8, True, True),
    ],
)
def test_the_name_says_kind_count_and_ring(name, letter, count, ring, is_array):
    spec = parse_name(name)
    assert (spec.name, spec.letter, spec.count, spec.ring, spec.is_array) == (name, letter, count, ring, is_array)


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("temperature", "<name>_<t><count>"),  # no type suffix
        ("temperature_x1", "<name>_<t><count>"),  # unknown type letter
        ("temperature_f", "<name>_<t><count>"),  # no count
        ("_f1", "<name>_<t><count>"),  # no name
        ("1st_f1", "starting with a letter"),
        ("with space_f1", "<name>_<t><count>"),
        ("dash-ed_f1", "<name>_<t><count>"),
        ("temperature_f0", "count of 0"),
        ("history_F1", "at least 2"),
        ("temperature_f01", "leading zeros"),
        (f"huge_f{MAX_COUNT + 1}", f"at most {MAX_COUNT}"),
        ("x" * 120 + "_f1", "at most 100"),
        ("x" * 121 + "_f1", "'" + "x" * 40 + "'... is 124 characters long"),  # ASCII: it travels in a DevFailed
        ("", "needs a name"),
    ],
)
def test_bad_names_are_refused_with_the_rule(name, says):
    with pytest.raises(RejectedValue) as refused:
        parse_name(name)
    assert says in str(refused.value)


def test_tango_ignores_case_so_the_key_is_lower_case():
    assert parse_name("Oven_f1").key == parse_name("oven_f1").key == "oven_f1"
    assert parse_name("oven_F2") != parse_name("oven_f2")  # a ring is not a plain array


# -- values, as a Put gives them (JSON text) -------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "text", "value"),
    [
        ("x_f1", "3.5", 3.5),
        ("x_f1", "3", 3.0),
        ("x_i1", "-42", -42),
        ("x_i1", str(2**63 - 1), 2**63 - 1),
        ("x_c5", '"abcde"', "abcde"),
        ("x_c5", '""', ""),
        ("x_b1", "true", True),
        ("x_f3", "[1, 2.5, 3]", [1.0, 2.5, 3.0]),
        ("x_i2", "[1, 2]", [1, 2]),
        ("x_b2", "[true, false]", [True, False]),
        ("x_F4", "7", 7.0),  # one value appended to a ring
        ("x_F4", "[7, 8]", [7.0, 8.0]),  # or an array of up to its length
        ("x_C4", '"ab"', "ab"),
    ],
)
def test_json_values_of_the_right_kind_are_taken(name, text, value):
    taken = parse_name(name).from_json(text)
    assert taken == value and type(taken) is type(value)


@pytest.mark.parametrize(
    ("name", "text", "says"),
    [
        ("x_f1", '"3.5"', "give a number"),
        ("x_f1", "true", "give a number"),
        ("x_f1", "[1.0]", "give a number"),
        ("x_f1", "3,5", "is not JSON"),
        ("x_i1", "3.5", "whole number"),
        ("x_i1", str(2**63), "outside int64"),
        ("x_c5", '"abcdef"', "at most 5 characters; got 6"),
        ("x_c5", "5", "give a JSON string"),
        ("x_b1", "1", "true or false"),
        ("x_f3", "[1, 2]", "exactly 3 float64 values; got 2"),
        ("x_f3", "[1, 2, 3, 4]", "got 4"),
        ("x_f3", "1", "give a JSON array"),
        ("x_f3", '[1, "2", 3]', "give a number"),
        ("x_F3", "[1, 2, 3, 4]", "appends 1 to 3 values, got 4"),
        ("x_F3", "[]", "appends 1 to 3 values, got 0"),
        ("x_C3", '"abcd"', "got 4 characters in one write"),
        ("x_B2", "[true, 0]", "true or false"),
        ("x_f1", "NaN", "give a finite number"),  # Python's JSON takes NaN and Infinity; Tango refuses them as writes
        ("x_f1", "-Infinity", "give a finite number"),
        ("x_f1", "1e999", "give a finite number"),
        ("x_f1", "1" + "0" * 400, "give a finite number"),  # an integer beyond float64
        ("x_F3", "[1, NaN]", "give a finite number"),
    ],
)
def test_wrong_values_are_refused_saying_what_is_allowed(name, text, says):
    spec = parse_name(name)
    with pytest.raises(RejectedValue) as refused:
        spec.from_json(text)
    assert says in str(refused.value)
    assert spec.name in str(refused.value)


# -- what a write does -------------------------------------------------------------------------


def test_a_plain_variable_is_replaced():
    spec = parse_name("x_i3")
    assert spec.written([1, 2, 3], [4, 5, 6]) == [4, 5, 6]


def test_a_ring_buffer_appends_values_and_arrays_and_drops_the_oldest():
    spec = parse_name("h_F3")
    ring = spec.empty()
    ring = spec.written(ring, 1.0)
    assert ring == [1.0]  # starts empty, grows to its length
    ring = spec.written(ring, [2.0, 3.0])
    assert ring == [1.0, 2.0, 3.0]
    ring = spec.written(ring, 4.0)
    assert ring == [2.0, 3.0, 4.0]
    assert spec.written(ring, [5.0, 6.0, 7.0]) == [5.0, 6.0, 7.0]


def test_a_character_ring_keeps_the_last_characters():
    spec = parse_name("log_C5")
    text = spec.written(spec.empty(), "abc")
    assert spec.written(text, "def") == "bcdef"


def test_a_put_respects_the_configured_range_and_names_it():
    spec = parse_name("x_f2")
    spec.in_range([0.0, 10.0], 0.0, 10.0)
    with pytest.raises(RejectedValue, match=r"11.0 is outside the range of x_f2: allowed \[0, 10\]"):
        spec.in_range([5.0, 11.0], 0.0, 10.0)
    with pytest.raises(RejectedValue, match=r"allowed \[-inf, 10\]"):
        parse_name("x_i1").in_range(20, None, 10.0)
    parse_name("x_c3").in_range("abc", 0.0, 1.0)  # strings have no range


def test_descriptions_say_what_the_variable_holds():
    assert parse_name("t_f1").describe() == "t_f1 is one float64"
    assert parse_name("t_i3").describe() == "t_i3 is an array of exactly 3 int64 values"
    assert parse_name("t_F10").describe() == "t_F10 is a ring buffer of the last 10 float64 values"
    assert parse_name("t_c8").describe() == "t_c8 is a string of at most 8 characters"
    assert isinstance(parse_name("t_b1"), VariableSpec)
