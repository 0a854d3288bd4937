"""The Picoammeter device in a DeviceTestContext (its own process) against the simulators served
directly on TCP from this test: a 6485 and a 487 with its voltage source."""

from __future__ import annotations

import multiprocessing

import pytest
import tango
import tango.test_context
from tango.test_context import DeviceTestContext

from device_servers.picoammeter.device import Picoammeter
from simulators import run_in_thread
from simulators.keithley import Keithley487Simulator, Keithley6485Simulator
from tangolab.scripting import wait_until

OPERATING = (tango.DevState.ON, tango.DevState.ALARM)


def _device(simulator, model):
    properties = {"Url": simulator.url, "Model": model, "PollPeriod": 0.2, "Timeout": 1.0}
    context = DeviceTestContext(Picoammeter, properties=properties, process=True, timeout=30)
    proxy = context.__enter__()
    wait_until(lambda: proxy.state() in OPERATING, 30, what=f"{model} connected")
    return context, proxy


@pytest.fixture(scope="module")
def sim6485():
    with run_in_thread(Keithley6485Simulator(seed=5)) as running:
        yield running


@pytest.fixture(scope="module")
def meter6485(sim6485):
    context, proxy = _device(sim6485, "6485")
    yield proxy
    context.__exit__(None, None, None)


@pytest.fixture(scope="module")
def sim487():
    with run_in_thread(Keithley487Simulator(seed=6)) as running:
        yield running


@pytest.fixture(scope="module")
def meter487(sim487):
    context, proxy = _device(sim487, "487")
    yield proxy
    context.__exit__(None, None, None)


@pytest.fixture
def m6485(sim6485, meter6485):
    """A 6485 measuring the sample: zero check off, auto range, no fault."""
    sim6485.simulator.clear()
    sim6485.simulator.instrument.sample.photo_current = 1.2e-9
    meter6485.write_attribute("zeroCheck", False)
    meter6485.write_attribute("autoRange", True)
    wait_until(lambda: meter6485.state() == tango.DevState.ON, 20, what="6485 ON")
    # the cache may still hold a reading taken with zero check on: wait for one of the sample
    wait_until(lambda: meter6485.read_attribute("current").value > 1e-10, 20, what="a reading of the sample")
    yield meter6485
    sim6485.simulator.clear()


@pytest.fixture
def m487(sim487, meter487):
    instrument = sim487.simulator.instrument
    sim487.simulator.clear()
    instrument.interlock_closed = True
    meter487.write_attribute("sourceOn", False)
    meter487.write_attribute("voltageRange", 50.0)
    meter487.write_attribute("voltage", 0.0)
    meter487.write_attribute("autoRange", True)
    wait_until(lambda: meter487.state() == tango.DevState.ON, 20, what="487 ON")
    yield meter487


def test_reads_the_current_in_amps_with_its_range(m6485):
    reading = m6485.read_attribute("current")
    assert reading.quality == tango.AttrQuality.ATTR_VALID
    assert reading.value == pytest.approx(1.2e-9, rel=0.15)
    assert m6485.get_attribute_config("current").unit == "A"
    assert m6485.read_attribute("range").value == 2e-9
    assert m6485.read_attribute("autoRange").value


def test_overflow_is_invalid_never_a_number_and_alarm_says_why(m6485, sim6485):
    m6485.write_attribute("range", 2e-9)
    sim6485.simulator.instrument.sample.photo_current = 5e-9
    wait_until(lambda: m6485.read_attribute("overflow").value, 10, what="overflow")
    reading = m6485.read_attribute("current")
    assert reading.quality == tango.AttrQuality.ATTR_INVALID
    assert m6485.state() == tango.DevState.ALARM and "Overflow" in m6485.status()
    m6485.write_attribute("autoRange", True)
    wait_until(lambda: m6485.read_attribute("range").value == 20e-9, 10, what="auto range up to 20 nA")
    assert m6485.read_attribute("current").quality == tango.AttrQuality.ATTR_VALID


def test_range_write_goes_as_scpi_and_a_range_too_large_is_refused(m6485, sim6485):
    m6485.write_attribute("range", 150e-9)
    assert ":SENS:CURR:RANG 2e-07;:SENS:CURR:RANG?;:SYST:ERR?" in sim6485.simulator.received
    assert m6485.read_attribute("range").value == 200e-9  # the read-back, at once
    # a fixed range ends auto range on the instrument: the next poll shows it
    wait_until(lambda: not m6485.read_attribute("autoRange").value, 10, what="auto range off")
    config = m6485.get_attribute_config("range")
    assert (float(config.min_value), float(config.max_value)) == (0.0, 0.02)


def test_zero_check_and_zero_correct(m6485, sim6485):
    m6485.write_attribute("zeroCheck", True)
    wait_until(lambda: abs(m6485.read_attribute("current").value) < 1e-12, 10, what="~0 A with zero check")
    assert "zero check ON" in m6485.status()
    m6485.write_attribute("zeroCheck", False)
    m6485.command_inout("ZeroCorrect")
    assert ":SYST:ZCH ON;:INIT;:SYST:ZCOR:ACQ;:SYST:ZCOR ON;:SYST:ERR?" in sim6485.simulator.received
    wait_until(lambda: not m6485.read_attribute("zeroCheck").value, 10, what="zero check back off")


def test_garbage_makes_fault_with_the_reason_then_it_recovers(m6485, sim6485):
    sim6485.simulator.garbage = True
    wait_until(lambda: m6485.state() == tango.DevState.FAULT, 20, what="FAULT on garbage")
    assert "GarbledReply" in m6485.status()
    assert m6485.read_attribute("current").quality == tango.AttrQuality.ATTR_INVALID
    sim6485.simulator.garbage = False
    wait_until(lambda: m6485.state() == tango.DevState.ON, 20, what="back ON")


def test_a_dropped_link_makes_fault_and_reconnects(m6485, sim6485):
    sim6485.simulator.set_offline(True)
    wait_until(lambda: m6485.state() == tango.DevState.FAULT, 20, what="FAULT while offline")
    assert sim6485.url in m6485.status()
    sim6485.simulator.set_offline(False)
    wait_until(lambda: m6485.state() == tango.DevState.ON, 20, what="reconnected")


def test_a_silent_instrument_makes_fault_with_the_reason(m6485, sim6485):
    sim6485.simulator.delay = 2.0  # longer than the device's 1 s Timeout
    wait_until(lambda: m6485.state() == tango.DevState.FAULT, 20, what="FAULT on time-out")
    assert "no reply" in m6485.status()
    sim6485.simulator.delay = 0.0
    wait_until(lambda: m6485.state() == tango.DevState.ON, 20, what="answers again")


def test_487_has_its_source_attributes_and_the_6485_not(m487, m6485):
    assert {"voltage", "voltageRange", "currentLimit", "sourceOn", "interlock"} <= set(m487.get_attribute_list())
    assert "voltage" not in m6485.get_attribute_list()
    assert m487.get_attribute_config("voltage").unit == "V"


def test_487_sources_a_voltage_and_the_current_follows(m487, sim487):
    m487.write_attribute("voltage", 20.0)
    m487.write_attribute("sourceOn", True)
    assert "V20.000,0,0X" in sim487.simulator.received
    wait_until(lambda: m487.read_attribute("current").value > 3e-9, 10, what="20 V over 10 GOhm adds 2 nA")
    assert "voltage source ON at 20 V" in m487.status()


def test_487_voltage_beyond_its_range_is_refused_with_the_allowed_range_and_nothing_sent(m487, sim487):
    sent = len(sim487.simulator.received)
    with pytest.raises(tango.DevFailed) as failure:
        m487.write_attribute("voltage", 100.0)
    assert failure.value.args[0].reason == "ValueRejected"
    assert "-50.5 to 50.5 V" in failure.value.args[0].desc
    assert not [line for line in sim487.simulator.received[sent:] if line.startswith("V")]


def test_487_500_volt_range_needs_the_interlock(m487, sim487):
    sim487.simulator.instrument.interlock_closed = False
    wait_until(lambda: not m487.read_attribute("interlock").value, 10, what="interlock shown open")
    m487.write_attribute("voltageRange", 500.0)
    with pytest.raises(tango.DevFailed) as failure:
        m487.write_attribute("sourceOn", True)
    # the 487's own refusal, read from its error word: the write fails, the device stays up
    assert failure.value.args[0].reason == "InstrumentError"
    assert "the Keithley 487 refused 'O1X': interlock open" in failure.value.args[0].desc
    assert m487.state() == tango.DevState.ON and not m487.read_attribute("sourceOn").value
    sim487.simulator.instrument.interlock_closed = True
    m487.write_attribute("sourceOn", True)
    wait_until(lambda: m487.read_attribute("sourceOn").value, 10, what="operating with the interlock closed")


def test_the_487_through_the_gpib_bus_device(monkeypatch):
    """The same device on a shared bus: Prologix simulator, GpibBus device, a gpib:// Url.
    The device is a client of the bus device: its process is spawned, since a process forked
    from this one inherits a Tango client state that does not survive the fork."""
    from device_servers.gpib.device import GpibBus
    from simulators.prologix import PrologixSimulator, demo_instruments

    monkeypatch.setattr(tango.test_context, "multiprocessing", multiprocessing.get_context("spawn"))

    with run_in_thread(PrologixSimulator(demo_instruments(seed=7), seed=7)) as prologix:
        bus_properties = {"Url": prologix.url, "PollPeriod": 0.5, "Timeout": 1.0}
        bus_context = DeviceTestContext(GpibBus, properties=bus_properties, process=True, timeout=30)
        with bus_context as bus:
            wait_until(lambda: bus.state() == tango.DevState.ON, 30, what="bus connected")
            url = f"gpib://{bus_context.get_device_access()}/15"
            properties = {"Url": url, "Model": "487", "PollPeriod": 0.3, "Timeout": 1.0}
            with DeviceTestContext(Picoammeter, properties=properties, process=True, timeout=30) as meter:
                wait_until(lambda: meter.state() == tango.DevState.ON, 30, what="487 on the bus")
                assert meter.read_attribute("current").value == pytest.approx(1.2e-9, rel=0.15)
                meter.write_attribute("voltage", 5.0)
                assert "V5.000,0,0X" in prologix.simulator.instruments[15].received
