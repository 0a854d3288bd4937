"""The Minitrend simulator on the wire: Modbus TCP as pymodbus's own client and a raw socket see it.

A Modbus TCP request is the MBAP header (transaction id, protocol 0, length, unit) and the PDU:
function 4 (read input registers), start address, count. Pen i's value is a float32 in input
registers 0x18C0 + 2i, high word first; its alarms are the uint16 at 0x1980 + i.
"""

from __future__ import annotations

import socket
import struct

import pytest
from pymodbus.client import ModbusTcpClient

from simulators import run_in_thread
from simulators.minitrend import FLOW_PENS, MinitrendSimulator
from tangolab.scripting import wait_until


def settled(simulator: MinitrendSimulator, pen: int, flow: float) -> None:
    """Pen `pen` flowing at exactly `flow` l/min."""
    with simulator.lock:
        simulator.nominal[pen] = simulator.flow[pen] = flow


@pytest.fixture(scope="module")
def served():
    with run_in_thread(MinitrendSimulator(seed=7, noise=0.0)) as running:
        yield running


@pytest.fixture
def simulator(served):
    served.simulator.clear()
    yield served.simulator
    served.simulator.clear()


@pytest.fixture
def client(served):
    client = ModbusTcpClient("127.0.0.1", port=served.port, timeout=5, retries=0)
    assert client.connect()
    yield client
    client.close()


def exchange(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
        connection.sendall(request)
        reply = connection.recv(256)
    return reply


def test_a_pen_read_on_the_wire_byte_for_byte(served, simulator):
    settled(simulator, 0, 2.5)  # 2.5 = 0x40200000
    request = bytes.fromhex("0001 0000 0006 01 04 18C0 0002")
    assert exchange(served.port, request) == bytes.fromhex("0001 0000 0007 01 04 04 4020 0000")


def test_a_pen_read_with_pymodbus_own_client(simulator, client):
    settled(simulator, 8, 1.5)  # 1.5 = 0x3FC00000, high word first
    reply = client.read_input_registers(0x18C0 + 2 * 8, count=2, device_id=1)
    assert not reply.isError()
    assert reply.registers == [0x3FC0, 0x0000]
    value = client.convert_from_registers(reply.registers, client.DATATYPE.FLOAT32, word_order="big")
    assert value == 1.5


def test_the_flow_pens_carry_1_5_to_3_l_per_min_and_the_others_zero(client):
    reply = client.read_input_registers(0x18C0, count=2 * 10, device_id=1)
    values = client.convert_from_registers(reply.registers, client.DATATYPE.FLOAT32)
    for pen, value in enumerate(values):
        if pen in FLOW_PENS:
            assert 1.5 <= value <= 3.0, (pen, value)
        else:
            assert value == 0.0, (pen, value)


def test_alarm_words_are_zero_while_the_coolant_flows(client):
    reply = client.read_input_registers(0x1980, count=10, device_id=1)
    assert reply.registers == [0] * 10


def test_a_stopped_flow_falls_to_zero_and_sets_the_pens_low_flow_alarm_then_comes_back(simulator, client):
    assert simulator.control("flow 2 off") == "OK"

    def pen2() -> tuple[float, int]:
        value = client.read_input_registers(0x18C0 + 4, count=2, device_id=1).registers
        alarms = client.read_input_registers(0x1980 + 2, count=1, device_id=1).registers[0]
        return client.convert_from_registers(value, client.DATATYPE.FLOAT32), alarms

    wait_until(lambda: pen2()[0] < 0.01, 10, what="pen 2 near zero after its flow stopped")
    assert pen2()[1] == 0x01  # alarm 1: the recorder's low-flow alarm
    assert simulator.control("flow 2 on") == "OK"
    wait_until(lambda: pen2()[0] > 1.4, 10, what="pen 2 flowing again")
    assert pen2()[1] == 0


def test_alarm_bits_forced_from_the_control_port(simulator, client):
    assert simulator.control("alarm 9 0x24") == "OK"
    assert client.read_input_registers(0x1980 + 9, count=1, device_id=1).registers == [0x24]
    assert simulator.control("alarm 9 0x40").startswith("ERROR alarm bits are 0 to 0x3F")
    assert simulator.control("flow 5 off").startswith("ERROR pen 5 carries no flow")


def test_an_address_outside_the_map_is_an_illegal_data_address_exception(served):
    # 0x18E0 is past the 16 pens: exception reply, function 0x84, code 2
    request = bytes.fromhex("0002 0000 0006 01 04 18E0 0002")
    assert exchange(served.port, request) == bytes.fromhex("0002 0000 0003 01 84 02")


def test_alarm_words_on_the_wire_byte_for_byte(served, simulator):
    request = bytes.fromhex("0004 0000 0006 01 04 1980 0001")  # pen 0's alarm word
    assert exchange(served.port, request) == bytes.fromhex("0004 0000 0005 01 04 02 0000")


def test_pen_registers_are_read_only(client):
    reply = client.write_registers(0x18C0, [0x4000, 0], device_id=1)
    assert reply.isError() and reply.exception_code == 2


def test_the_exception_fault_answers_every_request_with_a_modbus_exception(served, simulator):
    assert simulator.control("exception on") == "OK"
    request = bytes.fromhex("0003 0000 0006 01 04 18C0 0002")
    assert exchange(served.port, request) == bytes.fromhex("0003 0000 0003 01 84 04")  # SERVER DEVICE FAILURE
    assert simulator.control("exception 6") == "OK"
    assert exchange(served.port, request)[-2:] == b"\x84\x06"  # SERVER DEVICE BUSY
    assert "exception=6" in simulator.control("status")
    simulator.clear()
    assert exchange(served.port, request)[7:9] == b"\x04\x04"


def test_a_frozen_pen_holds_its_value(simulator, client):
    assert simulator.control("freeze pen3 on") == "OK"
    frozen = client.read_input_registers(0x18C0 + 6, count=2, device_id=1).registers
    simulator.set_flow(3, False)
    assert client.read_input_registers(0x18C0 + 6, count=2, device_id=1).registers == frozen


def test_what_reached_the_wire_is_recorded(simulator, client):
    before = len(simulator.received)
    client.read_input_registers(0x1980, count=10, device_id=1)
    request = simulator.received[before]
    assert (request.function_code, request.address, request.count) == (4, 0x1980, 10)


def test_the_same_seed_gives_the_same_flows():
    readings = []
    for _ in range(2):
        simulator = MinitrendSimulator(seed=11)
        readings.append([simulator.pen_value(pen) for pen in FLOW_PENS for _ in range(3)])
    assert readings[0] == readings[1]
    assert struct.pack(">f", readings[0][0]) != struct.pack(">f", readings[0][1])  # noise
