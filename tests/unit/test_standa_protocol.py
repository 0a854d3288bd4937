"""The Standa 8SMC simulator on the wire: XIMC messages as the libximc protocol chapter lays them out.

Each message is four letters, then the data little-endian, then the data's CRC-16 (MODBUS: the
catalogue's check value of "123456789" is 0x4B37), least significant byte first. The CRCs below
were worked out by hand from that definition, not by the code under test:

    gpos →                  67 70 6f 73                          the position
    ← gpos 0, 0, enc 0      67 70 6f 73 00×20 24 1b              at power-up the counter reads 0
    move 4000 steps + 128 → 6d 6f 76 65 a0 0f 00 00 80 00 00×6 df b7
    ← move                  6d 6f 76 65
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from device_servers.standa.protocol import REPLY_FRAMING, crc16
from simulators import run_in_thread
from simulators.standa import StandaSimulator
from tangolab.scripting import wait_until
from tests.wire import Wire

GPOS_ZERO = bytes.fromhex("67 70 6f 73 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 24 1b")
MOVE_4000_128 = bytes.fromhex("6d 6f 76 65 a0 0f 00 00 80 00 00 00 00 00 00 00 df b7")
FAST = bytes.fromhex("73 6d 6f 76 a0 0f 00 00 00 40 1f 40 1f 32 00 00 00 00 00 00 00 00 00 00 00 00 00 00 6c 26")


@pytest.fixture
def sim() -> StandaSimulator:
    return StandaSimulator(start=3.0, seed=1)


@pytest.fixture
def wire(sim: StandaSimulator) -> Iterator[Wire]:
    with run_in_thread(sim) as running, Wire(running.port, REPLY_FRAMING, timeout=15) as connection:
        yield connection


def still(wire: Wire) -> bool:
    """Whether the move command has ended (MvCmdSts, the status's second byte, without MVCMD_RUNNING)."""
    return not wire.ask(b"gets")[5] & 0x80


def test_the_crc_is_crc16_modbus():
    assert crc16(b"123456789") == 0x4B37


def test_status_at_power_up(wire):
    # MoveSts 0, MvCmdSts 0, PWRSts 3 (normal), position 0, Ipwr 350 mA, Upwr 12.00 V, Iusb 120 mA,
    # Uusb 5.00 V, 31.2 °C, no flags, no switch, 255 free places in the command buffer
    assert wire.ask(b"gets") == bytes.fromhex(
        "67 65 74 73 00 00 03 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00"
        " 5e 01 b0 04 78 00 f4 01 38 01 00 00 00 00 00 00 00 00 ff 00 00 00 00 08 25"
    )
    assert wire.ask(b"gpos") == GPOS_ZERO


def test_settings_reads(wire):
    # engine: 12.00 V, 240 mA, 5000 steps/s, EngineFlags ACCEL_ON, antiplay 50, 1/256 microsteps, 200 steps/rev
    assert wire.ask(b"geng") == bytes.fromhex(
        "67 65 6e 67 b0 04 f0 00 88 13 00 00 00 10 00 32 00 09 c8 00 00 00 00 00 00 00 00 00 00 00 00 00 70 ad"
    )
    # edges: borders are positions (1) and stop left (2) and right (4); 0 to 10000 steps
    assert wire.ask(b"gedg") == bytes.fromhex(
        "67 65 64 67 07 00 00 00 00 00 00 00 10 27 00 00 00 00 00 00 00 00 00 00 e1 e7"
    )
    # move: 1000 steps/s, 2000 steps/s² both ways, antiplay speed 50
    assert wire.ask(b"gmov") == bytes.fromhex(
        "67 6d 6f 76 e8 03 00 00 00 d0 07 d0 07 32 00 00 00 00 00 00 00 00 00 00 00 00 00 00 e1 d3"
    )


def test_settings_writes_are_read_back(wire):
    assert wire.ask(FAST) == b"smov"  # 4000 steps/s, 8000 steps/s²
    assert wire.ask(b"gmov") == bytes.fromhex(
        "67 6d 6f 76 a0 0f 00 00 00 40 1f 40 1f 32 00 00 00 00 00 00 00 00 00 00 00 00 00 00 6c 26"
    )
    assert wire.ask(bytes.fromhex(
        "73 65 64 67 07 00 00 00 00 00 00 00 40 1f 00 00 00 00 00 00 00 00 00 00 f4 47"
    )) == b"sedg"  # right border 8000


def test_a_move_runs_then_ends_at_the_target_to_the_microstep(wire):
    assert wire.ask(FAST) == b"smov"
    assert wire.ask(MOVE_4000_128) == b"move"
    status = wire.ask(b"gets")
    assert status[:4] == b"gets" and len(status) == 54
    assert status[4:6] == bytes.fromhex("01 81")  # moving; MVCMD_MOVE | MVCMD_RUNNING
    wait_until(lambda: still(wire), 15, what="the move's end")
    # 4000 steps and 128/256: a0 0f 00 00, 80 00
    assert wire.ask(b"gpos") == bytes.fromhex(
        "67 70 6f 73 a0 0f 00 00 80 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 8a 17"
    )


def test_a_relative_move_and_the_stops(wire):
    assert wire.ask(FAST) == b"smov"
    assert wire.ask(bytes.fromhex("6d 6f 76 72 90 01 00 00 00 00 00 00 00 00 00 00 a3 7f")) == b"movr"  # by 400
    wait_until(lambda: still(wire), 15, what="the move's end")
    assert wire.ask(b"gpos") == bytes.fromhex(
        "67 70 6f 73 90 01 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 c4 aa"
    )
    assert wire.ask(MOVE_4000_128) == b"move"
    assert wire.ask(b"sstp") == b"sstp"  # decelerates
    assert wire.ask(b"stop") == b"stop"  # halts at once
    assert wire.ask(b"gets")[4:6] == bytes.fromhex("00 05")  # still; MVCMD_STOP, finished without error


def test_home_sets_the_homed_flag_and_zero_makes_it_position_0(wire):
    assert wire.ask(b"home") == b"home"
    assert wire.ask(b"gets")[5] == 0x86  # MVCMD_HOME | MVCMD_RUNNING
    wait_until(lambda: still(wire), 20, what="home")
    status = wire.ask(b"gets")
    assert status[5] == 0x06 and status[39] & 0x20  # Flags (offset 39): STATE_IS_HOMED
    assert wire.ask(b"zero") == b"zero"
    assert wire.ask(b"gpos") == GPOS_ZERO


# -- error replies ---------------------------------------------------------------------------


def test_a_command_the_controller_does_not_know_is_errc(wire):
    assert wire.ask(b"abcd") == b"errc"


def test_data_whose_crc_disagrees_is_errd_and_nothing_moves(wire):
    assert wire.ask(bytes.fromhex("6d 6f 76 65 a0 0f 00 00 80 00 00 00 00 00 00 00 df b8")) == b"errd"
    assert wire.ask(b"gpos") == GPOS_ZERO


def test_a_value_out_of_range_is_errv_and_changes_nothing(wire):
    # uPosition 256 with 256 microsteps a step
    assert wire.ask(bytes.fromhex("6d 6f 76 65 a0 0f 00 00 00 01 00 00 00 00 00 00 c7 17")) == b"errv"
    # 200000 steps/s, beyond the 100000 the controller drives
    assert wire.ask(bytes.fromhex(
        "73 6d 6f 76 40 0d 03 00 00 40 1f 40 1f 32 00 00 00 00 00 00 00 00 00 00 00 00 00 00 4a 18"
    )) == b"errv"
    assert wire.ask(b"gmov")[4:8] == bytes.fromhex("e8 03 00 00")  # still 1000
    assert wire.ask(b"gpos") == GPOS_ZERO


# -- faults ----------------------------------------------------------------------------------


def test_the_checksum_fault_spoils_the_crc_of_replies_with_data(wire, sim):
    assert sim.control("checksum on") == "OK"
    assert wire.ask(b"gpos") == GPOS_ZERO[:-1] + bytes.fromhex("e4")
    assert wire.ask(b"zero") == b"zero"  # four letters alone carry no CRC
    assert sim.control("address on").startswith("ERROR")  # one controller a port: no address
