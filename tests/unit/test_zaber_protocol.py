"""The Zaber Binary simulator on the wire: bytes sent, bytes received.

The Binary Protocol Manual writes messages as [device, command, data] and never as raw bytes;
each one here is that message in the manual's own layout (device, command, then the data
least significant byte first, negative data in two's complement), written out by hand:

    [0, 1, 0] →           00 01 00 00 00 00   home every device (the manual's Conventions example)
    ← [1, 1, 0]           01 01 00 00 00 00   device 1 is home: final position 0
    [1, 20, 10000] →      01 14 10 27 00 00   the Quick Start's Move Absolute 10000
    [1, 40, 72] →         01 28 48 00 00 00   Set Device Mode's example: knob off (8) + message IDs (64)
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from device_servers.zaber.protocol import FRAMING
from simulators import run_in_thread
from simulators.zaber import ZaberSimulator
from tangolab.scripting import wait_until
from tests.wire import Wire


@pytest.fixture
def sim() -> ZaberSimulator:
    return ZaberSimulator(devices=2, start=20_000, seed=1)


@pytest.fixture
def wire(sim: ZaberSimulator) -> Iterator[Wire]:
    with run_in_thread(sim) as running, Wire(running.port, FRAMING, timeout=15) as connection:
        yield connection


def fast(wire: Wire) -> None:
    """Target speed 32767 (about 14.6 mm/s) on every device, so moves end within a test's patience."""
    wire.send(bytes.fromhex("00 2a ff 7f 00 00"))
    assert sorted([wire.receive(), wire.receive()]) == [bytes.fromhex("01 2a ff 7f 00 00"), bytes.fromhex("02 2a ff 7f 00 00")]


# -- the manual's examples --------------------------------------------------------------------


def test_home_all_devices_each_replies_with_its_number_when_it_is_home(wire):
    fast(wire)
    wire.send(bytes.fromhex("00 01 00 00 00 00"))
    replies = sorted([wire.receive(), wire.receive()])
    assert replies == [bytes.fromhex("01 01 00 00 00 00"), bytes.fromhex("02 01 00 00 00 00")]


def test_move_absolute_10000_replies_at_the_end_with_the_final_position(wire):
    assert wire.ask(bytes.fromhex("01 2a e8 03 00 00")) == bytes.fromhex("01 2a e8 03 00 00")  # speed 1000: ~1 s
    wire.send(bytes.fromhex("01 14 10 27 00 00"))
    assert wire.ask(bytes.fromhex("01 36 00 00 00 00")) == bytes.fromhex("01 36 14 00 00 00")  # status 20: moving
    assert wire.receive() == bytes.fromhex("01 14 10 27 00 00")  # later, unasked
    assert wire.ask(bytes.fromhex("01 3c 00 00 00 00")) == bytes.fromhex("01 3c 10 27 00 00")  # position 10000
    assert wire.ask(bytes.fromhex("01 36 00 00 00 00")) == bytes.fromhex("01 36 00 00 00 00")  # idle


def test_set_device_mode_example_72_and_the_home_status_bit(wire):
    assert wire.ask(bytes.fromhex("01 28 48 00 00 00")) == bytes.fromhex("01 28 48 00 00 00")
    fast(wire)
    wire.send(bytes.fromhex("01 01 00 00 00 00"))
    assert wire.receive() == bytes.fromhex("01 01 00 00 00 00")
    # Return Setting 40 replies as command 40; bit 7 (128) is now set: homed
    assert wire.ask(bytes.fromhex("01 35 28 00 00 00")) == bytes.fromhex("01 28 c8 00 00 00")


# -- errors ----------------------------------------------------------------------------------


def test_a_target_beyond_the_maximum_position_is_error_20_and_nothing_moves(wire):
    assert wire.ask(bytes.fromhex("01 14 60 ae 0a 00")) == bytes.fromhex("01 ff 14 00 00 00")  # 700000 > 672255
    assert wire.ask(bytes.fromhex("01 3c 00 00 00 00")) == bytes.fromhex("01 3c 20 4e 00 00")  # still 20000


def test_negative_data_is_twos_complement_and_a_relative_move_below_zero_is_error_21(wire):
    assert wire.ask(bytes.fromhex("01 15 00 00 ff ff")) == bytes.fromhex("01 ff 15 00 00 00")  # by -65536


def test_an_unknown_command_is_error_64_and_an_unknown_setting_error_53(wire):
    assert wire.ask(bytes.fromhex("01 63 00 00 00 00")) == bytes.fromhex("01 ff 40 00 00 00")
    assert wire.ask(bytes.fromhex("01 35 63 00 00 00")) == bytes.fromhex("01 ff 35 00 00 00")


def test_a_speed_beyond_512_times_64_minus_1_is_error_42(wire):
    assert wire.ask(bytes.fromhex("01 2a 00 80 00 00")) == bytes.fromhex("01 ff 2a 00 00 00")
    assert wire.ask(bytes.fromhex("01 35 2a 00 00 00")) == bytes.fromhex("01 2a 6a 0b 00 00")  # still 2922


def test_a_device_not_on_the_chain_stays_silent_and_echo_answers(wire):
    wire.send(bytes.fromhex("05 37 01 02 03 04"))
    assert wire.ask(bytes.fromhex("02 37 01 02 03 04")) == bytes.fromhex("02 37 01 02 03 04")


def test_acceleration_and_travel_are_set_and_restore_settings_brings_the_factory_ones_back(wire):
    assert wire.ask(bytes.fromhex("01 2b 64 00 00 00")) == bytes.fromhex("01 2b 64 00 00 00")  # acceleration 100
    assert wire.ask(bytes.fromhex("01 2c 00 00 01 00")) == bytes.fromhex("01 2c 00 00 01 00")  # travel 65536
    assert wire.ask(bytes.fromhex("01 24 00 00 00 00")) == bytes.fromhex("01 24 00 00 00 00")  # restore
    assert wire.ask(bytes.fromhex("01 35 2c 00 00 00")) == bytes.fromhex("01 2c ff 41 0a 00")  # 672255 again


# -- motion ----------------------------------------------------------------------------------


def test_stop_replies_when_the_stage_is_still_and_the_move_gets_no_reply(wire, sim):
    fast(wire)
    wire.send(bytes.fromhex("01 14 00 00 0a 00"))  # to 655360
    assert wire.ask(bytes.fromhex("01 36 00 00 00 00")) == bytes.fromhex("01 36 14 00 00 00")
    wait_until(lambda: wire.ask(bytes.fromhex("01 3c 00 00 00 00")) != bytes.fromhex("01 3c 20 4e 00 00"), 10,
               what="under way from 20000")
    wire.send(bytes.fromhex("01 17 00 00 00 00"))
    stopped = wire.receive()
    assert stopped[:2] == bytes.fromhex("01 17")
    position = int.from_bytes(stopped[2:], "little", signed=True)
    assert 20_000 < position < 655_360
    assert wire.ask(bytes.fromhex("01 3c 00 00 00 00")) == bytes.fromhex("01 3c") + stopped[2:]
    assert wire.silent()  # the interrupted move never replies


def test_a_stop_at_full_speed_with_the_default_acceleration_takes_well_under_a_fifth_of_a_second(sim):
    slide = sim.slides[1]
    slide.velocity = slide.top_speed  # the default speed, 2922 × 9.375 microsteps/s
    assert sim.stopping_time(1) < 0.2  # physics: speed / deceleration, not the wall clock


def test_disabled_auto_reply_silences_moves_but_not_return_commands(wire):
    fast(wire)
    assert wire.ask(bytes.fromhex("01 28 01 00 00 00")) == bytes.fromhex("01 28 01 00 00 00")
    wire.send(bytes.fromhex("01 14 c0 27 09 00"))  # to 600000, about 2 s
    assert wire.ask(bytes.fromhex("01 36 00 00 00 00")) == bytes.fromhex("01 36 14 00 00 00")
    wire.send(bytes.fromhex("01 28 00 00 00 00"))  # replies off: this one gets none either
    assert wire.ask(bytes.fromhex("01 35 28 00 00 00")) == bytes.fromhex("01 28 00 00 00 00")


def test_reset_loses_the_position_and_the_home_status(wire):
    fast(wire)
    wire.send(bytes.fromhex("01 01 00 00 00 00"))
    assert wire.receive() == bytes.fromhex("01 01 00 00 00 00")
    wire.send(bytes.fromhex("01 00 00 00 00 00"))
    assert wire.ask(bytes.fromhex("01 35 28 00 00 00")) == bytes.fromhex("01 28 00 00 00 00")


# -- faults ----------------------------------------------------------------------------------


def test_the_address_fault_answers_as_a_device_not_on_the_chain(wire, sim):
    sim.faults.add("address")
    assert wire.ask(bytes.fromhex("01 37 05 00 00 00")) == bytes.fromhex("03 37 05 00 00 00")


def test_zaber_binary_has_no_checksum_to_spoil(sim):
    assert sim.control("checksum on").startswith("ERROR")
    assert sim.control("address on") == "OK"
