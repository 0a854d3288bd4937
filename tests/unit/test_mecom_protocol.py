"""The MeCom simulator (TEC-1090 behind an LTR-1200) on the wire: bytes sent, bytes received.

The frames are the documented ones, CRC included: the MeCom Protocol Specification 5117C
(reset `#00BDE2RS9780`, the error reply `!0115AC+057509`), the TEC-Family Communication
Protocol 5136 ("Example Communication Strings", device address 0: any device answers), and
the lab reference (`#0115A0?VR03E801B870`, set −90 °C `#0115A1VS0BB801C2B40000D745`; both
CRCs check out). A frame is `#` address sequence payload CRC-16/XMODEM CR; the reply echoes
address and sequence after `!`; an acknowledge carries the set command's CRC.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator

import pytest

from simulators.core import run_in_thread
from simulators.mecom import MeComSimulator


class Wire:
    """A raw TCP connection to the simulator, reading CR-terminated frames."""

    def __init__(self, port: int) -> None:
        self.socket = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buffer = b""

    def receive(self) -> bytes:
        while b"\r" not in self.buffer:
            chunk = self.socket.recv(4096)
            assert chunk, "the simulator closed the connection"
            self.buffer += chunk
        frame, _, self.buffer = self.buffer.partition(b"\r")
        return frame + b"\r"

    def ask(self, data: bytes) -> bytes:
        self.socket.sendall(data)
        return self.receive()

    def silent(self, seconds: float = 0.3) -> bool:
        self.socket.settimeout(seconds)
        try:
            return not self.buffer and self.socket.recv(1) == b""
        except TimeoutError:
            return True
        finally:
            self.socket.settimeout(10)


@pytest.fixture
def sim() -> MeComSimulator:
    simulator = MeComSimulator(seed=1, speed=0.0)  # physics held: the manual's values stay
    simulator.channels[0].object = 25.648025512695312  # the value of the manual's example
    return simulator


@pytest.fixture
def wire(sim: MeComSimulator) -> Iterator[Wire]:
    with run_in_thread(sim) as running:
        connection = Wire(running.port)
        greeting = connection.receive()
        assert b"Welcome" in greeting  # the LTR-1200 speaks first; CR LF ends its line
        connection.buffer = connection.buffer.removeprefix(b"\n")
        yield connection
        connection.socket.close()


# -- the manuals' examples ---------------------------------------------------------------------


def test_5136_read_object_temperature(wire):
    assert wire.ask(b"#0015AB?VR03E801C21A\r") == b"!0015AB41CD2F28D5C2\r"  # 25.648026 °C


def test_5136_set_target_temperature_is_acknowledged_with_the_commands_crc(wire, sim):
    assert wire.ask(b"#0015B0VS0BB80141AE0000C482\r") == b"!0015B0C482\r"
    assert sim.channels[0].target == 21.75


def test_5136_set_output_stage_live(wire, sim):
    assert wire.ask(b"#0015AEVS07DA01000000028F97\r") == b"!0015AE8F97\r"
    assert sim.channels[0].stage == 2


def test_5136_a_parameter_that_does_not_exist_is_refused_with_05(wire):
    assert wire.ask(b"#0015AC?VR04D2017BFE\r") == b"!0015AC+0532DA\r"


def test_5136_device_type_and_serial_number_are_int32(wire, sim):
    sim.device.device_type, sim.device.serial_number = 1089, 112  # the manual's TEC-1089
    assert wire.ask(b"#0015AB?VR0064018000\r") == b"!0015AB000004411DBD\r"
    assert wire.ask(b"#0015AC?VR0066018125\r") == b"!0015AC000000706F2C\r"


def test_5117_error_reply_at_address_1(wire):
    assert wire.ask(_frame("#0115AC?VR04D201")) == b"!0115AC+057509\r"


def test_5117_reset_is_acknowledged(wire, sim):
    assert wire.ask(b"#00BDE2RS9780\r") == b"!00BDE29780\r"
    assert sim.device.status == 5  # "device will reset within the next 200 ms"


def test_reference_read_object_temperature_channel_1_at_address_1(wire):
    reply = wire.ask(b"#0115A0?VR03E801B870\r")
    assert reply == b"!0115A041CD2F28" + _crc(b"!0115A041CD2F28") + b"\r"


def test_reference_set_minus_90_degrees(wire, sim):
    assert struct.pack(">f", -90.0).hex().upper() == "C2B40000"
    assert wire.ask(b"#0115A1VS0BB801C2B40000D745\r") == b"!0115A1D745\r"
    assert sim.channels[0].target == -90.0


# -- refusals ----------------------------------------------------------------------------------


def test_a_spoiled_crc_is_answered_with_03_general_communication_error(wire, sim):
    assert wire.ask(b"#0115A1VS0BB801C2B40000D746\r") == b"!0115A1+03" + _crc(b"!0115A1+03") + b"\r"
    assert sim.channels[0].target == 20.0  # nothing was set


def test_read_only_out_of_range_and_missing_instance(wire):
    assert wire.ask(_frame("#0115B1VS03E80142C80000")) == _reply("!0115B1+06")  # object T is measured
    assert wire.ask(_frame("#0115B2VS0BB80144FA0000")) == _reply("!0115B2+07")  # 2000 °C > RNG_TEMP
    assert wire.ask(_frame("#0115B3VS07DA0100000007")) == _reply("!0115B3+07")  # no output stage mode 7
    assert wire.ask(_frame("#0115B4?VR03E803")) == _reply("!0115B4+08")  # two channels only
    assert wire.ask(_frame("#0115B5?XX")) == _reply("!0115B5+01")
    assert wire.ask(_frame("#0115B6?VR03E8")) == _reply("!0115B6+04")


def test_another_address_is_not_answered(wire):
    wire.socket.sendall(_frame("#0215C0?VR03E801"))
    assert wire.silent()


def test_reply_faults_spoil_the_crc_the_address_or_the_sequence(wire, sim):
    request = _frame("#0115D0?VR03E801")
    sim.faults.add("checksum")
    good = b"!0115D041CD2F28" + _crc(b"!0115D041CD2F28")
    assert wire.ask(request)[:-5] == good[:-4] and wire.ask(request)[-5:-1] != good[-4:]
    sim.faults = {"address"}
    assert wire.ask(request) == _reply("!0215D041CD2F28")
    sim.faults = {"sequence"}
    assert wire.ask(request) == _reply("!0115D141CD2F28")
    assert sim.control("sequence off") == "OK" and not sim.faults


def test_flow_on_the_control_port(sim):
    assert sim.control("flow off") == "OK"
    assert not sim.device.flowing
    assert "flow=off" in sim.control("status")


def _crc(data: bytes) -> bytes:
    from device_servers.core.framing import crc16_xmodem

    return f"{crc16_xmodem(data):04X}".encode()


def _frame(body: str) -> bytes:
    """`body` with its CRC and CR (requests and replies alike)."""
    return body.encode() + _crc(body.encode()) + b"\r"


_reply = _frame
