"""The MeCom simulator (TEC-1090 behind an LTR-1200) on the wire: bytes sent, bytes received.

The frames are the documented ones, CRC included: the MeCom Protocol Specification 5117C
(reset `#00BDE2RS9780`, the error reply `!0115AC+057509`), the TEC-Family Communication
Protocol 5136 ("Example Communication Strings", device address 0: any device answers), and
the lab reference (`#0115A0?VR03E801B870`, set −90 °C `#0115A1VS0BB801C2B40000D745`; both
CRCs check out). A frame is `#` address sequence payload CRC-16/XMODEM CR; the reply echoes
address and sequence after `!`; an acknowledge carries the set command's CRC.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

import pytest

from device_servers.mecom.protocol import FRAMING
from simulators.core import run_in_thread
from simulators.mecom import MeComSimulator
from tests.wire import Wire

# Every CRC below is written out as the manuals print it or, for frames of our own, as computed
# once by hand with a bitwise CRC-16/XMODEM (polynomial 0x1021, initial 0), not by the code
# under test.


@pytest.fixture
def sim() -> MeComSimulator:
    simulator = MeComSimulator(seed=1, speed=0.0)  # physics held: the manual's values stay
    simulator.channels[0].object = 25.648025512695312  # the value of the manual's example
    return simulator


@pytest.fixture
def wire(sim: MeComSimulator) -> Iterator[Wire]:
    with run_in_thread(sim) as running, Wire(running.port, FRAMING) as connection:
        assert b"Welcome" in connection.receive()  # the LTR-1200 speaks first; CR LF ends its line
        assert connection.receive() == b"\n"
        yield connection


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
    assert wire.ask(b"#0115AC?VR04D201009F\r") == b"!0115AC+057509\r"


def test_5117_reset_is_acknowledged(wire, sim):
    assert wire.ask(b"#00BDE2RS9780\r") == b"!00BDE29780\r"
    assert sim.device.status == 5  # "device will reset within the next 200 ms"


def test_reference_read_object_temperature_channel_1_at_address_1(wire):
    assert wire.ask(b"#0115A0?VR03E801B870\r") == b"!0115A041CD2F28FD1D\r"


def test_reference_set_minus_90_degrees(wire, sim):
    assert struct.pack(">f", -90.0).hex().upper() == "C2B40000"
    assert wire.ask(b"#0115A1VS0BB801C2B40000D745\r") == b"!0115A1D745\r"
    assert sim.channels[0].target == -90.0


def test_identify_answers_the_firmware_string(wire):
    assert wire.ask(b"#0115E0?IF98BA\r") == b"!0115E01090-TEC SW v5.10   16C3\r"


# -- refusals ----------------------------------------------------------------------------------


def test_a_spoiled_crc_is_answered_with_03_general_communication_error(wire, sim):
    assert wire.ask(b"#0115A1VS0BB801C2B40000D746\r") == b"!0115A1+03BAD2\r"
    assert sim.channels[0].target == 20.0  # nothing was set


def test_read_only_out_of_range_and_missing_instance(wire):
    assert wire.ask(b"#0115B1VS03E80142C80000428C\r") == b"!0115B1+0604A5\r"  # object T is measured
    assert wire.ask(b"#0115B2VS0BB80144FA00000850\r") == b"!0115B2+078F58\r"  # 2000 °C > RNG_TEMP
    assert wire.ask(b"#0115B3VS07DA010000000732FD\r") == b"!0115B3+07F9EC\r"  # no output stage mode 7
    assert wire.ask(b"#0115B4?VR03E8034DFD\r") == b"!0115B4+08592E\r"  # two channels only
    assert wire.ask(b"#0115B5?XX8096\r") == b"!0115B5+01BEB3\r"
    assert wire.ask(b"#0115B6?VR03E8ECA7\r") == b"!0115B6+0475CA\r"


def test_refuse_on_the_control_port_answers_05_for_that_parameter_only(wire, sim):
    assert sim.control("refuse 1001") == "OK"
    assert wire.ask(b"#0115F0?VR03E901A6FD\r") == b"!0115F0+05CB74\r"  # sink temperature: not available
    assert wire.ask(b"#0115F1?VR03E801FE88\r").startswith(b"!0115F141CD2F28")  # the object's still answers
    assert sim.control("refuse 1001 off") == "OK" and not sim.refused


def test_another_address_is_not_answered(wire):
    wire.send(b"#0215C0?VR03E8019560\r")
    assert wire.silent()


def test_reply_faults_spoil_the_crc_the_address_or_the_sequence(wire, sim):
    request = b"#0115D0?VR03E801317E\r"
    sim.faults.add("checksum")
    spoilt = wire.ask(request)
    assert spoilt.startswith(b"!0115D041CD2F28") and spoilt != b"!0115D041CD2F283F6D\r"
    sim.faults = {"address"}
    assert wire.ask(request) == b"!0215D041CD2F28F0C8\r"
    sim.faults = {"sequence"}
    assert wire.ask(request) == b"!0115D141CD2F28D44E\r"
    assert sim.control("sequence off") == "OK" and not sim.faults


def test_flow_on_the_control_port(sim):
    assert sim.control("flow off") == "OK"
    assert not sim.device.flowing
    assert "flow=off" in sim.control("status")
