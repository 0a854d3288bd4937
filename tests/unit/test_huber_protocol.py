"""The Huber simulator on the wire: the LAI frames of Huber's data communication chapter, byte
for byte, checksums included (the manual's own examples, quoted as it prints them)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from device_servers.huber.protocol import FRAMING
from simulators import run_in_thread
from simulators.huber import HuberSimulator
from tests.wire import Wire


@pytest.fixture
def sim() -> HuberSimulator:
    return HuberSimulator(seed=1)


@pytest.fixture
def wire(sim) -> Iterator[Wire]:
    with run_in_thread(sim) as running, Wire(running.port, FRAMING) as connection:
        yield connection


def test_verify_command_from_the_manual(wire):
    # manual, command "V": master sends [M01V07C6\r; the checksum is formed from bytes 1 to 7:
    # 5Bh + 4Dh + 30h + 31h + 56h + 30h + 37h = 1C6h -> C6. The slave responds [S01V14Huber ControlC1\r
    assert 0x5B + 0x4D + 0x30 + 0x31 + 0x56 + 0x30 + 0x37 == 0x1C6
    assert wire.ask(b"[M01V07C6\r") == b"[S01V14Huber ControlC1\r"


def test_general_command_sets_minus_four_degrees_as_the_manual_shows(wire, sim):
    # manual, command "G": "[M01G0D**FE700A\r" sets -4.00 °C (FE70), mode and alarm unchanged;
    # the slave responds e.g. "[S01G15O0FE7009A4C504E7\r": off, no alarm, set-point FE70,
    # internal 24.68 °C (09A4), external C504 = -151.00 °C = no sensor
    sim.bath = 24.68
    sim.freeze("bath")
    assert wire.ask(b"[M01G0D**FE700A\r") == b"[S01G15O0FE7009A4C504E7\r"
    assert sim.setpoint == -4.0


def test_status_query_of_the_original_system_changes_nothing(wire, sim):
    # the original system's status query: [M01G0D******C0\r (every field '*')
    reply = wire.ask(b"[M01G0D******C0\r")
    assert re.fullmatch(rb"\[S01G15O0[0-9A-F]{4}[0-9A-F]{4}C504[0-9A-F]{2}\r", reply)
    assert reply[9:13] == b"07D0"  # the set-point still 20.00 °C


def test_mode_characters_of_the_original_system(wire):
    # [M01G0D{C|I|O}*****: C circulation (pump), I internal control (pump and cooling), O off
    for mode in b"CIO":
        request = b"[M01G0D" + bytes([mode]) + b"*****"
        request += b"%02X\r" % (sum(request) & 0xFF)
        assert wire.ask(request)[7] == mode


def test_limits_command(wire):
    # manual, command "L": [M01L0F********1B\r -> four 16-bit limits from the eighth byte on
    # (the manual's KISS example answers [S01L17F4484E20F4484E2045\r: -30 to 200 °C);
    # the Unichiller answers -20.00 (F830) to 40.00 °C (0FA0)
    assert wire.ask(b"[M01L0F********1B\r") == b"[S01L17F8300FA0F8300FA053\r"


def test_a_frame_with_a_wrong_checksum_gets_no_reply(wire):
    # the unit answers only a correctly received command
    wire.send(b"[M01G0D******C1\r")
    assert wire.silent(0.5)
    assert wire.ask(b"[M01V07C6\r") == b"[S01V14Huber ControlC1\r"  # and goes on answering


def test_frames_for_another_address_or_of_a_wrong_length_get_no_reply(wire):
    wire.send(b"[M02V07C7\r")
    assert wire.silent(0.5)
    wire.send(b"[M01V08C7\r")
    assert wire.silent(0.5)


def test_cooling_pulls_the_bath_to_the_setpoint_and_pumping_lets_it_drift_to_ambient():
    sim = HuberSimulator(tau=10.0, ambient_tau=50.0, seed=2)
    sim.setpoint, sim.mode = 5.0, "I"
    for _ in range(1000):  # 100 s, ten time constants
        sim.step(0.1)
    assert sim.bath == pytest.approx(5.0, abs=0.01)
    sim.mode = "C"
    for _ in range(500):  # one ambient time constant
        sim.step(0.1)
    assert 5.0 < sim.bath < 22.0 and sim.bath == pytest.approx(22 - 17 / 2.718, abs=0.2)


def test_spoilt_checksum_and_foreign_address_faults(wire, sim):
    sim.faults.add("checksum")
    assert wire.ask(b"[M01V07C6\r") == b"[S01V14Huber ControlC2\r"
    sim.faults = {"address"}
    assert wire.ask(b"[M01V07C6\r") == b"[S02V14Huber ControlC2\r"


def test_control_port_alarm(sim):
    assert sim.control("alarm on") == "OK"
    assert sim.alarm
    assert sim.control("clear") == "OK"
    assert not sim.alarm
