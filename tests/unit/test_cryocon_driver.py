"""`CryoCon24C` against the simulator over a real socket, faults included."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator

import pytest

from device_servers.core.errors import GarbledReply, InstrumentError, LinkError, RejectedValue
from device_servers.core.link import SerialLink
from device_servers.cryocon.driver import CryoCon24C
from device_servers.cryocon.protocol import HEATER_OK
from simulators import CryoConSimulator, Running, run_in_thread

TIMEOUT = 0.5  # the link's deadline
SLACK = 2.0  # generous bound on how late a timeout may be noticed


@pytest.fixture
def served() -> Iterator[Running]:
    with run_in_thread(CryoConSimulator(seed=1)) as running:
        yield running


@pytest.fixture
def sim(served: Running) -> CryoConSimulator:
    return served.simulator


@pytest.fixture
def driver(served: Running) -> Iterator[CryoCon24C]:
    cryocon = CryoCon24C(SerialLink(served.url, timeout=TIMEOUT))
    cryocon.connect()
    yield cryocon
    cryocon.close()


def test_connect_reports_every_input_in_kelvin(served, sim):
    sim.units.update(A="C", B="F", C="C")
    cryocon = CryoCon24C(SerialLink(served.url, timeout=TIMEOUT))
    try:
        cryocon.connect()
    finally:
        cryocon.close()
    assert sim.units == {"A": "K", "B": "K", "C": "K", "D": "K"}
    assert sim.received == [
        "INP A:UNIT K;:INP B:UNIT K;:INP C:UNIT K;:INP D:UNIT K;:INP A:UNIT?;:INP B:UNIT?;:INP C:UNIT?;:INP D:UNIT?"
    ]


def test_identify(driver):
    assert driver.read(driver.identity) == ["Cryo-con,24C,204683,1.01A"]


def test_read_status_is_one_round_trip(driver, sim):
    before = len(sim.received)
    status = driver.read_status()

    assert sim.received[before:] == [
        (
            "INP? A;INP? B;INP? C;INP? D;CONT?"
            ";:LOOP 1:SETP?;TYPE?;RANG?;RATE?;RAMP?;HTRR?;ERR?;SOUR?;PMAN?"
            ";:LOOP 2:SETP?;TYPE?;RANG?;RATE?;RAMP?;HTRR?;ERR?;SOUR?;PMAN?"
        )
    ]
    assert set(status.temperatures) == {"A", "B", "C", "D"}
    assert all(status.temperatures[channel] == pytest.approx(295, abs=1) for channel in "ABC")
    assert status.temperatures["D"] is None  # no sensor
    assert status.control_on is False
    loop1, loop2 = status.loops[1], status.loops[2]
    assert (loop1.loop_type, loop1.heater_range, loop1.source, loop1.setpoint) == ("MAN", "HI", "A", 0.0)
    assert (loop2.loop_type, loop2.heater_range, loop2.source) == ("MAN", "LOW", "C")
    assert (loop1.ramp_rate, loop1.ramping, loop1.manual_power, loop1.heater_output) == (1.0, False, 0.0, 0.0)
    assert loop1.heater_status == HEATER_OK and loop1.heater_ok


def test_read_temperature(driver):
    b, d = driver.read(driver.temperature("B"), driver.temperature("D"))
    assert b == pytest.approx(295, abs=1)
    assert d is None


def test_setpoint_round_trip(driver, sim):
    assert driver.write(driver.setpoint(1), 80.125) == 80.125
    assert sim.loops[1].setpoint == 80.125
    assert driver.read_status().loops[1].setpoint == pytest.approx(80.125, abs=1e-3)
    assert sim.received[-2] == "LOOP 1:SETP 80.125;SETP?"  # set and read back in one message


def test_every_setting_reaches_the_instrument(driver, sim):
    assert driver.write(driver.loop_type(2), "pid") == "PID"
    assert driver.write(driver.heater_range(2), "HI") == "HI"
    assert driver.write(driver.ramp_rate(2), 2.5) == 2.5
    assert driver.write(driver.manual_power(2), 12.5) == 12.5
    assert driver.set_pid(2, 2.0, 30.0, 0.25) == [2.0, 30.0, 0.25]
    driver.start_control()

    loop = sim.loops[2]
    assert (loop.type, loop.range, loop.rate, loop.pman) == ("PID", "HI", 2.5, 12.5)
    assert (loop.pgain, loop.igain, loop.dgain) == (2.0, 30.0, 0.25)
    status = driver.read_status()
    assert status.control_on and status.loops[2].loop_type == "PID" and status.loops[2].heater_range == "HI"

    driver.stop_control()
    assert not sim.control_on


def test_a_ramp_shows_in_the_status(driver, sim):
    driver.write(driver.loop_type(1), "RAMPP")
    driver.write(driver.ramp_rate(1), 1.0)
    driver.start_control()
    driver.write(driver.setpoint(1), 100.0)  # from the 0 K set-point at 1 K/min: ramping for 100 minutes

    assert driver.read_status().loops[1].ramping
    driver.stop_control()
    assert not driver.read_status().loops[1].ramping


@pytest.mark.parametrize(
    ("operation", "allowed"),
    [
        (lambda cc: cc.write(cc.setpoint(1), -0.5), r"setpoint \(loop 1\) -0.5 is out of range: allowed 0 to 1000 K"),
        (lambda cc: cc.write(cc.setpoint(2), 1000.5), "allowed 0 to 1000 K"),
        (lambda cc: cc.write(cc.setpoint(1), math.nan), "allowed 0 to 1000 K"),
        (lambda cc: cc.write(cc.setpoint(1), "cold"), "must be a number 0 to 1000 K"),
        (lambda cc: cc.write(cc.setpoint(3), 10.0), "loop 3 does not exist: loops are 1, 2"),
        (lambda cc: cc.write(cc.heater_range(2), "MID"), "not one of HI, LOW"),
        (lambda cc: cc.write(cc.heater_range(1), "MAX"), "not one of HI, MID, LOW"),
        (lambda cc: cc.write(cc.loop_type(1), "FAST"), "not one of OFF, MAN, PID, TABLE, RAMPP, RAMPT"),
        (lambda cc: cc.write(cc.ramp_rate(1), 100.1), "allowed 0 to 100 K/min"),
        (lambda cc: cc.write(cc.manual_power(2), -1), "allowed 0 to 100 %"),
        (lambda cc: cc.set_pid(1, 1.0, 2000.0, 0.0), r"i gain \(loop 1\) 2000.0 is out of range: allowed 0 to 1000"),
        (lambda cc: cc.read(cc.temperature("E")), "input 'E' does not exist: inputs are A, B, C, D"),
    ],
)
def test_a_rejected_value_says_what_is_allowed_and_sends_nothing(driver, sim, operation, allowed):
    before = list(sim.received)
    with pytest.raises(RejectedValue, match=allowed):
        operation(driver)
    driver.read(driver.identity)  # one more round trip: anything sent before it would now be recorded
    assert sim.received == [*before, "*IDN?"]


def test_a_value_the_instrument_refuses_is_an_instrument_error(driver, sim):
    sim.loops[1].maxset = 100.0  # the maximum set-point configured on the instrument
    with pytest.raises(InstrumentError, match=r"refused 'LOOP 1:SETP 150;SETP\?': it answered 'NAK;0.000K'"):
        driver.write(driver.setpoint(1), 150.0)
    assert driver.link.is_open  # a refusal leaves the line up


def test_a_read_back_other_than_the_value_written_is_an_instrument_error(driver, sim):
    # manual, LOOP 2:LOAD: loop 2's load is fixed at 50 ohms, it ignores the setting
    assert driver.write(driver.heater_load(1), 25) == 25
    with pytest.raises(InstrumentError, match=r"did not take 'LOOP 2:LOAD 25': it reads back '50'"):
        driver.write(driver.heater_load(2), 25)
    assert sim.received[-1] == "LOOP 2:LOAD 25;LOAD?"


# -- faults --------------------------------------------------------------------------------------


def test_a_dropped_connection_is_a_link_error_and_reconnecting_recovers(driver, sim):
    sim.drop()
    with pytest.raises(LinkError):
        driver.read_status()
    assert not driver.link.is_open

    driver.connect()
    assert driver.read_status().temperatures["D"] is None


def test_a_reply_later_than_the_timeout_is_a_link_error(driver, sim):
    sim.delay = TIMEOUT + 1.0
    started = time.monotonic()
    with pytest.raises(LinkError, match="no reply"):
        driver.read_status()
    assert time.monotonic() - started < TIMEOUT + SLACK

    sim.clear()
    driver.connect()
    assert driver.read_status().control_on is False


def test_a_garbage_reply_is_a_garbled_reply_quoting_the_request(driver, sim):
    sim.garbage = True
    with pytest.raises(GarbledReply, match=r"'INP\? A;INP\? B;"):
        driver.read_status()

    sim.garbage = False
    driver.connect()  # a garbled line is reconnected
    assert driver.read_status().control_on is False


def test_a_frozen_reading_holds_while_the_others_move(driver, sim):
    sim.freeze("A")
    first, second = driver.read_status(), driver.read_status()
    assert first.temperatures["A"] == second.temperatures["A"]
    assert first.temperatures["B"] != second.temperatures["B"]  # live, with noise

    sim.unfreeze("A")
    assert driver.read_status().temperatures["A"] != first.temperatures["A"]


def test_an_offline_instrument_fails_every_connection_until_back(driver, sim):
    sim.set_offline(True)
    with pytest.raises(LinkError):
        driver.read_status()
    with pytest.raises(LinkError):
        driver.connect()  # the connection opens, and closes at the first query

    sim.set_offline(False)
    driver.connect()
    assert driver.read(driver.identity)[0].startswith("Cryo-con,24C")
