"""ModbusLink against a pymodbus server (the simulator core's Modbus simulator) over a real socket.

`modbus://host[:port][/unit]` picks it in `link_for_url`; it reads and writes registers, turns
Modbus exception replies into InstrumentError by name and silence or a lost connection into
LinkError, with the link's deadline on every request.
"""

from __future__ import annotations

import threading

import pytest
from pymodbus.simulator import DataType, SimData

from device_servers.core.errors import GarbledReply, InstrumentError, LinkError, RejectedValue
from device_servers.core.line import Line
from device_servers.core.link import Link, link_for_url
from device_servers.core.modbus_link import ModbusLink, parse_modbus_url
from device_servers.core.registers import float32_registers, float32_values
from simulators import run_in_thread
from simulators.modbus import ModbusSimulator
from tangolab.lab_config import free_port

REGISTERS = 64


class RegisterBank(ModbusSimulator):
    """Holding registers 0 to 63 that keep what is written; input registers are the same map."""

    kind = "registers"

    def __init__(self) -> None:
        super().__init__(seed=1)
        self.values = [0] * REGISTERS

    def register_map(self) -> list[SimData]:
        return [SimData(0, count=REGISTERS, values=0, datatype=DataType.REGISTERS)]

    def read_registers(self, function_code: int, address: int, count: int) -> list[int]:
        return self.values[address : address + count]

    def write_registers(self, function_code: int, address: int, values: list[int]) -> None:
        self.values[address : address + len(values)] = values


@pytest.fixture(scope="module")
def served():
    with run_in_thread(RegisterBank()) as running:
        yield running


@pytest.fixture
def bank(served):
    served.simulator.clear()
    served.simulator.values[:] = [0] * REGISTERS
    yield served.simulator
    served.simulator.clear()


@pytest.fixture
def link(served, bank):
    link = link_for_url(served.url, timeout=5.0, serial_options={"baudrate": 9600})
    link.open()
    yield link
    link.close()


def test_the_url_names_host_port_and_unit_with_502_and_1_by_default():
    assert parse_modbus_url("modbus://192.168.1.20:1502/7") == ("192.168.1.20", 1502, 7)
    assert parse_modbus_url("modbus://recorder.lab") == ("recorder.lab", 502, 1)
    for bad in ("modbus://host/unit", "modbus://:502/1", "modbus://host:port/1", "modbus://host/256"):
        with pytest.raises(ValueError, match=r"modbus://<host>\[:<port>\]\[/<unit 0 to 255>\]"):
            parse_modbus_url(bad)


def test_link_for_url_picks_the_modbus_transport(served):
    link = link_for_url(served.url, timeout=0.5, serial_options={})
    assert isinstance(link, ModbusLink)
    assert (link.port, link.unit, link.timeout, link.is_open) == (served.port, 1, 0.5, False)


def test_registers_written_are_read_back_as_holding_and_input_registers(link, bank):
    link.write_registers(10, [0x1234, 0xFFFF, 0])
    assert link.read_holding_registers(10, 3) == [0x1234, 0xFFFF, 0]
    assert link.read_input_registers(9, 5) == [0, 0x1234, 0xFFFF, 0, 0]
    functions = [(pdu.function_code, pdu.address) for pdu in bank.received[-3:]]
    assert functions == [(16, 10), (3, 10), (4, 9)]


def test_float32_word_order():
    assert float32_values([0x3FC0, 0x0000, 0x4020, 0x0000]) == [1.5, 2.5]  # high word first
    assert float32_values([0x0000, 0x3FC0], word_order="little") == [1.5]
    assert float32_registers([1.5, -2.0]) == [0x3FC0, 0, 0xC000, 0]
    assert float32_registers([1.5], word_order="little") == [0, 0x3FC0]
    with pytest.raises(GarbledReply, match="3 registers"):
        float32_values([0, 0, 0])


def test_an_exception_reply_is_an_instrument_error_by_its_name_and_the_link_stays_open(link, bank):
    with pytest.raises(InstrumentError, match="Modbus exception 2 ILLEGAL DATA ADDRESS"):
        link.read_holding_registers(60, 10)  # 64 registers only
    assert link.is_open
    bank.control("exception 6")
    with pytest.raises(InstrumentError, match="Modbus exception 6 SERVER DEVICE BUSY"):
        link.write_registers(0, [1])
    bank.clear()
    assert link.read_holding_registers(0, 1) == [0]


@pytest.mark.parametrize(
    ("operation", "allowed"),
    [
        (lambda link: link.read_input_registers(0, 0), "1 to 125 registers, not 0"),
        (lambda link: link.read_holding_registers(0, 126), "1 to 125 registers, not 126"),
        (lambda link: link.write_registers(0, [0] * 124), "1 to 123 registers, not 124"),
        (lambda link: link.read_input_registers(0xFFFF, 2), "0 to 0xFFFF"),
        (lambda link: link.write_registers(0, [0x10000]), "0 to 65535, not 65536"),
    ],
)
def test_requests_that_cannot_be_sent_are_refused_before_sending(link, bank, operation, allowed):
    before = len(bank.received)
    with pytest.raises(RejectedValue, match=allowed):
        operation(link)
    assert len(bank.received) == before


def test_silence_is_a_link_error_within_the_deadline_and_closes_the_link(link, bank):
    bank.delay = 1.0
    with pytest.raises(LinkError, match=r"no valid reply to the read of 1 holding register\(s\) at 0x0000 within 0.2 s"):
        link.read_holding_registers(0, 1, timeout=0.2)
    assert not link.is_open
    with pytest.raises(LinkError, match="not connected"):
        link.read_holding_registers(0, 1)
    bank.delay = 0.0
    link.open()
    assert link.read_holding_registers(0, 1) == [0]


def test_garbage_is_no_valid_reply(link, bank):
    bank.garbage = True
    with pytest.raises(LinkError, match="no valid reply"):
        link.read_holding_registers(0, 2, timeout=0.3)
    bank.garbage = False
    link.open()
    assert link.read_holding_registers(0, 2) == [0, 0]


def test_a_dropped_connection_is_a_link_error_and_opening_again_works(link, bank):
    assert link.read_input_registers(0, 1) == [0]  # the server has taken the connection
    bank.drop()
    with pytest.raises(LinkError, match="connection lost during the read"):
        link.read_input_registers(0, 1)
    assert not link.is_open
    link.open()
    assert link.read_input_registers(0, 1) == [0]


def test_an_offline_instrument_and_a_closed_port_are_link_errors(link, bank):
    bank.set_offline(True)
    with pytest.raises(LinkError, match="connection lost"):
        link.read_input_registers(0, 1)
    with pytest.raises(LinkError):
        link.open()
        link.read_input_registers(0, 1)
    bank.set_offline(False)
    closed = ModbusLink(f"modbus://127.0.0.1:{free_port()}/1", timeout=1.0)
    with pytest.raises(LinkError, match="cannot connect to modbus://127.0.0.1:.*refused"):
        closed.open()


def test_a_modbus_line_is_a_line_of_registers_not_of_bytes(link):
    assert isinstance(link, Line) and not isinstance(link, Link)
    assert not hasattr(link, "transaction") and not hasattr(link, "query")


def test_the_lock_keeps_each_reply_with_its_request(link, bank):
    bank.values[:] = list(range(REGISTERS))
    failures: list[str] = []

    def reader(first: int) -> None:
        for _ in range(25):
            if (got := link.read_input_registers(first, 4)) != list(range(first, first + 4)):
                failures.append(f"{first}: {got}")

    threads = [threading.Thread(target=reader, args=(first,)) for first in (0, 10, 20, 30)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not failures
