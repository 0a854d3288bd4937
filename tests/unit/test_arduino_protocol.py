"""The Arduino box simulator on the wire: MIN frames as the MIN protocol's reference code lays
them out (header AA AA AA, ID/control, sequence, length, payload, CRC-32 most significant byte
first, end 55, a 55 stuffed after any two AA), with MIN's transport and the original sketch's
ten-letter commands. The CRCs below were worked out from the CRC-32 definition (check value of
"123456789": CBF43926), not by the code under test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from device_servers.arduino.protocol import FRAMING, Frame, encode
from simulators import run_in_thread
from simulators.arduino import ArduinoSimulator
from tangolab.scripting import wait_until
from tests.wire import Wire

RESET = bytes.fromhex("aa aa aa fe 00 00 40 1b 87 c8 55")
GET_ARDSTA_0 = bytes.fromhex("aa aa aa 81 00 0a 67 65 74 5f 61 72 64 73 74 61 9b c0 0b 73 55")
ACK_1 = bytes.fromhex("aa aa aa ff 01 01 01 90 9f b2 0d 55")


@pytest.fixture
def sim() -> ArduinoSimulator:
    box = ArduinoSimulator(boot=0.15, seed=1)
    for name in box.readings():
        box.freeze(name)  # 21.50 and 21.25 °C, 45.20 and 44.80 %
    return box


@pytest.fixture
def wire(sim) -> Iterator[Wire]:
    with run_in_thread(sim) as running, Wire(running.port, FRAMING) as connection:
        wait_until(lambda: sim.resets == 1 and not sim.booting, 10, what="the board started")
        yield connection


def test_byte_stuffing_after_two_header_bytes():
    # a non-transport frame, ID 1, payload AA AA AA: a 55 follows the first two AA of the body
    assert encode(Frame(0x01, b"\xaa\xaa\xaa")) == bytes.fromhex("aa aa aa 01 03 aa aa 55 aa 5f f3 b7 60 55")


def test_the_board_hears_nothing_while_it_starts_after_the_port_opened(sim):
    with run_in_thread(sim) as running, Wire(running.port, FRAMING) as wire:
        wire.send(GET_ARDSTA_0)
        assert wire.silent(0.1)  # under the bootloader
        wait_until(lambda: not sim.booting, 10, what="the board started")
        # MIN's host sends the unacknowledged frame again: now it is taken
        assert wire.ask(GET_ARDSTA_0) == ACK_1
        assert wire.receive() == bytes.fromhex(
            "aa aa aa 81 00 28 30 3a 73 74 61 74 75 73 3d 32 31 2e 35 30 3b 32 31 2e 32 35 3b 34 35 2e 32 30 3b 34 34"
            " 2e 38 30 3b 30 3b 30 3b 30 3b 30 4d b5 d1 81 55"
        )  # "0:status=21.50;21.25;45.20;44.80;0;0;0;0"


def test_a_switch_is_set_then_read_back(wire, sim):
    wire.send(RESET)
    assert wire.ask(GET_ARDSTA_0) == ACK_1
    wire.receive()  # the status
    wire.send(bytes.fromhex("aa aa aa ff 01 01 01 90 9f b2 0d 55"))  # the host's ACK of the box's frame 0
    assert wire.ask(bytes.fromhex("aa aa aa 81 01 0a 73 65 74 5f 73 77 30 33 6f 6e a5 a2 89 50 55")) == bytes.fromhex(
        "aa aa aa ff 02 01 02 0b d0 5d ee 55"
    )  # set_sw03on: the ACK alone
    assert wire.ask(bytes.fromhex("aa aa aa 81 02 0a 67 65 74 5f 73 77 30 33 73 74 e7 6c de 15 55")) == bytes.fromhex(
        "aa aa aa ff 03 01 03 7d 15 07 4f 55"
    )  # get_sw03st
    assert wire.receive() == bytes.fromhex("aa aa aa 81 01 08 32 3a 73 77 30 33 3d 31 69 7d 94 d5 55")  # "2:sw03=1"
    assert wire.ask(bytes.fromhex("aa aa aa 81 03 0a 73 65 74 5f 73 77 30 33 6f 66 47 42 9f fd 55")) == bytes.fromhex(
        "aa aa aa ff 04 01 04 e6 3e 84 69 55"
    )  # set_sw03of
    assert sim.switches == [False, False, False, False]

def test_one_sensor_at_a_time(wire):
    wire.send(RESET)
    assert wire.ask(bytes.fromhex("aa aa aa 81 00 0a 67 65 74 5f 74 65 6d 70 30 31 9a 2b f9 ef 55")) == ACK_1
    assert wire.receive() == bytes.fromhex(
        "aa aa aa 81 00 0e 30 3a 74 65 6d 70 30 31 3d 32 31 2e 35 30 4b 43 ee 00 55"
    )  # "0:temp01=21.50"
    assert wire.ask(bytes.fromhex("aa aa aa 81 01 0a 67 65 74 5f 68 75 6d 64 30 32 97 5c ba f4 55")) == bytes.fromhex(
        "aa aa aa ff 02 01 02 0b d0 5d ee 55"
    )
    assert wire.receive() == bytes.fromhex(
        "aa aa aa 81 01 0e 31 3a 68 75 6d 64 30 32 3d 34 34 2e 38 30 12 34 88 6e 55"
    )  # "1:humd02=44.80"


def test_a_frame_taken_already_is_acknowledged_again_and_not_carried_out_twice(wire):
    wire.send(RESET)
    assert wire.ask(GET_ARDSTA_0) == ACK_1
    wire.receive()
    assert wire.ask(GET_ARDSTA_0) == ACK_1  # a retransmission the box has seen: the ACK alone
    assert wire.silent(0.2)


def test_a_frame_whose_crc_disagrees_is_dropped_unanswered(wire):
    wire.send(RESET)
    wire.send(bytes.fromhex("aa aa aa 81 00 0a 67 65 74 5f 61 72 64 73 74 61 9b c0 0b 74 55"))
    assert wire.silent(0.3)
    assert wire.ask(GET_ARDSTA_0) == ACK_1  # still expects frame 0
