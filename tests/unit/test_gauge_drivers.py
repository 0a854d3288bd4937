"""The TPG 361 and PDR900 drivers against their simulators over real sockets: what goes on the
wire, readings in mbar whatever the gauge's unit, status codes that never become a pressure,
refusals in the gauge's words, garbage and silence."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from device_servers.core.errors import GarbledReply, InstrumentError, LinkError, RejectedValue
from device_servers.core.link import SerialLink
from device_servers.gauge.pdr900 import Pdr900
from device_servers.gauge.tpg361 import Tpg361
from device_servers.gauge.vocabulary import SensorStatus
from simulators import run_in_thread
from simulators.pdr900 import Pdr900Simulator
from simulators.tpg361 import Tpg361Simulator

TORR = 1013.25 / 760


@pytest.fixture
def tpg() -> Iterator[tuple[Tpg361, Tpg361Simulator]]:
    sim = Tpg361Simulator(seed=2, pressure=2.5e-3)
    sim.freeze("pressure")
    with run_in_thread(sim) as running:
        link = SerialLink(running.url, framing=Tpg361.framing, timeout=5.0)
        link.open()
        yield Tpg361(link), sim
        link.close()


@pytest.fixture
def pdr() -> Iterator[tuple[Pdr900, Pdr900Simulator]]:
    sim = Pdr900Simulator(seed=2, pressure=2.5e-3)
    sim.freeze("pressure")
    with run_in_thread(sim) as running:
        link = SerialLink(running.url, framing=Pdr900.framing, timeout=5.0)
        link.open()
        yield Pdr900(link, address=253), sim
        link.close()


# -- TPG 361 -----------------------------------------------------------------------------------------


def test_tpg_configure_sets_mbar_and_reads_the_pressure(tpg):
    gauge, sim = tpg
    sim.unit = 1  # left in Torr by someone at the front panel
    gauge.configure()
    assert sim.received[:4] == [b"ERR\r\n", b"\x05", b"UNI,0\r\n", b"\x05"]
    assert gauge.unit == "mbar" and sim.unit == 0
    reading = gauge.read()
    assert reading.status is SensorStatus.OK
    assert reading.pressure == pytest.approx(2.5e-3)
    assert gauge.identify() == "PKR"


def test_tpg_in_torr_still_reads_mbar(tpg):
    gauge, _ = tpg
    assert gauge.set_unit("Torr") == "Torr"
    assert gauge.read().pressure == pytest.approx(2.5e-3, rel=1e-4)
    with pytest.raises(RejectedValue, match="one of mbar, Torr, Pa"):
        gauge.set_unit("psi")


@pytest.mark.parametrize(
    ("fault", "status"),
    [("sensor error", SensorStatus.SENSOR_ERROR), ("sensor off", SensorStatus.SENSOR_OFF),
     ("no sensor", SensorStatus.NO_SENSOR)],
)
def test_tpg_status_codes_carry_no_pressure(tpg, fault, status):
    gauge, sim = tpg
    gauge.configure()
    sim.control(fault)
    reading = gauge.read()
    assert (reading.pressure, reading.status) == (None, status)
    assert "no valid pressure" in reading.text


def test_tpg_bad_mnemonic_is_refused_in_the_gauges_words(tpg):
    gauge, sim = tpg
    with pytest.raises(InstrumentError, match=r"TPG 361 refused 'XYZ' \(NAK\): error 0001 \(syntax error\)"):
        gauge._query("XYZ")
    assert sim.received[-3:] == [b"XYZ\r\n", b"ERR\r\n", b"\x05"]
    assert gauge.read().status is SensorStatus.OK, "the line is still in step"


def test_tpg_measurement_parsing(tpg):
    gauge, _ = tpg
    assert gauge.parse_measurement("0,1.0000E-03").pressure == 1e-3
    assert gauge.parse_measurement("1,5.0000E-04").status is SensorStatus.UNDERRANGE
    for bad in ("7,1.0E-3", "0;1.0E-3", "x,1", "0,abc"):
        with pytest.raises(GarbledReply):
            gauge.parse_measurement(bad)


def test_tpg_streaming_lines_arrive_unasked(tpg):
    gauge, _ = tpg
    gauge.configure()
    gauge.start_streaming(0.1)
    line = gauge.link.read_frame(timeout=2.0).decode()
    assert gauge.parse_measurement(line).pressure == pytest.approx(2.5e-3)
    with pytest.raises(RejectedValue, match="0.1, 1, 60"):
        gauge.start_streaming(5)


def test_tpg_garbage_and_silence(tpg):
    gauge, sim = tpg
    sim.garbage = True
    with pytest.raises(GarbledReply, match="expected ACK or NAK"):
        gauge.read()
    sim.clear()
    sim.delay = 1.0
    gauge.link.open()
    gauge.link.timeout = 0.5  # the fixture's 5 s leave room for a loaded machine
    with pytest.raises(LinkError, match="no reply"):
        gauge.read()


# -- PDR900 ------------------------------------------------------------------------------------------


def test_pdr_reads_torr_and_gives_mbar(pdr):
    gauge, sim = pdr
    gauge.configure()
    assert gauge.unit == "Torr"
    reading = gauge.read()
    assert reading.status is SensorStatus.OK
    assert reading.pressure == pytest.approx(2.5e-3, rel=5e-3)  # 3 digits in Torr
    assert sim.received[-2:] == ["@253T?;FF", "@253PR1?;FF"]
    assert "U!MBAR;FF" not in "".join(sim.received), "the controller's unit is left as the lab set it"


def test_pdr_in_pascal_still_reads_mbar(pdr):
    gauge, sim = pdr
    sim.unit = "PASCAL"
    gauge.configure()
    assert gauge.unit == "Pa"
    assert gauge.read().pressure == pytest.approx(2.5e-3, rel=5e-3)


def test_pdr_finds_its_address(pdr):
    gauge, sim = pdr
    sim.address = 17
    finder = Pdr900(gauge.link, address=None)
    finder.configure()
    assert finder.address == 17
    assert sim.received[0] == "@254AD?;FF"
    assert finder.identify() == "PDR900 serial 1734201956, firmware 1.07"
    with pytest.raises(RejectedValue, match="1 to 253"):
        Pdr900(gauge.link, address=254)


def test_pdr_nak_in_the_manuals_words(pdr):
    gauge, _ = pdr
    with pytest.raises(InstrumentError, match=r"PDR900 refused 'XYZ\?': NAK160 \(unrecognized message\)"):
        gauge.ask("XYZ?")
    with pytest.raises(InstrumentError, match=r"NAK169 \(invalid argument\)"):
        gauge.ask("U!FURLONG")


def test_pdr_sensor_failure_is_a_status_not_a_pressure(pdr):
    gauge, sim = pdr
    sim.control("sensor error")
    reading = gauge.read()
    assert (reading.pressure, reading.status) == (None, SensorStatus.SENSOR_ERROR)
    assert reading.detail == "MicroPirani sensor failure"


def test_pdr_answer_from_another_address_garbage_and_truncation(pdr):
    gauge, sim = pdr
    sim.faults.add("address")
    with pytest.raises(GarbledReply, match="answer from address 001, not 253"):
        gauge.read()
    sim.clear()
    sim.garbage = True
    with pytest.raises(GarbledReply, match="PDR900 answered"):
        gauge.read()
    sim.clear()
    sim.faults.add("truncate")
    gauge.link.timeout = 0.5  # the fixture's 5 s leave room for a loaded machine
    with pytest.raises(LinkError, match="got b'@253A"):
        gauge.read()
