"""The Cornerstone simulator on the wire: the exchanges of the Cornerstone 130B/260B manual,
literally (RS-232, standard mode, echo on: every statement comes back as sent, CR LF included,
and a query's answer follows it, ended by CR LF)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from device_servers.core.framing import Lines
from device_servers.monochromator.protocol import message_id
from simulators import run_in_thread
from simulators.monochromator import CornerstoneSimulator
from tests.wire import Wire

LINES = Lines(b"\r\n")


@pytest.fixture
def sim() -> CornerstoneSimulator:
    return CornerstoneSimulator(seed=1, speed=20.0)  # motions twenty times faster: the bytes are the same


@pytest.fixture
def wire(sim) -> Iterator[Wire]:
    with run_in_thread(sim) as running, Wire(running.port, LINES) as connection:
        yield connection


def query(wire: Wire, statement: bytes) -> tuple[bytes, bytes]:
    """The echo and the answer of one query."""
    wire.send(statement)
    return wire.receive(), wire.receive()


def settled(wire: Wire) -> None:
    """`*OPC`, then `*ESR?` until bit 0 says every motion has ended (the manual's synchronisation)."""
    assert wire.ask(b"*OPC\r\n") == b"*OPC\r\n"
    deadline = time.monotonic() + 30
    while query(wire, b"*ESR?\r\n") != (b"*ESR?\r\n", b"1\r\n"):
        assert time.monotonic() < deadline, "the motion did not end"


def test_a_command_comes_back_as_its_echo_and_nothing_more(wire):
    # Send: GOWAVE 500[cr][lf]   Response: GOWAVE 500[cr][lf]
    assert wire.ask(b"GOWAVE 500\r\n") == b"GOWAVE 500\r\n"
    assert wire.ask(b"ERROR?\r\n") == b"ERROR?\r\n"  # the next frame is the next statement's echo
    assert wire.receive() == b"0\r\n"


def test_a_query_comes_back_as_its_echo_then_the_answer(wire):
    # Send: WAVE?[cr][lf]   Response: WAVE?[cr][lf]500.01[cr][lf]
    assert wire.ask(b"GOWAVE 500.01\r\n") == b"GOWAVE 500.01\r\n"
    settled(wire)
    assert query(wire, b"WAVE?\r\n") == (b"WAVE?\r\n", b"500.01\r\n")


def test_statements_are_case_insensitive(wire):
    assert query(wire, b"wave?\r\n") == (b"wave?\r\n", b"500\r\n")


def test_the_drive_reports_where_it_is_on_the_way(wire):
    wire.ask(b"GOWAVE 900\r\n")
    _, answer = query(wire, b"WAVE?\r\n")
    assert 500 <= float(answer) < 900
    settled(wire)
    assert query(wire, b"WAVE?\r\n") == (b"WAVE?\r\n", b"900\r\n")


def test_esr_says_the_motion_ended_once_and_is_cleared_when_read(wire):
    wire.ask(b"GOWAVE 700\r\n")
    assert wire.ask(b"*OPC\r\n") == b"*OPC\r\n"
    assert query(wire, b"*ESR?\r\n") == (b"*ESR?\r\n", b"0\r\n")  # still on the way
    settled(wire)
    assert query(wire, b"*ESR?\r\n") == (b"*ESR?\r\n", b"0\r\n")  # read once


def test_gratings_filters_and_shutter(wire):
    assert query(wire, b"GRAT?\r\n") == (b"GRAT?\r\n", b"1,1200,VIS\r\n")
    assert wire.ask(b"GRAT 2\r\n") == b"GRAT 2\r\n"
    settled(wire)
    assert query(wire, b"GRAT?\r\n") == (b"GRAT?\r\n", b"2,600,NIR\r\n")
    assert wire.ask(b"FILTER 3\r\n") == b"FILTER 3\r\n"
    settled(wire)
    assert query(wire, b"FILTER?\r\n") == (b"FILTER?\r\n", b"3\r\n")
    assert query(wire, b"SHUTTER?\r\n") == (b"SHUTTER?\r\n", b"C\r\n")
    assert wire.ask(b"SHUTTER O\r\n") == b"SHUTTER O\r\n"
    assert query(wire, b"SHUTTER?\r\n") == (b"SHUTTER?\r\n", b"O\r\n")


def test_units_and_identity(wire):
    assert wire.ask(b"UNITS NM\r\n") == b"UNITS NM\r\n"
    assert query(wire, b"UNITS?\r\n") == (b"UNITS?\r\n", b"NM\r\n")
    assert query(wire, b"INFO?\r\n") == (b"INFO?\r\n", b"CS260B,SN 00471,VER 1.08\r\n")


def test_abort_stops_the_drive_where_it_is(wire):
    wire.ask(b"GOWAVE 1200\r\n")
    assert wire.ask(b"ABORT\r\n") == b"ABORT\r\n"
    settled(wire)
    stopped = float(query(wire, b"WAVE?\r\n")[1])
    assert 500 <= stopped < 1200


@pytest.mark.parametrize(("statement", "code"), [
    (b"GOWAVE 2400\r\n", b"3\r\n"),  # beyond grating 1's span: destination not allowed
    (b"FILTER 9\r\n", b"2\r\n"),  # bad parameter
    (b"SHUTTER X\r\n", b"2\r\n"),
    (b"GOWAVE fast\r\n", b"2\r\n"),
    (b"GOTOWAVE 500\r\n", b"1\r\n"),  # not understood
])
def test_a_refused_statement_leaves_its_error_code_for_error_query_once(wire, statement, code):
    assert wire.ask(statement) == statement
    assert query(wire, b"ERROR?\r\n") == (b"ERROR?\r\n", code)
    assert query(wire, b"ERROR?\r\n") == (b"ERROR?\r\n", b"0\r\n")
    assert query(wire, b"WAVE?\r\n") == (b"WAVE?\r\n", b"500\r\n")  # nothing moved


def test_message_ids_name_the_statements():
    assert message_id(b"GOWAVE 500\r\n") == "GOWAVE <nm>"
    assert message_id(b"*ESR?\r\n") == "*ESR?"
    assert message_id(b"500.01\r\n") is None
