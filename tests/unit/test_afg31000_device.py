"""The FunctionGenerator device as a Tektronix AFG31000 in a DeviceTestContext (its own process)
against the AFG31000 simulator over a socket: two channels with output switches on the same
vocabulary as the HP 33120A, a refusal in the instrument's words, an arbitrary waveform read back
from the instrument, and the fault matrix."""

from __future__ import annotations

import numpy as np
import pytest
import tango
from tango.test_context import DeviceTestContext

from device_servers.generators.device import FunctionGenerator
from simulators import run_in_thread
from simulators.afg31000 import Afg31000Simulator
from tangolab.scripting import wait_until


@pytest.fixture(scope="module")
def simulator():
    with run_in_thread(Afg31000Simulator(seed=3)) as running:
        yield running


@pytest.fixture(scope="module")
def generator(simulator):
    properties = {"Url": simulator.url, "PollPeriod": 0.2, "Timeout": 0.5, "Model": "AFG31000"}
    with DeviceTestContext(FunctionGenerator, properties=properties, process=True, timeout=30) as proxy:
        wait_until(lambda: proxy.state() == tango.DevState.ON, 30, what="generator ON")
        yield proxy


@pytest.fixture(autouse=True)
def healthy(simulator, generator):
    simulator.simulator.clear()
    wait_until(lambda: generator.state() == tango.DevState.ON, 30, what="generator ON")
    yield
    simulator.simulator.clear()


def test_two_channels_each_with_its_output_switch(generator, simulator):
    names = {name.lower() for name in generator.get_attribute_list()}
    for n in (1, 2):
        for name in ("waveform", "frequency", "amplitude", "offset", "load", "output", "burstcount", "arbitrarywaveform"):
            assert f"{name}{n}" in names
    generator.write_attribute("output2", True)
    generator.write_attribute("frequency2", 2500.0)
    assert simulator.simulator.channels[2].on and not simulator.simulator.channels[1].on
    assert ":SOUR2:FREQ 2500;:SOUR2:FREQ?;:SYST:ERR?" in simulator.simulator.received
    wait_until(lambda: "channel 2: SINE 2500 Hz" in generator.status(), 10, what="channel 2 in the status")
    assert "(output off)" in generator.status().split(";")[0]


def test_a_refusal_is_the_instruments_words_and_a_missing_waveform_is_refused_before_sending(generator):
    with pytest.raises(tango.DevFailed) as failure:
        generator.write_attribute("amplitude1", 12.0)  # above 10 Vpp into 50 ohm
    assert "-222, 'Data out of range'" in failure.value.args[0].desc
    assert generator.read_attribute("amplitude1").value == 1.0
    with pytest.raises(tango.DevFailed) as failure:
        generator.write_attribute("waveform1", 2)  # TRIANGLE: a ramp's symmetry on this one
    assert failure.value.args[0].reason == "ValueRejected"
    generator.write_attribute("load1", 9.9e37)
    generator.write_attribute("amplitude1", 12.0)  # fine into high impedance
    assert generator.read_attribute("amplitude1").value == 12.0


def test_an_arbitrary_waveform_is_read_back_from_the_instrument(generator, simulator):
    points = np.cos(np.linspace(0, 2 * np.pi, 1000, endpoint=False))
    generator.write_attribute("arbitraryWaveform2", points)
    assert len(simulator.simulator.memories[2].points) == 1000
    held = generator.read_attribute("arbitraryWaveform2").value
    assert np.max(np.abs(held - points)) <= 1 / 16383 + 1e-12
    wait_until(lambda: generator.read_attribute("waveform2").value == 6, 10, what="ARBITRARY on channel 2")


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
    instrument.clear()
    wait_until(lambda: generator.state() == tango.DevState.ON, 30, what=f"ON again after {fault}")
