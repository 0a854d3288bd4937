"""The MeCom driver (`MeCom`, `TecChannel`) against the simulator over a real socket."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from device_servers.core.errors import GarbledReply, LinkError, RejectedValue
from device_servers.core.link import SerialLink
from device_servers.mecom.driver import (
    FRAMING,
    PARAMETERS,
    DeviceStatus,
    MeCom,
    MeComError,
    OutputStage,
    Parameter,
)
from simulators import Running, run_in_thread
from simulators.mecom import GREETING, MeComSimulator
from tangolab.scripting import wait_until


@pytest.fixture
def served() -> Iterator[Running]:
    with run_in_thread(MeComSimulator(seed=2, speed=20.0)) as running:
        yield running


@pytest.fixture
def sim(served: Running) -> MeComSimulator:
    return served.simulator


@pytest.fixture
def tec(served: Running) -> Iterator[MeCom]:
    link = SerialLink(served.url, framing=FRAMING, write_terminator=b"\r", timeout=5.0)
    mecom = MeCom(link, address=1)
    link.open()
    yield mecom
    link.close()


def test_the_reference_frames_with_the_sequence_numbers_they_carry(tec, sim):
    tec.sequence = 0x159F  # one less: every request takes the next number
    tec.channel(1).read_object_temperature()
    tec.channel(1).set_target_temperature(-90.0)
    assert sim.received[-3:-1] == [b"#0115A0?VR03E801B870\r", b"#0115A1VS0BB801C2B40000D745\r"]
    assert sim.received[-1] == b"#0115A2?VR0BB8018000\r"  # read back


def test_the_greeting_is_kept_not_taken_for_a_reply(tec, sim):
    # pyserial's socket:// open() flushes what has arrived, so the greeting on connecting may be
    # gone before the first request; here it comes in the middle, as on any new connection
    tec.greeting = None
    sim.send_unasked(GREETING)
    assert tec.identify() == "1090-TEC SW v5.10"
    assert tec.greeting == GREETING.strip().decode()


def test_status_of_a_channel_with_units_and_types(tec):
    status = tec.channel(2).read_status()
    assert 15.0 < status.object_temperature < 30.0
    assert status.output_stage is OutputStage.OFF
    assert status.device_status is DeviceStatus.READY
    assert status.output_current == 0.0
    assert PARAMETERS["output_current"].unit == "A"


def test_regulating_to_minus_90(tec, sim):
    channel = tec.channel(1)
    assert channel.set_target_temperature(-90.0) == -90.0
    assert channel.set_output_stage("ON") == "ON"
    wait_until(lambda: abs(channel.read_object_temperature() + 90.0) < 0.5, 30, what="at -90 degC")
    status = channel.read_status()
    assert status.regulating and status.output_current > 0.0
    assert sim.channels[1].stage == 0  # the other channel untouched


def test_values_are_checked_before_sending(tec, sim):
    sent = len(sim.received)
    with pytest.raises(RejectedValue, match="allowed -100 to 50 degC"):
        tec.channel(1).set_target_temperature(-150.0)
    with pytest.raises(RejectedValue, match="OFF \\(0\\), ON \\(1\\), LIVE \\(2\\), HW_ENABLE \\(3\\)"):
        tec.channel(1).set_output_stage("FULL")
    assert len(sim.received) == sent


def test_the_devices_refusals_in_its_words(tec):
    with pytest.raises(MeComError, match=r"\+05 EER_PAR_NOT_AVAILABLE, parameter is not available") as refused:
        tec.read(Parameter(1234, "FLOAT32"), 1)
    assert refused.value.code == 5
    with pytest.raises(MeComError, match=r"\+06 EER_PAR_NOT_WRITABLE, parameter is read only"):
        tec.write(PARAMETERS["object_temperature"], 1, 20.0)
    with pytest.raises(MeComError, match=r"\+07 EER_PAR_OUT_OF_RANGE"):
        tec.write(PARAMETERS["target_temperature"], 1, 2000.0)
    with pytest.raises(MeComError, match=r"\+08 EER_PAR_INST_NOT_AVAILABLE"):
        tec.channel(3).read_object_temperature()
    assert tec.channel(1).read_target_temperature() == 20.0  # the link is still in step


@pytest.mark.parametrize(
    ("fault", "says"),
    [
        ("checksum", "has CRC"),
        ("address", "comes from address 02, not 01"),
        ("sequence", "has sequence number"),
        ("garbage", "not a MeCom frame"),
    ],
)
def test_replies_that_cannot_be_the_answer_are_garbled(tec, sim, fault, says):
    if fault == "garbage":
        sim.garbage = True
    else:
        sim.faults.add(fault)
    with pytest.raises(GarbledReply, match=says):
        tec.channel(1).read_object_temperature()
    tec.link.open()  # what the device does after a transport failure
    with pytest.raises(GarbledReply, match=says):  # acknowledges too
        tec.channel(1).set_output_stage("OFF")


def test_a_spoiled_request_crc_is_answered_03(tec, sim):
    with tec.link.lock:
        reply = tec.link.transaction(b"#0115A1VS0BB801C2B40000D746\r", accept=lambda frame: frame.startswith(b"!"))
    assert reply == b"!0115A1+03BAD2"


def test_silence_and_a_cut_reply_are_link_errors(tec, sim):
    sim.faults.add("truncate")
    tec.link.timeout = 0.5  # the fixture's 5 s leave room for a loaded machine
    with pytest.raises(LinkError, match="no reply"):
        tec.channel(1).read_object_temperature()


def test_reset_and_the_sink_error(tec, sim):
    channel = tec.channel(1)
    channel.set_output_stage("ON")
    sim.channels[0].sink = 61.0
    wait_until(lambda: channel.read_device_status() is DeviceStatus.ERROR, 10, what="sink error")
    assert channel.read_output_current() == 0.0
    sim.channels[0].sink = 25.0  # cooled down
    channel.reset()
    wait_until(lambda: sim.device.status != 5, 10, what="restarted")  # deaf while it restarts
    if not tec.link.is_open:
        tec.link.open()
    wait_until(lambda: channel.read_device_status() is DeviceStatus.RUN, 10, what="running after reset")
