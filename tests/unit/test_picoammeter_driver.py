"""The picoammeter drivers against their simulators over a real socket: the same vocabulary on
the 6485 and the 487, the instrument's own errors, and the 487 source refused before sending."""

from __future__ import annotations

import pytest

from device_servers.core.errors import InstrumentError, RejectedValue
from device_servers.core.link import link_for_url
from device_servers.picoammeter.driver import Keithley487, Keithley6485
from simulators import run_in_thread
from simulators.keithley import Keithley487Simulator, Keithley6485Simulator


@pytest.fixture(params=["6485", "487"])
def meter(request):
    simulator, driver = {
        "6485": (Keithley6485Simulator, Keithley6485), "487": (Keithley487Simulator, Keithley487)
    }[request.param]
    with run_in_thread(simulator(seed=4)) as running:
        link = link_for_url(running.url, timeout=2.0)
        link.open()
        meter = driver(link)
        meter.configure(1.0)
        meter.set_zero_check(False)
        yield meter, running.simulator
        link.close()


def test_reads_the_current_with_its_range(meter):
    driver, _ = meter
    status = driver.read_status()
    assert status.reading.amps == pytest.approx(1.2e-9, rel=0.15)
    assert status.reading.range == 2e-9 and status.auto_range and not status.zero_check


def test_a_fixed_range_too_small_gives_overflow_not_a_number(meter):
    driver, simulator = meter
    assert driver.set_range(1.5e-9) == 2e-9
    simulator.instrument.sample.photo_current = 5e-9
    reading = driver.read_status().reading
    assert reading.overflow and reading.amps is None
    driver.set_auto_range(True)
    assert driver.read_status().reading.range == 20e-9


def test_zero_check_reads_about_zero_and_zero_correct_leaves_it_as_it_was(meter):
    driver, _ = meter
    driver.set_zero_check(True)
    assert abs(driver.read_status().reading.amps) < 1e-12
    driver.set_zero_check(False)
    driver.zero_correct()
    status = driver.read_status()
    assert not status.zero_check and status.reading.amps == pytest.approx(1.2e-9, rel=0.15)


def test_a_range_the_model_lacks_is_refused_with_the_ranges_and_nothing_sent(meter):
    driver, simulator = meter
    sent = len(simulator.received)
    with pytest.raises(RejectedValue, match="range"):
        driver.set_range(1.0)
    assert len(simulator.received) == sent


def test_6485_error_comes_back_in_the_instruments_words():
    with run_in_thread(Keithley6485Simulator(seed=1)) as running, link_for_url(running.url) as link:
        meter = Keithley6485(link)
        with pytest.raises(InstrumentError, match="refused ':SYST:ZCHK ON': error -113, 'Undefined header'"):
            meter.send(":SYST:ZCHK ON")
        assert running.simulator.received[-1] == ":SYST:ZCHK ON;:SYST:ERR?"
        assert meter.set_range(2e-9) == 2e-9  # the line stays up
        assert running.simulator.received[-1] == ":SENS:CURR:RANG 2e-09;:SENS:CURR:RANG?;:SYST:ERR?"


def test_487_source_limits_range_and_interlock():
    with run_in_thread(Keithley487Simulator(seed=1)) as running, link_for_url(running.url, timeout=2.0) as link:
        meter, instrument = Keithley487(link), running.simulator.instrument
        assert meter.set_voltage(10.0) == 10.0
        assert running.simulator.received[-2:] == ["V10.000,0,0X", "U1X"]
        assert meter.set_operate(True)
        assert meter.read_status().source.voltage == 10.0
        sent = len(running.simulator.received)
        with pytest.raises(RejectedValue, match=r"-50.5 to 50.5 V"):
            meter.set_voltage(60.0)
        assert not [line for line in running.simulator.received[sent:] if line.startswith("V")]
        meter.set_operate(False)
        instrument.interlock_closed = False
        assert meter.set_voltage_range(500.0) == 500.0  # in standby the interlock does not matter
        meter.set_voltage_range(50.0)
        assert meter.set_operate(True)  # the 50 V range operates with the interlock open
        sent = len(running.simulator.received)
        with pytest.raises(RejectedValue, match="500 V range needs the interlock closed"):  # it would drop the output
            meter.set_voltage_range(500.0)
        assert not [line for line in running.simulator.received[sent:] if line.startswith("V")]
        instrument.interlock_closed = True
        assert meter.set_voltage_range(500.0) == 500.0 and meter.read_source().operate


def test_487_a_write_it_refuses_fails_in_the_words_of_its_error_word():
    with run_in_thread(Keithley487Simulator(seed=1)) as running, link_for_url(running.url, timeout=2.0) as link:
        meter = Keithley487(link)
        meter.set_voltage_range(500.0)
        running.simulator.instrument.interlock_closed = False
        with pytest.raises(InstrumentError, match="the Keithley 487 refused 'O1X': interlock open"):
            meter.set_operate(True)
        assert running.simulator.received[-2:] == ["O1X", "U1X"]
        assert not meter.read_source().operate  # it stayed in standby, the line up
        with pytest.raises(InstrumentError, match=r"refused 'Q1X': IDDC \(unknown command\)"):
            meter.send("Q1X")


def test_a_frozen_reading_holds_on_the_direct_simulator():
    with run_in_thread(Keithley6485Simulator(seed=1)) as running, link_for_url(running.url, timeout=2.0) as link:
        meter = Keithley6485(link)
        meter.set_zero_check(False)
        running.simulator.freeze("current")
        first, second = meter.read_status().reading, meter.read_status().reading
        assert first.amps == second.amps
        running.simulator.clear()
        assert meter.read_status().reading.amps != first.amps
