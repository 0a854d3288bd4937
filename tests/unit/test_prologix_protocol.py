"""The Prologix GPIB-ETHERNET simulator on the wire: bytes sent, bytes received.

The exchanges are those of the Prologix GPIB-ETHERNET Controller User Manual (v1.6.6.0,
section 9, Commands): `++addr 5`, `++addr`, `++auto 1`, `++read eoi`, `++read 10`,
`++read_tmo_ms 500`, `++spoll`, `++ver`... The instruments behind the controller are a small
test double (a meter that answers `*IDN?` at once and `READ?` after 20 ms), since what is
tested here is the controller.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from device_servers.gpib.prologix_protocol import HostMessages
from simulators import run_in_thread
from simulators.gpib import GpibInstrument
from simulators.prologix import PrologixSimulator
from tangolab.scripting import wait_until
from tests.wire import Wire

VERSION_LINE = b"Prologix GPIB-ETHERNET Controller version 01.06.06.00\r\n"


class Meter(GpibInstrument):
    """A test double of a GPIB meter: `*IDN?` at once, `READ?` after 20 ms, `ECHO x` gives x."""

    model = "test meter"

    def handle(self, message: str) -> str | None:
        if message == "*IDN?":
            return f"TEST,METER,{self.address},1.0"
        if message == "READ?":
            return "+1.234E-09"
        if message.startswith("ECHO "):
            return message[5:]
        return None

    def reply_time(self, message: str) -> float:
        return 0.02 if message == "READ?" else 0.0


@pytest.fixture
def sim() -> PrologixSimulator:
    return PrologixSimulator({14: Meter(14), 15: Meter(15)}, seed=1)


@pytest.fixture
def served(sim):
    with run_in_thread(sim) as running:
        yield running


@pytest.fixture
def wire(served) -> Iterator[Wire]:
    wire = Wire(served.port)
    yield wire
    wire.close()


# -- the manual's exchanges ---------------------------------------------------------------------


def test_ver_names_the_controller(wire):
    assert wire.ask(b"++ver\n") == VERSION_LINE


def test_addr_sets_and_queries_the_address(wire):
    wire.send(b"++addr 5\n")  # "++addr 5 - Set primary address to 5": no reply
    assert wire.ask(b"++addr\n") == b"5\r\n"  # "++addr - Query current address"
    wire.send(b"++addr 9 96\r\n")  # primary 9, secondary 0; CR LF ends a command as well as LF
    assert wire.ask(b"++addr\n") == b"9\r\n"


def test_read_after_write_answers_at_once_with_auto_1(wire):
    wire.send(b"++addr 14\n++auto 1\n")
    assert wire.ask(b"++auto\n") == b"1\r\n"
    assert wire.ask(b"*IDN?\n") == b"TEST,METER,14,1.0\n"


def test_with_auto_0_the_reply_comes_on_read_eoi(wire, sim):
    wire.send(b"++addr 14\n++auto 0\n*IDN?\n")
    assert wire.ask(b"++ver\n") == VERSION_LINE  # nothing before: the reply waits in the instrument
    assert wire.ask(b"++read eoi\n") == b"TEST,METER,14,1.0\n"
    assert sim.instruments[14].received == ["*IDN?"]


def test_read_10_reads_until_a_line_feed(wire):
    wire.send(b"++addr 15\n*IDN?\n")
    assert wire.ask(b"++read 10\n") == b"TEST,METER,15,1.0\n"


def test_read_waits_for_the_instruments_conversion_within_read_tmo_ms(wire):
    wire.send(b"++addr 14\n++read_tmo_ms 500\n")
    assert wire.ask(b"++read_tmo_ms\n") == b"500\r\n"
    assert wire.ask(b"READ?\n++read eoi\n") == b"+1.234E-09\n"


def test_a_read_with_nothing_to_say_ends_in_silence_after_read_tmo_ms(wire):
    wire.send(b"++addr 14\n++read_tmo_ms 50\n++read eoi\n")
    assert wire.ask(b"++ver\n") == VERSION_LINE  # the read sent nothing at all, no error text


def test_a_reply_slower_than_read_tmo_ms_is_not_lost(wire):
    wire.send(b"++addr 14\n++read_tmo_ms 1\nREAD?\n++read eoi\n")
    assert wire.ask(b"++ver\n") == VERSION_LINE  # 1 ms: the 20 ms conversion was not ready
    assert wire.ask(b"++read_tmo_ms 500\n++read eoi\n") == b"+1.234E-09\n"  # still in the instrument


def test_escaped_characters_reach_the_instrument_as_data(wire, sim):
    wire.send(b"++addr 14\n")
    assert wire.ask(b"ECHO a\x1b+\x1b+b\x1b\rc\n++read eoi\n") == b"a++b\rc\n"
    assert sim.instruments[14].received == ["ECHO a++b\rc"]


def test_a_message_without_escape_starting_with_plus_plus_is_for_the_controller(wire, sim):
    wire.send(b"++addr 14\n")
    assert wire.ask(b"++IDN?\n") == b"Unrecognized command\r\n"
    assert sim.instruments[14].received == []


def test_spoll_shows_a_waiting_reply_as_mav(wire):
    wire.send(b"++addr 14\n")
    assert wire.ask(b"++spoll\n") == b"0\r\n"
    wire.send(b"*IDN?\n")
    assert wire.ask(b"++spoll\n") == b"16\r\n"
    assert wire.ask(b"++spoll 15\n") == b"0\r\n"


def test_clr_drops_the_instruments_reply(wire):
    wire.send(b"++addr 14\n++read_tmo_ms 50\n*IDN?\n++clr\n++read eoi\n")
    assert wire.ask(b"++ver\n") == VERSION_LINE


def test_eot_enable_marks_eoi_with_eot_char(wire):
    wire.send(b"++addr 14\n++eot_enable 1\n++eot_char 42\n*IDN?\n++read eoi\n++ver\n")
    assert wire.receive() == b"TEST,METER,14,1.0\n"
    assert wire.receive() == b"*" + VERSION_LINE  # 42 is '*', sent where EOI came


def test_settings_answer_their_value_and_ignore_values_out_of_range(wire):
    for command, default in ((b"eoi", b"1"), (b"eos", b"0"), (b"mode", b"1"), (b"savecfg", b"1")):
        assert wire.ask(b"++" + command + b"\n") == default + b"\r\n"
    wire.send(b"++eos 3\n++eos 7\n++read_tmo_ms 4000\n")
    assert wire.ask(b"++eos\n") == b"3\r\n"
    assert wire.ask(b"++read_tmo_ms\n") == b"500\r\n"


def test_the_other_settings_answer_their_power_on_values(wire):
    assert wire.ask(b"++mode\n") == b"1\r\n"
    assert wire.ask(b"++eoi\n") == b"1\r\n"
    assert wire.ask(b"++eot_enable\n") == b"0\r\n"
    assert wire.ask(b"++eot_char\n") == b"0\r\n"
    assert wire.ask(b"++lon\n") == b"0\r\n"
    assert wire.ask(b"++savecfg\n") == b"1\r\n"
    assert wire.ask(b"++srq\n") == b"0\r\n"  # no instrument asks for service
    assert wire.ask(b"++status\n") == b"0\r\n"
    assert wire.ask(b"++help\n") == b"++addr\r\n"  # then one line per command


def test_bus_commands_answer_nothing(wire):
    for message in (b"++addr 14\n", b"++clr\n", b"++ifc\n", b"++llo\n", b"++loc\n", b"++trg\n"):
        wire.send(message)
    assert wire.ask(b"++ver\n") == VERSION_LINE  # the first reply after them is ++ver's


def test_unknown_command():
    sim = PrologixSimulator({14: Meter(14)})
    with run_in_thread(sim) as running:
        wire = Wire(running.port)
        assert wire.ask(b"++frobnicate\n") == b"Unrecognized command\r\n"
        wire.close()


def test_rst_returns_the_saved_configuration_and_ignores_input_meanwhile():
    sim = PrologixSimulator({14: Meter(14)}, speed=50)  # the 5 s reboot takes 0.1 s here
    with run_in_thread(sim) as running:
        wire = Wire(running.port)
        for message in (b"++addr 14\n", b"++savecfg 0\n", b"++addr 3\n", b"++rst\n"):
            wire.send(message)

        def answers() -> bool:
            try:
                return wire.ask(b"++addr\n", timeout=0.2) == b"14\r\n"
            except AssertionError:  # silent: still rebooting
                return False

        wait_until(answers, 10, what="the controller back after ++rst with the saved address 14")
        wire.close()


# -- the one TCP client, and faults --------------------------------------------------------------


def test_the_controller_serves_one_client_at_a_time(wire, served):
    wire.send(b"++addr 14\n")
    second = socket.create_connection(("127.0.0.1", served.port), timeout=10)
    try:
        second.sendall(b"++ver\n")
        assert second.recv(100) == b""  # closed at once: its socket is taken
    except ConnectionResetError:
        pass
    finally:
        second.close()
    assert wire.ask(b"*IDN?\n++read eoi\n") == b"TEST,METER,14,1.0\n"  # the first goes on


def test_after_the_client_leaves_the_next_one_is_served(served):
    first = Wire(served.port)
    assert first.ask(b"++ver\n") == VERSION_LINE
    first.close()

    def served_again() -> bool:
        try:
            wire = Wire(served.port)
            try:
                return wire.ask(b"++ver\n") == VERSION_LINE
            finally:
                wire.close()
        except (AssertionError, OSError):
            return False

    wait_until(served_again, 10, what="a new client served once the first left")


def test_a_muted_address_stays_silent_while_the_others_answer(wire, sim, served):
    with socket.create_connection(("127.0.0.1", served.control_port), timeout=10) as control:
        control.sendall(b"mute 15 on\n")
        assert control.recv(100) == b"OK\n"
        wire.send(b"++read_tmo_ms 50\n++addr 15\n*IDN?\n++read eoi\n")
        assert wire.ask(b"++ver\n") == VERSION_LINE
        assert wire.ask(b"++addr 14\n*IDN?\n++read eoi\n") == b"TEST,METER,14,1.0\n"
        control.sendall(b"mute 15 off\n")
        assert control.recv(100) == b"OK\n"
    assert wire.ask(b"++addr 15\n*IDN?\n++read eoi\n") == b"TEST,METER,15,1.0\n"


def test_mute_refuses_an_address_without_instrument(sim):
    assert sim.control("mute 7 on").startswith("ERROR no instrument at address 7")
    assert "mute ADDRESS on|off" in sim.control("help")


def test_generic_faults_act_on_the_controllers_replies(wire, sim):
    sim.faults.add("truncate")
    wire.send(b"++ver\n")
    half = VERSION_LINE[: len(VERSION_LINE) // 2]
    while len(wire.pending) < len(half):
        wire.pending += wire.socket.recv(4096)
    assert wire.pending == half
    wire.pending = b""
    sim.clear()
    sim.garbage = True
    garbage = wire.ask(b"++ver\n")
    assert garbage != VERSION_LINE and garbage.endswith(b"\n")
    sim.clear()


def test_escaped_framing_cuts_at_unescaped_line_ends_only():
    framing = HostMessages()
    assert framing.split(b"a\x1b\nb\nrest") == (b"a\x1b\nb\n", b"rest")
    assert framing.payload(b"a\x1b\nb\x1b\x1b\n") == b"a\nb\x1b"
    assert framing.split(b"a\x1b\n") is None


def test_the_demo_bus_holds_the_keithleys_at_14_and_15():
    keithley = pytest.importorskip("simulators.keithley")
    sim = PrologixSimulator(seed=3)
    assert isinstance(sim.instruments[14], keithley.Keithley6485)
    assert isinstance(sim.instruments[15], keithley.Keithley487)


def test_freeze_holds_a_reading_of_one_instrument_on_the_bus():
    pytest.importorskip("simulators.keithley")
    sim = PrologixSimulator(seed=3)
    assert "14.current" in sim.readings()
    assert sim.control("freeze 14.current on") == "OK"
    assert "frozen=14.current" in sim.control("status")
    assert sim.control("clear") == "OK"
    assert sim.instruments[14].frozen == {}
