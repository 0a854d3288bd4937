"""The FunctionGenerator device (HP 33120A) in a DeviceTestContext (its own process) against the
33120A simulator over a socket: the vocabulary's attributes, writes read back, a refusal in the
instrument's words that changes nothing, an arbitrary waveform, and the fault matrix."""

from __future__ import annotations

import numpy as np
import pytest
import tango
from tango.test_context import DeviceTestContext

from device_servers.generators.device import FunctionGenerator
from simulators import run_in_thread
from simulators.hp33120a import Hp33120aSimulator
from tangolab.scripting import wait_until


@pytest.fixture(scope="module")
def simulator():
    with run_in_thread(Hp33120aSimulator(seed=3)) as running:
        yield running


@pytest.fixture(scope="module")
def generator(simulator):
    properties = {"Url": simulator.url, "PollPeriod": 0.2, "Timeout": 0.5, "Model": "33120A"}
    with DeviceTestContext(FunctionGenerator, properties=properties, process=True, timeout=30) as proxy:
        wait_until(lambda: proxy.state() == tango.DevState.ON, 30, what="generator ON")
        yield proxy


@pytest.fixture(autouse=True)
def healthy(simulator, generator):
    simulator.simulator.clear()
    wait_until(lambda: generator.state() == tango.DevState.ON, 30, what="generator ON")
    yield
    simulator.simulator.clear()


def test_the_vocabulary_with_units_and_ranges_and_no_output_switch(generator):
    names = {name.lower() for name in generator.get_attribute_list()}
    for name in ("waveform1", "frequency1", "amplitude1", "offset1", "load1", "burstcount1", "burststate1",
                 "arbitrarywaveform1"):
        assert name in names
    assert "output1" not in names  # the 33120A's output is always on
    config = generator.get_attribute_config("frequency1")
    assert (float(config.min_value), float(config.max_value), config.unit) == (100e-6, 15e6, "Hz")
    assert generator.read_attribute("frequency1").value == 1000.0


def test_settings_are_written_through_and_read_back(generator, simulator):
    generator.write_attribute("waveform1", 1)  # SQUARE
    generator.write_attribute("frequency1", 2500.0)
    generator.write_attribute("load1", 9.9e37)  # high impedance
    generator.write_attribute("amplitude1", 15.0)  # only into high impedance
    generator.write_attribute("burstCount1", 5)
    generator.write_attribute("burstState1", True)
    assert ":FREQ 2500;:FREQ?;:SYST:ERR?" in simulator.simulator.received
    assert generator.read_attribute("amplitude1").value == 15.0
    wait_until(lambda: "Channel 1: SQUARE 2500 Hz, 15 Vpp, offset 0 V, bursts of 5" in generator.status(), 10,
               what="the settings in the status")
    generator.write_attribute("amplitude1", 1.0)
    generator.write_attribute("load1", 50.0)


def test_a_setting_the_instrument_refuses_comes_back_in_its_words_and_changes_nothing(generator):
    generator.write_attribute("load1", 50.0)
    before = generator.read_attribute("amplitude1").value
    with pytest.raises(tango.DevFailed) as failure:
        generator.write_attribute("amplitude1", 12.0)  # above 10 Vpp into 50 ohm
    assert failure.value.args[0].reason == "InstrumentError"
    assert "-222, 'Data out of range'" in failure.value.args[0].desc
    assert generator.read_attribute("amplitude1").value == before
    with pytest.raises(tango.DevFailed) as failure:
        generator.write_attribute("load1", 75.0)
    assert "50 ohm or a high-impedance load" in failure.value.args[0].desc


def test_an_arbitrary_waveform_is_uploaded_and_played(generator, simulator):
    points = np.sin(np.linspace(0, 2 * np.pi, 500, endpoint=False))
    generator.write_attribute("arbitraryWaveform1", points)
    assert len(simulator.simulator.instrument.volatile) == 500
    held = generator.read_attribute("arbitraryWaveform1").value
    assert np.max(np.abs(held - points)) <= 0.5 / 2047 + 1e-12
    wait_until(lambda: generator.read_attribute("waveform1").value == 6, 10, what="ARBITRARY")
    with pytest.raises(tango.DevFailed) as failure:
        generator.write_attribute("arbitraryWaveform1", [0.0, 2.0] * 10)
    assert "from -1 to +1" in failure.value.args[0].desc


@pytest.mark.parametrize(("fault", "says"), [("offline", "LinkError"), ("garbage", "GarbledReply")])
def test_a_fault_is_fault_with_the_reason_then_it_recovers(generator, simulator, fault, says):
    instrument = simulator.simulator
    if fault == "offline":  # the connection dropped, and refused until the instrument is back
        instrument.set_offline(True)
    elif fault == "garbage":
        instrument.garbage = True
    else:
        instrument.faults.add(fault)
    wait_until(lambda: generator.state() == tango.DevState.FAULT, 30, what=f"FAULT on {fault}")
    wait_until(lambda: says in generator.status(), 10, what=f"{says!r} in the status")
    assert generator.read_attribute("frequency1").quality == tango.AttrQuality.ATTR_INVALID
    instrument.clear()
    wait_until(lambda: generator.state() == tango.DevState.ON, 30, what=f"ON again after {fault}")
