"""HuberChiller against the simulator over a real socket: frames on the wire, values checked
before sending, replies checked (address, length, checksum) before they are believed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from device_servers.core.errors import GarbledReply, LinkError, RejectedValue
from device_servers.core.framing import Lines
from device_servers.core.link import SerialLink
from device_servers.huber.driver import HuberChiller
from device_servers.huber.protocol import celsius, hundredths
from simulators import run_in_thread
from simulators.huber import HuberSimulator


@pytest.fixture
def sim() -> Iterator:
    with run_in_thread(HuberSimulator(seed=4)) as running:
        yield running


@pytest.fixture
def chiller(sim) -> Iterator[HuberChiller]:
    driver = HuberChiller(SerialLink(sim.url, framing=Lines(b"\r"), write_terminator=b"\r", timeout=5.0))
    driver.connect()
    yield driver
    driver.close()


def test_two_complement_hundredths_as_the_manual_gives_them():
    # manual: 0190h corresponds to +4 °C, FE70h to -4 °C; 7FFFh is 327.67 °C, 8000h -327.68 °C
    assert (hundredths(4), hundredths(-4), hundredths(-0.01)) == ("0190", "FE70", "FFFF")
    assert (celsius("0190"), celsius("FE70"), celsius("7FFF"), celsius("8000")) == (4, -4, 327.67, -327.68)


def test_status_reads_every_field_and_sends_the_status_query(sim, chiller):
    status = chiller.read_status()
    assert sim.simulator.received[-1] == b"[M01G0D******C0"
    assert (status.mode, status.alarm, status.setpoint, status.external) == ("OFF", False, 20.0, None)
    assert status.internal == pytest.approx(22.0, abs=0.1)


def test_setpoint_goes_out_in_hundredths_and_is_read_back(sim, chiller):
    assert chiller.set_setpoint(-4.0) == -4.0
    assert sim.simulator.received[-1] == b"[M01G0D**FE700A"
    assert chiller.set_setpoint(12.346) == 12.35  # hundredths are all the unit keeps (1235 = 04D3)
    assert sim.simulator.received[-1].startswith(b"[M01G0D**04D3")


def test_setpoint_outside_the_units_range_is_refused_before_sending(sim, chiller):
    sent = len(sim.simulator.received)
    with pytest.raises(RejectedValue, match="allowed -20 to 40 degC"):
        chiller.set_setpoint(-25.0)
    with pytest.raises(RejectedValue):
        chiller.set_setpoint(float("nan"))
    assert len(sim.simulator.received) == sent


def test_modes_as_their_lai_characters(sim, chiller):
    assert chiller.set_mode("cool") == "COOL"
    assert sim.simulator.received[-1].startswith(b"[M01G0DI*****")
    assert chiller.set_mode("PUMP") == "PUMP"
    assert sim.simulator.received[-1].startswith(b"[M01G0DC*****")
    assert chiller.set_mode("OFF") == "OFF"
    with pytest.raises(RejectedValue, match="OFF, PUMP, COOL"):
        chiller.set_mode("HEAT")


def test_identity_and_limits(chiller):
    assert chiller.identify() == "Huber Control"
    setpoint, working = chiller.read_limits()
    assert (setpoint.low, setpoint.high, working.low, working.high) == (-20, 40, -20, 40)


def test_alarm_flag(sim, chiller):
    sim.simulator.alarm = True
    assert chiller.read_status().alarm


def test_a_reply_whose_checksum_does_not_match_is_refused(sim, chiller):
    sim.simulator.faults.add("checksum")
    with pytest.raises(GarbledReply, match="checksum"):
        chiller.read_status()


def test_a_reply_from_another_address_is_refused(sim, chiller):
    sim.simulator.faults.add("address")
    with pytest.raises(GarbledReply, match="not from slave 01"):
        chiller.read_status()


def test_garbage_is_refused(sim, chiller):
    sim.simulator.garbage = True
    with pytest.raises(GarbledReply):
        chiller.read_status()


def test_a_reply_cut_short_or_none_is_a_lost_link(sim, chiller):
    sim.simulator.faults.add("truncate")  # half a frame, no CR: the read times out
    chiller.link.timeout = 0.5  # the fixture's 5 s leave room for a loaded machine
    with pytest.raises(LinkError, match="no reply"):
        chiller.read_status()
