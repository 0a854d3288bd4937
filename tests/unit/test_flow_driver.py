"""The Minitrend driver against the simulator over Modbus TCP: two requests per status, checks
before sending, word order, a failed pen input as no value."""

from __future__ import annotations

import math

import pytest

from device_servers.core.errors import InstrumentError, RejectedValue
from device_servers.core.link import link_for_url
from device_servers.flow.driver import Minitrend
from simulators import run_in_thread
from simulators.minitrend import MinitrendSimulator

FLOW_PENS = [0, 1, 2, 3, 8, 9]


@pytest.fixture(scope="module")
def served():
    with run_in_thread(MinitrendSimulator(seed=5, noise=0.0)) as running:
        yield running


@pytest.fixture
def driver(served):
    served.simulator.clear()
    link = link_for_url(served.url, timeout=5.0)
    link.open()
    yield Minitrend(link)
    link.close()
    served.simulator.clear()


def test_status_of_six_pens_is_two_requests_spanning_them(driver, served):
    before = len(served.simulator.received)
    status = driver.read_status(FLOW_PENS)
    requests = served.simulator.received[before:]
    assert [(r.function_code, r.address, r.count) for r in requests] == [(4, 0x18C0, 20), (4, 0x1980, 10)]
    for pen in FLOW_PENS:
        assert status[pen].value == pytest.approx(served.simulator.nominal[pen], abs=1e-5)
        assert (status[pen].alarms, status[pen].active_alarms) == (0, [])


def test_alarm_bits_name_the_alarms_that_are_on(driver, served):
    served.simulator.control("alarm 3 0x21")
    assert driver.read_status([3])[3].active_alarms == [1, 6]


@pytest.mark.parametrize(("pens", "says"), [([], "at least one"), ([0, 16], "0 to 15, not 16"), ([-1], "not -1")])
def test_pens_outside_the_map_are_refused_before_sending(driver, served, pens, says):
    before = len(served.simulator.received)
    with pytest.raises(RejectedValue, match=says):
        driver.read_pens(pens)
    assert len(served.simulator.received) == before


def test_the_wrong_word_order_gives_other_numbers(driver, served):
    swapped = Minitrend(driver.link, word_order="little")
    with served.simulator.lock:
        served.simulator.nominal[0] = served.simulator.flow[0] = 2.5
    assert driver.read_pens([0]) == {0: 2.5}
    assert swapped.read_pens([0])[0] != pytest.approx(2.5)
    with pytest.raises(ValueError, match="big .high word first. or little"):
        Minitrend(driver.link, word_order="middle")


def test_a_failed_pen_input_reads_as_no_value(driver, served):
    served.simulator.frozen["pen9"] = math.nan
    assert driver.read_pens([8, 9])[9] is None


def test_a_modbus_exception_reply_is_an_instrument_error(driver, served):
    served.simulator.control("exception 2")
    with pytest.raises(InstrumentError, match="ILLEGAL DATA ADDRESS"):
        driver.read_status(FLOW_PENS)
