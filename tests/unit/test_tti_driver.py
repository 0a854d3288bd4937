"""AimTtiPsu against the TTi simulator over a real socket: what goes on the wire, checks before
sending, settings read back, trips kept until reset, garbage and silence."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from device_servers.core.errors import GarbledReply, InstrumentError, LinkError, RejectedValue
from device_servers.core.framing import Lines
from device_servers.core.link import SerialLink
from device_servers.tti.driver import AimTtiPsu
from device_servers.tti.protocol import MODELS
from simulators import run_in_thread
from simulators.tti import TtiSimulator


@pytest.fixture
def sim() -> Iterator:
    with run_in_thread(TtiSimulator(load=100.0, seed=4)) as running:
        yield running


@pytest.fixture
def psu(sim) -> Iterator[AimTtiPsu]:
    driver = AimTtiPsu(SerialLink(sim.url, framing=Lines(b"\n"), write_terminator=b"\n", timeout=5.0))
    driver.connect()
    yield driver
    driver.close()


def test_identity_names_the_model(psu):
    assert psu.check_model().startswith("THURLBY THANDAR, MX100QP")
    other = AimTtiPsu(psu.link, MODELS["PL303-P"])
    with pytest.raises(InstrumentError, match="not an Aim-TTi PL303-P"):
        other.check_model()


def test_settings_go_out_as_the_manual_writes_them_and_are_read_back(sim, psu):
    assert psu.write(psu.voltage_setpoint(1), 12.0) == 12.0
    assert sim.simulator.received[-1] == "V1 12.000;V1?;EER?"  # set, read back, error check: one message
    assert psu.write(psu.current_limit(1), 0.25) == 0.25
    assert sim.simulator.received[-1] == "I1 0.250;I1?;EER?"
    assert psu.write(psu.ovp(1), 13.2) == 13.2
    assert sim.simulator.received[-1] == "OVP1 13.200;OVP1?;EER?"
    assert psu.write(psu.ocp(1), 1.0) == 1.0
    assert psu.set_output(1, True) is True
    assert sim.simulator.received[-3:] == ["LSR1?", "OP1 1;EER?", "OP1?;LSR1?"]


def test_one_message_reads_an_output(sim, psu):
    psu.write(psu.voltage_setpoint(2), 5.0)
    psu.write(psu.current_limit(2), 1.0)
    psu.set_output(2, True)
    status = psu.read_output(2)
    assert sim.simulator.received[-1] == "V2?;I2?;V2O?;I2O?;OP2?;OVP2?;OCP2?;LSR2?"
    assert (status.voltage_setpoint, status.current_limit, status.on) == (5.0, 1.0, True)
    assert status.voltage == pytest.approx(5.0, abs=0.003)
    assert status.current == pytest.approx(0.05, abs=0.001)  # 5 V across 100 ohm
    assert (status.ovp, status.ocp, status.trips) == (40.0, 3.3, ())


def test_values_beyond_the_model_are_refused_before_sending(sim, psu):
    sent = len(sim.simulator.received)
    with pytest.raises(RejectedValue, match=r"voltage setpoint \(output 1\) 36.0 is out of range: allowed 0 to 35 V"):
        psu.write(psu.voltage_setpoint(1), 36.0)
    with pytest.raises(RejectedValue, match="allowed 0 to 3 A"):
        psu.write(psu.current_limit(1), -0.1)
    with pytest.raises(RejectedValue, match="allowed 1 to 40 V"):
        psu.write(psu.ovp(1), 0.5)
    with pytest.raises(RejectedValue, match="output 5 does not exist: outputs are 1, 2, 3, 4"):
        psu.set_output(5, True)
    assert len(sim.simulator.received) == sent


def test_a_setting_the_instrument_refuses_says_its_execution_error(sim, psu):
    psu.model = MODELS["PL601-P"]  # a driver told the wrong model lets 50 V through to a 35 V output
    with pytest.raises(InstrumentError, match=r"the Aim-TTi PL601-P refused 'V1 50.000': execution error 100 \(range error\)"):
        psu.write(psu.voltage_setpoint(1), 50.0)
    assert psu.read(psu.voltage_setpoint(1)) == [0.0]  # the supply kept its set-point


def test_an_over_current_trip_is_kept_until_reset(sim, psu):
    psu.write(psu.voltage_setpoint(3), 5.0)
    psu.set_output(3, True)
    sim.simulator.overload(3)
    first = psu.read_output(3)
    assert (first.on, first.trips) == (False, ("over-current protection",))
    assert psu.read_output(3).trips == ("over-current protection",)  # LSR is read once, the trip stays
    psu.reset_trips()
    assert sim.simulator.received[-2:] == ["LSR1?;LSR2?;LSR3?;LSR4?", "TRIPRST;EER?"]
    assert psu.read_output(3).trips == ()


def test_an_over_voltage_trip_and_switching_on_again(sim, psu):
    psu.write(psu.ovp(4), 5.0)
    psu.write(psu.voltage_setpoint(4), 6.0)
    psu.set_output(4, True)
    assert psu.read_output(4).trips == ("over-voltage protection",)
    psu.write(psu.voltage_setpoint(4), 4.0)
    assert psu.set_output(4, True) is True
    assert psu.read_output(4).trips == ()


def test_switching_on_into_an_overload_trips_at_once_and_is_kept(sim, psu):
    sim.simulator.overload(1)
    psu.write(psu.voltage_setpoint(1), 5.0)
    assert psu.set_output(1, True) is False
    assert psu.trips(1) == ("over-current protection",)


def test_a_trip_seen_late_does_not_come_back_after_switching_on(sim, psu):
    psu.write(psu.ovp(2), 5.0)
    psu.write(psu.voltage_setpoint(2), 6.0)
    psu.set_output(2, True)  # trips; its LSR event is not read by anyone before the next lines
    psu.write(psu.voltage_setpoint(2), 4.0)
    assert psu.set_output(2, True) is True
    assert psu.read_output(2).trips == ()


def test_error_registers_and_configuration(psu):
    assert psu.read(psu.error_query, psu.query_error, psu.configuration) == [0, 0, 2]


def test_garbage_is_a_garbled_reply(sim, psu):
    sim.simulator.garbage = True
    with pytest.raises(GarbledReply):
        psu.read_output(1)


def test_silence_is_a_lost_link(sim, psu):
    sim.simulator.delay = 1.0
    psu.link.timeout = 0.5  # the fixture's 5 s leave room for a loaded machine
    with pytest.raises(LinkError, match="no reply"):
        psu.read_output(1)
