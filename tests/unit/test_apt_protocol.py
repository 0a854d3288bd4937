"""The Thorlabs APT simulator (KDC101 with a linear stage) on the wire: bytes sent, bytes received.

Frames as the Thorlabs "Host-Controller Communications Protocol" lays them out: a 6-byte header
(message id little-endian, p1, p2, destination, source; destination | 0x80 when a data block
follows, p1/p2 then being its length), host 0x01, single-channel cube 0x50. The move to 1 mm
and the status request are the lab reference's examples (1 mm = 25 600 counts = 0x6400).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

import pytest

from device_servers.apt.protocol import APT_FRAMING
from simulators.apt import AptSimulator
from simulators.core import run_in_thread
from tangolab.scripting import wait_until
from tests.wire import Wire

ENABLED_SETTLED = bytes.fromhex("00 20 00 80")  # status bits 0x80002000: channel enabled, settled


@pytest.fixture
def sim() -> AptSimulator:
    return AptSimulator(start=1.0, seed=1)


@pytest.fixture
def wire(sim: AptSimulator) -> Iterator[Wire]:
    with run_in_thread(sim) as running, Wire(running.port, APT_FRAMING) as connection:
        yield connection


# -- the reference's examples ------------------------------------------------------------------


def test_move_to_1_mm_is_answered_unasked_by_move_completed_at_25600_counts(wire, sim):
    sim.speed = 4.0  # 1 mm at 1 mm/s: a second of simulated time
    wire.send(bytes.fromhex("53 04 06 00 d0 01 01 00 00 64 00 00"))  # MOVE_ABSOLUTE ch 1 to 25 600
    assert wire.receive() == (
        bytes.fromhex("64 04 0e 00 81 50")  # MOVE_COMPLETED, 14 data bytes, to the host from the cube
        + bytes.fromhex("01 00  00 64 00 00  00 00  00 00") + ENABLED_SETTLED
    )


def test_status_request_gives_position_encoder_count_and_bits(wire):
    assert wire.ask(bytes.fromhex("80 04 00 00 50 01")) == (  # MOT_REQ_STATUSUPDATE
        bytes.fromhex("81 04 0e 00 81 50")  # MOT_GET_STATUSUPDATE
        + bytes.fromhex("00 00  00 00 00 00  00 00 00 00") + ENABLED_SETTLED
    )


def test_dc_status_request_as_the_kdc101_documents_it(wire):
    assert wire.ask(bytes.fromhex("90 04 01 00 50 01")) == (  # MOT_REQ_DCSTATUSUPDATE ch 1
        bytes.fromhex("91 04 0e 00 81 50 01 00  00 00 00 00  00 00  00 00") + ENABLED_SETTLED
    )


# -- the manual's other messages ---------------------------------------------------------------


def test_start_up_messages_get_no_reply(wire, sim):
    wire.send(bytes.fromhex("18 00 00 00 50 01"))  # HW_NO_FLASH_PROGRAMMING
    wire.send(bytes.fromhex("23 02 00 00 50 01"))  # MOD_IDENTIFY: the LED flashes
    assert wire.silent()
    assert sim.identified == 1


def test_hardware_info(wire):
    reply = wire.ask(bytes.fromhex("05 00 00 00 50 01"))  # HW_REQ_INFO
    assert reply[:6] == bytes.fromhex("06 00 54 00 81 50")  # HW_GET_INFO, 84 data bytes
    serial, model = struct.unpack_from("<l8s", reply, 6)
    assert str(serial).startswith("27") and model.rstrip(b"\0") == b"KDC101"  # K-Cube DC serials begin 27
    assert struct.unpack_from("<H", reply, 6 + 82)[0] == 1  # one channel


def test_channel_enable_state(wire, sim):
    wire.send(bytes.fromhex("10 02 01 02 50 01"))  # MOD_SET_CHANENABLESTATE ch 1 disabled
    assert wire.ask(bytes.fromhex("11 02 01 00 50 01")) == bytes.fromhex("12 02 01 02 01 50")
    wire.send(bytes.fromhex("10 02 01 01 50 01"))  # enabled
    assert wire.ask(bytes.fromhex("11 02 01 00 50 01")) == bytes.fromhex("12 02 01 01 01 50")


def test_velocity_parameters_in_apt_units(wire):
    # 1 mm/s = 25 600 counts/s × (2048 / 6e6 s) × 65536 = 572 662; 5 mm/s² → 977
    assert wire.ask(bytes.fromhex("14 04 01 00 50 01")) == bytes.fromhex(
        "15 04 0e 00 81 50 01 00  00 00 00 00  d1 03 00 00  f6 bc 08 00"
    )
    # SET_VELPARAMS: 2 mm/s (1 145 325) and 10 mm/s² asked: the acceleration is capped at 5 mm/s²
    wire.send(bytes.fromhex("13 04 0e 00 d0 01 01 00  00 00 00 00  a3 07 00 00  ed 79 11 00"))
    assert wire.ask(bytes.fromhex("14 04 01 00 50 01"))[6:] == bytes.fromhex(
        "01 00  00 00 00 00  d1 03 00 00  ed 79 11 00"
    )


def test_home_runs_to_the_reverse_switch_and_answers_move_homed(wire, sim):
    wire.send(bytes.fromhex("43 04 01 00 50 01"))  # MOVE_HOME ch 1
    assert wire.receive() == bytes.fromhex("44 04 01 00 01 50")  # MOVE_HOMED ch 1
    status = wire.ask(bytes.fromhex("90 04 01 00 50 01"))
    position, bits = struct.unpack_from("<l", status, 8)[0], struct.unpack_from("<L", status, 16)[0]
    assert position == 0 and bits & 0x400  # homed
    assert sim.x == pytest.approx(0.5 * 25_600)  # backed off the switch by the home offset


def test_profiled_stop_brakes_within_the_acceleration_and_answers_move_stopped(wire, sim):
    wire.send(bytes.fromhex("53 04 06 00 d0 01 01 00 00 00 05 00"))  # to 12.8 mm
    wait_until(lambda: sim.velocity >= 25_600, 5, what="full speed")
    # MOVE_STOP ch 1 profiled, and in the same packet a status request: where the stop began
    wire.send(bytes.fromhex("65 04 01 02 50 01" "90 04 01 00 50 01"))
    at_stop = struct.unpack_from("<l", wire.receive(), 8)[0]
    stopped = wire.receive()
    assert stopped[:6] == bytes.fromhex("66 04 0e 00 81 50")  # MOVE_STOPPED
    position = struct.unpack_from("<l", stopped, 8)[0]
    assert 0 < position - at_stop <= 0.1 * 25_600 + 2  # v²/2a = (1 mm/s)² / (2 × 5 mm/s²) = 0.1 mm


def test_immediate_stop(wire, sim):
    wire.send(bytes.fromhex("53 04 06 00 d0 01 01 00 00 00 05 00"))
    wait_until(lambda: sim.position > 1000, 5, what="under way")
    wire.send(bytes.fromhex("65 04 01 01 50 01"))  # MOVE_STOP, immediate
    stopped = wire.receive()
    assert stopped[:2] == bytes.fromhex("66 04") and struct.unpack_from("<L", stopped, 16)[0] & 0x30 == 0


def test_a_limit_switch_stops_the_move_and_shows_in_the_status_bits():
    sim = AptSimulator(start=50.8, speed=2.0)  # 0.2 mm below the forward switch, not homed
    with run_in_thread(sim) as running:
        wire = Wire(running.port, APT_FRAMING)
        wire.send(bytes.fromhex("53 04 06 00 d0 01 01 00 00 64 00 00"))  # 1 mm further: past the switch
        stopped = wire.receive()
        assert stopped[:2] == bytes.fromhex("66 04")  # MOVE_STOPPED, not COMPLETED
        position, bits = struct.unpack_from("<l", stopped, 8)[0], struct.unpack_from("<L", stopped, 16)[0]
        assert position == pytest.approx(0.2 * 25_600, abs=2)
        assert bits & 0x1 and not bits & 0x2  # forward (CW) hardware limit
        wire.socket.close()


def test_a_relative_move_is_answered_unasked_by_move_completed(wire, sim):
    sim.speed = 4.0
    wire.send(bytes.fromhex("48 04 06 00 d0 01 01 00 00 32 00 00"))  # MOVE_RELATIVE ch 1 by 12 800 (0.5 mm)
    completed = wire.receive()
    assert completed[:6] == bytes.fromhex("64 04 0e 00 81 50")  # MOVE_COMPLETED
    assert struct.unpack_from("<l", completed, 8)[0] == 12_800


def test_update_messages_come_every_100_ms_between_start_and_stop(wire):
    wire.send(bytes.fromhex("11 00 00 00 50 01"))  # HW_START_UPDATEMSGS
    for _ in range(3):
        update = wire.receive()
        assert update[:6] == bytes.fromhex("91 04 0e 00 81 50")  # MOT_GET_DCSTATUSUPDATE, unasked
        wire.send(bytes.fromhex("92 04 00 00 50 01"))  # server alive
    wire.send(bytes.fromhex("12 00 00 00 50 01"))  # HW_STOP_UPDATEMSGS
    wire.send(bytes.fromhex("11 02 01 00 50 01"))  # then a request: updates sent before the stop come first
    while (frame := wire.receive())[:2] == bytes.fromhex("91 04"):
        pass
    assert frame == bytes.fromhex("12 02 01 01 01 50")
    assert wire.silent(0.3)


def test_without_server_alive_the_cube_stops_answering_status_after_50(wire):
    request = bytes.fromhex("90 04 01 00 50 01")
    for _ in range(50):
        wire.ask(request)
    wire.send(request)
    assert wire.silent()
    wire.send(bytes.fromhex("92 04 00 00 50 01"))  # MOT_ACK_DCSTATUSUPDATE
    assert wire.ask(request)[:2] == bytes.fromhex("91 04")


# -- faults --------------------------------------------------------------------------------------


def test_address_fault_answers_from_another_source(wire, sim):
    sim.faults.add("address")
    assert wire.ask(bytes.fromhex("11 02 01 00 50 01")) == bytes.fromhex("12 02 01 01 01 21")


def test_apt_has_no_checksum_to_spoil(sim):
    assert sim.control("checksum on").startswith("ERROR")
    assert sim.control("truncate on") == "OK"


def test_a_stalled_motor_reports_a_motion_error(wire, sim):
    assert sim.control("stall on") == "OK"
    wire.send(bytes.fromhex("53 04 06 00 d0 01 01 00 00 64 00 00"))
    stopped = wire.receive()  # after 0.5 s without following
    assert stopped[:2] == bytes.fromhex("66 04") and struct.unpack_from("<L", stopped, 16)[0] & 0x4000
    sim.control("clear")
    wire.send(bytes.fromhex("53 04 06 00 d0 01 01 00 00 00 00 00"))  # a new move clears the error
    assert not struct.unpack_from("<L", wire.receive(), 16)[0] & 0x4000
