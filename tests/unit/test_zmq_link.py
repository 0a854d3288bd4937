"""The zmq:// transport against the epz board simulator's broker over real sockets: URLs, the
exchange that survives ZeroMQ's slow joiner, a lost broker as a LinkError and the line coming
back by itself, subscribers of their own, the ROUTER file fetch in chunks."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from device_servers.core.errors import LinkError
from device_servers.core.line import line_for_url
from device_servers.core.zmq_link import ZmqLink, parse_zmq_url
from simulators import run_in_thread
from simulators.epz import EpzSimulator
from tangolab.scripting import wait_until


@pytest.fixture(scope="module")
def board() -> Iterator[tuple[EpzSimulator, str]]:
    simulator = EpzSimulator(seed=3)
    with run_in_thread(simulator) as running:
        yield simulator, running.url


@pytest.fixture
def link(board) -> Iterator[ZmqLink]:
    simulator, url = board
    simulator.clear()
    line = line_for_url(url, timeout=2.0)
    line.connect()
    yield line
    line.close()
    simulator.clear()


def test_urls_name_the_brokers_ports():
    assert parse_zmq_url("zmq://raspberry") == ("raspberry", (6661, 6669, 6000))
    assert parse_zmq_url("zmq://127.0.0.1:16661/16669/16000") == ("127.0.0.1", (16661, 16669, 16000))
    assert parse_zmq_url("zmq://host:7000") == ("host", (7000, 6669, 6000))
    with pytest.raises(ValueError, match="zmq://<host>"):
        parse_zmq_url("zmq://host:1/2/3/4")


def test_an_exchange_gets_its_reply_from_a_fresh_connection(link):
    # the first request after connecting is lost until the subscriptions travel: it is sent again
    assert link.exchange("NANOUP:REQPAR:GET_DAC_VREF", "NANOUP:SNDPAR:k:") == "NANOUP:SNDPAR:k:5.0"
    link.publish("NANOUP:CMD:SET_IGAIN:0.25")
    assert link.exchange("NANOUP:REQPAR:GET_IGAIN", "NANOUP:SNDPAR:R:") == "NANOUP:SNDPAR:R:0.25"


def test_a_lost_broker_is_a_link_error_and_the_line_comes_back(board, link):
    simulator, _ = board
    link.exchange("NANOUP:REQPAR:GET_DEVICE_TYPE", "NANOUP:SNDPAR:a:")
    generation = link.generation
    simulator.set_offline(True)
    with pytest.raises(LinkError, match="no 'NANOUP:SNDPAR:a:' reply"):
        link.exchange("NANOUP:REQPAR:GET_DEVICE_TYPE", "NANOUP:SNDPAR:a:", timeout=0.5)
    assert not link.is_open  # closed: its devices go FAULT and reconnect
    simulator.set_offline(False)
    assert link.connect() == generation + 1
    assert link.exchange("NANOUP:REQPAR:GET_DEVICE_TYPE", "NANOUP:SNDPAR:a:", timeout=10) == "NANOUP:SNDPAR:a:NANOUP"


def test_a_stalled_board_is_silence_too(board, link):
    simulator, _ = board
    assert simulator.control("stall on") == "OK"
    assert "stall=on" in simulator.control("status")
    with pytest.raises(LinkError):
        link.exchange("NANOUP:REQPAR:GET_DEVICE_TYPE", "NANOUP:SNDPAR:a:", timeout=0.5)


def test_a_subscriber_hears_the_block_stream(link):
    with link.subscriber("NANOUP:BLOCK:") as blocks:
        parts = wait_until(lambda: blocks.receive(0.1), 10, what="a block")
    assert parts[0] == b"NANOUP:BLOCK:" and len(parts) == 3


def test_a_file_is_fetched_in_chunks_of_250_kb(board, link):
    simulator, _ = board
    simulator.file = bytes(range(256)) * 2500  # 640 kB: three chunks
    assert link.fetch() == simulator.file
