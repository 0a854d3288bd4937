"""The MKS PDR900 simulator on the wire: bytes sent, bytes received.

The exchanges are those of MKS's 900-series operation manuals ("Communication Protocol", query
and command lists): `@<address><command>?;FF` or `@<address><command>!<value>;FF`, answered
`@<address>ACK<value>;FF` or `@<address>NAK<code>;FF`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from device_servers.core.framing import Lines
from simulators import run_in_thread
from simulators.pdr900 import Pdr900Simulator
from tests.wire import Wire

TORR = 1013.25 / 760  # mbar


@pytest.fixture
def sim() -> Pdr900Simulator:
    """A controller at 1.00E-3 Torr, its reading held there."""
    simulator = Pdr900Simulator(seed=1, pressure=1e-3 * TORR)
    simulator.freeze("pressure")
    return simulator


@pytest.fixture
def wire(sim: Pdr900Simulator) -> Iterator[Wire]:
    with run_in_thread(sim) as running, Wire(running.port, Lines(b";FF")) as connection:
        yield connection


# -- the manual's exchanges ------------------------------------------------------------------------


def test_pressure_query_in_torr(wire):
    assert wire.ask(b"@253PR1?;FF") == b"@253ACK1.00E-3;FF"


def test_an_unknown_address_is_found_through_the_broadcast_address(wire):
    assert wire.ask(b"@254AD?;FF") == b"@253ACK253;FF"


def test_nak_codes(wire):
    assert wire.ask(b"@253XYZ?;FF") == b"@253NAK160;FF"  # unrecognized message
    assert wire.ask(b"@253U!FURLONG;FF") == b"@253NAK169;FF"  # invalid argument
    assert wire.ask(b"@253AD!300;FF") == b"@253NAK172;FF"  # value out of range
    assert wire.ask(b"@253PR1*;FF") == b"@253NAK175;FF"  # command/query character invalid


def test_controller_serial_number_and_firmware(wire):
    assert wire.ask(b"@253SNC?;FF") == b"@253ACK1734201956;FF"
    assert wire.ask(b"@253FVC?;FF") == b"@253ACK1.07;FF"


def test_unit_set_to_mbar_changes_the_readings(wire):
    assert wire.ask(b"@253U?;FF") == b"@253ACKTORR;FF"
    assert wire.ask(b"@253U!MBAR;FF") == b"@253ACKMBAR;FF"
    assert wire.ask(b"@253PR1?;FF") == b"@253ACK1.33E-3;FF"
    assert wire.ask(b"@253PR4?;FF") == b"@253ACK1.333E-3;FF"


def test_letters_in_either_case(wire):
    assert wire.ask(b"@253pr1?;FF") == b"@253ACK1.00E-3;FF"


def test_the_transducers_identification_and_the_other_pressure_queries(wire):
    assert wire.ask(b"@253SN?;FF") == b"@253ACK1722001345;FF"
    assert wire.ask(b"@253FV?;FF") == b"@253ACK1.20;FF"
    assert wire.ask(b"@253MD?;FF") == b"@253ACK972B;FF"
    assert wire.ask(b"@253MF?;FF") == b"@253ACKMKS;FF"
    assert wire.ask(b"@253DT?;FF") == b"@253ACKDUALMAG;FF"
    assert wire.ask(b"@253PR2?;FF") == b"@253ACK1.00E-3;FF"
    assert wire.ask(b"@253PR3?;FF") == b"@253ACK1.00E-3;FF"


def test_other_addresses_get_no_answer_and_255_is_obeyed_silently(wire):
    wire.send(b"@001PR1?;FF")
    assert wire.silent()
    wire.send(b"@255U!PASCAL;FF")
    assert wire.silent()
    assert wire.ask(b"@253U?;FF") == b"@253ACKPASCAL;FF"


def test_transducer_status_shows_a_sensor_failure(wire, sim):
    assert wire.ask(b"@253T?;FF") == b"@253ACKO;FF"
    assert sim.control("sensor error") == "OK"
    assert wire.ask(b"@253T?;FF") == b"@253ACKM;FF"
    assert sim.control("sensor off").startswith("ERROR"), "the PDR900 reports only a failure"


def test_an_address_of_its_own(wire, sim):
    assert wire.ask(b"@253AD!017;FF") == b"@017ACK017;FF"
    assert wire.ask(b"@017PR1?;FF") == b"@017ACK1.00E-3;FF"
    wire.send(b"@253PR1?;FF")
    assert wire.silent()


def test_address_fault_answers_as_another_gauge_and_truncate_cuts_short(wire, sim):
    sim.faults.add("address")
    assert wire.ask(b"@253PR1?;FF") == b"@001ACK1.00E-3;FF"
    sim.faults.clear()  # not sim.clear(): the reading stays held (the chamber moves on, 5 % a second)
    sim.faults.add("truncate")
    wire.socket.sendall(b"@253PR1?;FF")
    assert wire.socket.recv(100) == b"@253ACK1"
    assert sim.control("checksum on").startswith("ERROR"), "the protocol has no checksum"


def test_pumps_down_and_leaks(sim):
    sim.unfreeze("pressure")
    for _ in range(6000):
        sim.step(0.1)
    assert sim.pressure < 1e-4
    sim.control("leak on")
    for _ in range(100):
        sim.step(0.1)
    assert sim.pressure > 8e-3
