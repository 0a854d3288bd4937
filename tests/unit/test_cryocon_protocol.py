"""The Cryo-Con 24C simulator on the wire: bytes sent, bytes received.

The exchanges come from the Model 24C manual's Remote Programming Guide (cited by section,
as page numbers differ between editions) and from lab software that polled a real 24C (ccdlab).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from device_servers.core.framing import Lines
from simulators import CryoConSimulator, run_in_thread
from tests.wire import Wire

TEMPERATURE = rb"-?\d+\.\d{6}"


@pytest.fixture
def sim() -> CryoConSimulator:
    return CryoConSimulator(seed=1)


@pytest.fixture
def wire(sim: CryoConSimulator) -> Iterator[Wire]:
    with run_in_thread(sim) as running, Wire(running.port, Lines(b"\r\n")) as connection:
        yield connection


# -- identification and temperatures ---------------------------------------------------------


def test_identification(wire):
    # manual, Commonly Used Commands: *idn? -> "Cryo-con,24C,204683,1.01A"
    assert wire.ask(b"*IDN?\n") == b"Cryo-con,24C,204683,1.01A\r\n"


@pytest.mark.parametrize(
    "command",
    [
        b"INPUT? A\n",
        b"input? a\n",
        b"INP? A\n",
        b"INPut A:TEMPerature?\n",
        b"inp a:temp?\n",
        b"Input A:Temper?\n",
    ],
)
def test_temperature_query_in_every_form(wire, command):
    # manual, Input Commands: "INPut? {A | B | C | D} or INPut {A | B | C | D}:TEMPerature?"
    assert re.fullmatch(TEMPERATURE + rb"\r\n", wire.ask(command))


def test_an_input_without_sensor_reads_dots(wire):
    assert wire.ask(b"INPUT? D\n") == b".......\r\n"


def test_ccdlab_poll_of_the_four_inputs_and_control(wire):
    reply = wire.ask(b"input? a,b,c,d;:cont?\n")
    assert re.fullmatch(rb"(" + TEMPERATURE + rb";){3}\.{7};OFF\r\n", reply)


def test_ccdlab_poll_of_a_loop(wire):
    poll = b":loop %d:err?;rang?;type?;load?;outp?;htrr?;sour?;setp?;ramp?;rate?;pman?;\n"
    assert wire.ask(poll % 1) == b"--Htr OK--;HI ;MAN  ;50;0.000000;   0%;A;0.000K;OFF;1.0;0.0\r\n"
    assert wire.ask(poll % 2) == b"--Htr OK--;LOW;MAN  ;50;0.000000;   0%;C;0.000K;OFF;1.0;0.0\r\n"


def test_ccdlab_initialisation_sets_units_and_answers_nothing(wire):
    wire.send(b"input a,b,c,d:units c;:loop 1:load 50;:loop 2:load 0;\n")
    assert wire.ask(b"input a,b,c,d:units?\n") == b"C;C;C;C\r\n"  # the first reply is this one's
    assert re.fullmatch(rb"2\d\.\d{6}\r\n", wire.ask(b"input? a\n"))  # room temperature in Celsius


# -- every command of the table, alone -------------------------------------------------------------

#: A setting gets no answer: the reply that comes next is its query's.
EVERY_COMMAND_ALONE = [
    (b"*CLS\n", None),
    (b"*OPC?\n", b"1\r\n"),
    (b"CONTROL?\n", b"OFF\r\n"),
    (b"LOOP 1:SOURCE B\n", None),
    (b"LOOP 1:SOURCE?\n", b"B\r\n"),
    (b"LOOP 1:TYPE PID\n", None),
    (b"LOOP 1:TYPE?\n", b"PID  \r\n"),
    (b"LOOP 1:RANGE MID\n", None),
    (b"LOOP 1:RANGE?\n", b"MID\r\n"),
    (b"LOOP 1:RATE 2.5\n", None),
    (b"LOOP 1:RATE?\n", b"2.5\r\n"),
    (b"LOOP 1:PGAIN 2\n", None),
    (b"LOOP 1:PGAIN?\n", b"2\r\n"),
    (b"LOOP 1:IGAIN 30\n", None),
    (b"LOOP 1:IGAIN?\n", b"30\r\n"),
    (b"LOOP 1:DGAIN 0.25\n", None),
    (b"LOOP 1:DGAIN?\n", b"0.25\r\n"),
    (b"LOOP 1:PMANUAL 12.5\n", None),
    (b"LOOP 1:PMANUAL?\n", b"12.5\r\n"),
    (b"LOOP 1:MAXPWR 50\n", None),
    (b"LOOP 1:MAXPWR?\n", b"50.0\r\n"),
    (b"LOOP 1:MAXSET 500\n", None),
    (b"LOOP 1:MAXSET?\n", b"500.000K\r\n"),
    (b"LOOP 1:LOAD 25\n", None),
    (b"LOOP 1:LOAD?\n", b"25\r\n"),
    (b"LOOP 1:ERR?\n", b"--Htr OK--\r\n"),
    (b"LOOP 1:RAMP?\n", b"OFF\r\n"),
    (b"LOOP 1:OUTPWR?\n", b"0.000000\r\n"),
    (b"LOOP 1:HTRREAD?\n", b"   0%\r\n"),
]


def test_every_command_alone_as_the_manual_lists_it(wire):
    # manual, Remote Command Descriptions: the system, input and loop commands, one a line
    wire.converse(EVERY_COMMAND_ALONE)


# -- compound commands and the SCPI path -------------------------------------------------------


def test_manual_compound_command_stays_in_its_subsystem(wire):
    # manual, Compound Commands: "INPut A:UNITs K;TEMPer?;" is "INPut A:UNITs K;" + "INPut A:TEMPer?;"
    assert re.fullmatch(TEMPERATURE + rb"\r\n", wire.ask(b"INPut A:UNITs K;TEMPer?;\n"))


def test_manual_compound_command_returns_to_the_root_after_a_colon(wire):
    # manual, Compound Commands: "INPut A:TEMPer?;:LOOP 1:SETPt 123.45;" spans two subsystems
    assert re.fullmatch(TEMPERATURE + rb"\r\n", wire.ask(b"INPut A:TEMPer?;:LOOP 1:SETPt 123.45;\n"))
    # manual, Queries: "LOOP 1:SETPt?;PGAin?;IGAin?;DGAin?;" answers four values joined by ';'
    assert wire.ask(b"LOOP 1:SETPt?;PGAin?;IGAin?;DGAin?;\n") == b"123.450K;1;60;0\r\n"


def test_without_a_colon_a_command_is_looked_up_in_the_previous_node(wire):
    assert (
        wire.ask(b"LOOP 2:SETPT 50;:LOOP 1:SETPT 60;:LOOP 2:SETPT?;:LOOP 1:SETPT?\n")
        == b"50.000K;60.000K\r\n"
    )
    assert wire.ask(b"LOOP 1:SETPT?;:CONTROL?\n") == b"60.000K;OFF\r\n"
    assert wire.ask(b"LOOP 1:SETPT?;CONTROL?\n") == b"60.000K;NAK\r\n"  # there is no LOOP 1:CONTROL


def test_manual_debugging_tip_waits_for_completion_with_opc(wire):
    # manual, Debugging Tips: "LOOP 1:SETPOINT 1234.5;:*OPC?" returns '1' once the command is done
    assert wire.ask(b"LOOP 1:SETPOINT 234.5;:*OPC?\n") == b"1\r\n"
    assert wire.ask(b"LOOP 1:SETPT?\n") == b"234.500K\r\n"


def test_a_message_without_query_gets_no_answer(wire):
    wire.send(b"LOOP 1:SETPT 77.5\n")
    wire.send(b"CONTROL\n")
    wire.send(b"STOP\n")
    assert wire.ask(b"LOOP 1:SETPT?\n") == b"77.500K\r\n"


def test_lines_may_end_in_cr_lf_and_arrive_together(wire):
    wire.send(b"*IDN?\r\n*OPC?\n")
    assert wire.receive() == b"Cryo-con,24C,204683,1.01A\r\n"
    assert wire.receive() == b"1\r\n"


# -- keywords ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [b"LOOP 1:PMANUAL 12.5;PMANUAL?\n", b"loop 1:pman 12.5;pman?\n", b"Loop 1:PMA 12.5;Pma?\n"],
)
def test_keywords_are_case_insensitive_in_short_and_long_form(wire, command):
    assert wire.ask(command) == b"12.5\r\n"


def test_control_and_stop(wire):
    # manual, Commonly Used Commands: control starts both loops, stop stops them, control? -> ON/OFF
    assert wire.ask(b"CONTROL;CONTROL?\n") == b"ON \r\n"
    assert wire.ask(b"stop;cont?\n") == b"OFF\r\n"


def test_loop_settings_read_back_as_the_instrument_formats_them(wire):
    replies = wire.ask(
        b"LOOP 1:TYPE rampp;TYPE?;RANGE mid;RANGE?;RATE 2.5;RATE?;SOURCE b;SOURCE?;LOAD 25;LOAD?\n"
    )
    assert replies == b"RAMPP;MID;2.5;B;25\r\n"
    assert (
        wire.ask(b"LOOP 2:TYPE PID;TYPE?;RANGE HI;RANGE?;LOAD 25;LOAD?\n") == b"PID  ;HI ;50\r\n"
    )  # loop 2 ignores LOAD


def test_set_points_are_in_the_units_of_the_source_input(wire):
    wire.send(b"INPUT A:UNITS C\n")
    assert wire.ask(b"LOOP 1:SETPT -173.15;SETPT?\n") == b"-173.150C\r\n"
    wire.send(b"INPUT A:UNITS K\n")
    assert wire.ask(b"LOOP 1:SETPT?\n") == b"100.000K\r\n"


# -- what the instrument refuses -------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        b"FOO?\n",
        b"SYSTEM:BEEP 1\n",
        b"IN? A\n",
        b"LOOP 1:SET?\n",
        b"LOOP 3:SETPT?\n",
        b"INPUT? E\n",
        b"*IDN\n",
    ],
)
def test_an_unknown_command_answers_nak(wire, command):
    assert wire.ask(command) == b"NAK\r\n"


@pytest.mark.parametrize(
    ("command", "reply"),
    [
        (b"LOOP 2:RANGE MID;RANGE?\n", b"NAK;LOW\r\n"),  # loop 2 has HI and LOW only
        (b"LOOP 1:TYPE FAST;TYPE?\n", b"NAK;MAN  \r\n"),
        (b"LOOP 1:SETPT -1;SETPT?\n", b"NAK;0.000K\r\n"),  # manual, LOOP commands: below zero is rejected
        (b"LOOP 1:SETPT 1000.5;SETPT?\n", b"NAK;0.000K\r\n"),  # above the maximum set-point, 1000 K
        (b"LOOP 1:PGAIN 1001;PGAIN?\n", b"NAK;1\r\n"),  # manual, LOOP commands: gains 0 to 1000
        (b"LOOP 1:RATE 100.5;RATE?\n", b"NAK;1.0\r\n"),  # manual, LOOP commands: rate 0 to 100
        (b"LOOP 1:PMAN many;PMAN?\n", b"NAK;0.0\r\n"),
        (b"INPUT A:UNITS X;UNITS?\n", b"NAK;K\r\n"),
    ],
)
def test_a_refused_value_answers_nak_and_changes_nothing(wire, command, reply):
    assert wire.ask(command) == reply


# -- physics, stepped by hand --------------------------------------------------------------


def run(sim: CryoConSimulator, seconds: float) -> None:
    for _ in range(round(seconds / 0.1)):
        sim.step(0.1)


def temperature(sim: CryoConSimulator, channel: str) -> float:
    return float(sim.handle_line(f"INPUT? {channel}"))


def test_the_cryocooler_pulls_the_stage_from_room_temperature_to_its_base(sim):
    assert temperature(sim, "A") == pytest.approx(295, abs=0.05)
    run(sim, sim.tau)
    assert temperature(sim, "A") == pytest.approx(40 + 255 / 2.718, abs=2)  # one time constant
    run(sim, 5 * sim.tau)
    assert temperature(sim, "A") == pytest.approx(40, abs=1)
    assert temperature(sim, "B") == pytest.approx(temperature(sim, "A"), abs=0.5)  # the sample follows
    assert temperature(sim, "C") > temperature(sim, "A") + 30  # the shield is slower and warmer


def test_pid_holds_the_setpoint_and_reports_the_heater_output(sim):
    sim.handle_line("LOOP 1:TYPE PID;SETPT 100;:CONTROL")
    run(sim, 600)
    assert temperature(sim, "A") == pytest.approx(100, abs=0.05)
    # holding 60 K above the 40 K base takes 10 W, 20 % of the 50 W HI range
    heater_read, output = sim.handle_line("LOOP 1:HTRREAD?;OUTPWR?").split(";")
    assert heater_read == "  20%"
    assert re.fullmatch(r"\d+\.\d{6}", output) and float(output) == pytest.approx(20, abs=0.01)


def test_rampp_ramps_the_setpoint_at_the_rate(sim):
    sim.handle_line("LOOP 1:TYPE PID;SETPT 100;:CONTROL")
    run(sim, 600)
    sim.handle_line("LOOP 1:TYPE RAMPP;RATE 10;SETPT 150")
    run(sim, 60)
    assert sim.handle_line("LOOP 1:RAMP?;SETPT?") == "ON ;150.000K"
    assert 102 < temperature(sim, "A") < 112  # following a set-point now at 110 K
    run(sim, 600)
    assert sim.handle_line("LOOP 1:RAMP?") == "OFF"
    assert temperature(sim, "A") == pytest.approx(150, abs=0.05)


def test_manual_power_is_limited_by_the_heater_range(sim):
    sim.handle_line("LOOP 1:TYPE MAN;PMAN 100;RANGE LOW;:CONTROL")
    run(sim, 600)
    assert temperature(sim, "A") == pytest.approx(40 + 0.5 * 6, abs=0.2)  # 0.5 W full scale on LOW
    sim.handle_line("STOP")
    run(sim, 600)
    assert temperature(sim, "A") == pytest.approx(40, abs=0.05)
    assert sim.handle_line("LOOP 1:HTRREAD?") == "   0%"


def test_the_same_seed_gives_the_same_readings():
    first, second, other = CryoConSimulator(seed=7), CryoConSimulator(seed=7), CryoConSimulator(seed=8)
    readings = [sim.handle_line("INPUT? A,B,C") for sim in (first, second, other)]
    assert readings[0] == readings[1] != readings[2]
