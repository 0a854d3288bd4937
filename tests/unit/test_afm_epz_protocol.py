"""The epz protocol of the NanoUP board, literally: every frame as the protocol description writes
it (`DEV:TAG:...` strings through the broker, SNDPAR replies tagged with the parameter's letter,
`DEV:DATA:t:adc:dac:save:ovl`), and the simulator answering the original's parameter exchanges
over a real broker: set a letter on CMD, request it on REQPAR, get the matching SNDPAR."""

from __future__ import annotations

import re
import struct
import time
from collections.abc import Iterator

import numpy as np
import pytest
import zmq

from device_servers.afm import protocol
from simulators import run_in_thread
from simulators.epz import EpzSimulator

#: Every setting as the client sends it on CMD, its request on REQPAR and the board's SNDPAR reply.
EXCHANGES = [
    (b"NANOUP:CMD:SET_DACSTEP:0.002", b"NANOUP:REQPAR:GET_DACSTEP", b"NANOUP:SNDPAR:D:0.002"),
    (b"NANOUP:CMD:SET_NUMT6TRIG:50", b"NANOUP:REQPAR:GET_NUMT6TRIG", b"NANOUP:SNDPAR:T:50"),
    (b"NANOUP:CMD:SET_TIMETRIG:2000000:0", b"NANOUP:REQPAR:GET_TIMETRIG", b"NANOUP:SNDPAR:M:2000000:0"),
    (b"NANOUP:CMD:SET_DAC_HARD:0.5", b"NANOUP:REQPAR:GET_DAC_HARD", b"NANOUP:SNDPAR:U:0.5"),
    (b"NANOUP:CMD:SET_TRIGGERS:1:0:1", b"NANOUP:REQPAR:GET_TRIGGERS", b"NANOUP:SNDPAR:N:1:0:1"),
    (b"NANOUP:CMD:SET_ZTRIG:-2.5:1", b"NANOUP:REQPAR:GET_ZTRIG", b"NANOUP:SNDPAR:L:-2.5:1"),
    (b"NANOUP:CMD:SET_FTRIG:0.4:0", b"NANOUP:REQPAR:GET_FTRIG", b"NANOUP:SNDPAR:K:0.4:0"),
    (b"NANOUP:CMD:SET_TIM8PER:200", b"NANOUP:REQPAR:GET_TIM8PER", b"NANOUP:SNDPAR:8:200"),
    (b"NANOUP:CMD:SET_SETPOINT:-0.2", b"NANOUP:REQPAR:GET_SETPOINT", b"NANOUP:SNDPAR:P:-0.2"),
    (b"NANOUP:CMD:SET_PGAIN:0.3", b"NANOUP:REQPAR:GET_PGAIN", b"NANOUP:SNDPAR:Q:0.3"),
    (b"NANOUP:CMD:SET_IGAIN:0.05", b"NANOUP:REQPAR:GET_IGAIN", b"NANOUP:SNDPAR:R:0.05"),
    (b"NANOUP:CMD:SET_DGAIN:0", b"NANOUP:REQPAR:GET_DGAIN", b"NANOUP:SNDPAR:S:0.0"),
    (b"NANOUP:CMD:START_MODSAFE:0:1", b"NANOUP:REQPAR:GET_MODSAFE", b"NANOUP:SNDPAR:O:0:1"),
    (b"NANOUP:CMD:SET_DACMODE:1", b"NANOUP:REQPAR:GET_DACMODE", b"NANOUP:SNDPAR:F:1"),
    (b"NANOUP:CMD:SET_RAMPSIGN:1", b"NANOUP:REQPAR:GET_RAMPSIGN", b"NANOUP:SNDPAR:C:1"),
    (b"NANOUP:CMD:SET_SAVE:1", b"NANOUP:REQPAR:GET_SAVE", b"NANOUP:SNDPAR:W:1"),
]
#: The ramp: set, and read back once it has arrived (at the default 1 V/s).
RAMP = (b"NANOUP:CMD:SET_DAC_SOFT:0.01", b"NANOUP:REQPAR:GET_DAC_SOFT", b"NANOUP:SNDPAR:B:0.01")
#: What the board tells about itself.
FACTS = [
    (b"NANOUP:REQPAR:GET_DEVICE_TYPE", b"NANOUP:SNDPAR:a:NANOUP"),
    (b"NANOUP:REQPAR:GET_EXT_ADC_RANGE", b"NANOUP:SNDPAR:b:20.0"),
    (b"NANOUP:REQPAR:GET_EXT_ADC_VINMIN", b"NANOUP:SNDPAR:c:-10.0"),
    (b"NANOUP:REQPAR:GET_EXT_ADC_VINMAX", b"NANOUP:SNDPAR:d:10.0"),
    (b"NANOUP:REQPAR:GET_INT_ADC_RESOLUTION", b"NANOUP:SNDPAR:e:16"),
    (b"NANOUP:REQPAR:IS_ADCBUF_PRESENT", b"NANOUP:SNDPAR:f:1"),
    (b"NANOUP:REQPAR:GET_ADCBUF_VINMIN", b"NANOUP:SNDPAR:g:-10.0"),
    (b"NANOUP:REQPAR:GET_ADCBUF_VINMAX", b"NANOUP:SNDPAR:h:10.0"),
    (b"NANOUP:REQPAR:GET_ADCBUF_VOUTMIN", b"NANOUP:SNDPAR:i:-1.0"),
    (b"NANOUP:REQPAR:GET_ADCBUF_VOUTMAX", b"NANOUP:SNDPAR:j:1.0"),
    (b"NANOUP:REQPAR:GET_DAC_VREF", b"NANOUP:SNDPAR:k:5.0"),
    (b"NANOUP:REQPAR:GET_DAC_POLARITY", b"NANOUP:SNDPAR:l:1"),
]


# -- encoding, without a board ----------------------------------------------------------------------


def test_a_setting_is_sent_by_name_on_cmd():
    assert protocol.set_command("PGAIN", [0.3]).encode() == b"NANOUP:CMD:SET_PGAIN:0.3"
    assert protocol.set_command("MODSAFE", [2, 0]).encode() == b"NANOUP:CMD:START_MODSAFE:2:0"
    assert protocol.get_request("PGAIN").encode() == b"NANOUP:REQPAR:GET_PGAIN"
    assert protocol.get_request("GET_DAC_VREF").encode() == b"NANOUP:REQPAR:GET_DAC_VREF"


def test_a_value_out_of_range_is_refused_saying_what_is_allowed():
    with pytest.raises(protocol.ProtocolError, match="SET_PGAIN takes a number from 0 to 1, not 1.5"):
        protocol.set_command("PGAIN", [1.5])
    with pytest.raises(protocol.ProtocolError, match="whole number from 1 to 1e"):
        protocol.set_command("TIM8PER", [2.5])


def test_reply_and_data_frames_parse():
    assert protocol.parse_reply("NANOUP:SNDPAR:Q:0.3") == ("Q", ["0.3"])
    assert protocol.parse_data("NANOUP:DATA:5000:-0.012345:1.500000:1:0") == (5000, -0.012345, 1.5, True, False)
    assert protocol.data_frame(5000, -0.012345, 1.5, True, False).encode() == b"NANOUP:DATA:5000:-0.012345:1.500000:1:0"


def test_a_block_is_topic_header_and_samples():
    samples = np.arange(8, dtype="<f4").reshape(4, 2)
    parts = protocol.block_message(protocol.Block(7, 1.25, 1e-6, samples, save=True, overload=False))
    assert parts[0] == b"NANOUP:BLOCK:"
    # counter, first sample time, period, channels, type (1: float32), samples per channel, flags (1: save)
    assert parts[1] == struct.pack("<QddHHIH", 7, 1.25, 1e-6, 4, 1, 2, 1)
    assert parts[2] == bytes.fromhex("000000000000803f") + samples.tobytes()[8:]
    block = protocol.parse_block(parts)
    assert (block.counter, block.first_time, block.period, block.save, block.overload) == (7, 1.25, 1e-6, True, False)
    assert np.array_equal(block.samples, samples)


def test_every_message_has_an_id():
    assert protocol.message_id(b"fetch") == ("fetch",)
    assert protocol.message_id(b"NANOUP:DATA:1:0.0:0.0:0:0") == ("DATA",)
    assert protocol.message_id(b"NANOUP:BLOCK:") == ("BLOCK",)
    assert protocol.message_id(b"NANOUP:CMD:SET_NOTHING:1") is None


# -- the simulator on a real broker ---------------------------------------------------------------


class Broker:
    """A client of the epz broker with raw pyzmq: publish strings, receive the SNDPAR replies."""

    def __init__(self, publish_port: int, subscribe_port: int) -> None:
        self.context = zmq.Context()
        self.pub = self.context.socket(zmq.PUB)
        self.pub.connect(f"tcp://127.0.0.1:{publish_port}")
        self.sub = self.context.socket(zmq.SUB)
        self.sub.setsockopt(zmq.SUBSCRIBE, b"NANOUP:SNDPAR:")
        self.sub.setsockopt(zmq.RCVTIMEO, 10_000)
        self.sub.connect(f"tcp://127.0.0.1:{subscribe_port}")

    def warm_up(self, timeout: float = 10.0) -> None:
        """Ask until the board answers: the first messages are lost while the connections and
        subscriptions travel through the broker (ZeroMQ's slow joiner)."""
        for _ in range(int(timeout / 0.2)):
            self.pub.send(b"NANOUP:REQPAR:GET_DEVICE_TYPE")
            if self.sub.poll(200):
                time.sleep(0.3)
                self.drain()
                return
        raise AssertionError(f"the board did not answer within {timeout} s")

    def drain(self) -> None:
        while self.sub.poll(0):
            self.sub.recv()

    def ask(self, request: bytes) -> bytes:
        self.drain()
        self.pub.send(request)
        return self.sub.recv()

    def send(self, message: bytes) -> None:
        self.pub.send(message)

    def close(self) -> None:
        self.context.destroy(linger=0)


@pytest.fixture(scope="module")
def board() -> Iterator[tuple[EpzSimulator, Broker]]:
    simulator = EpzSimulator(seed=1)
    with run_in_thread(simulator) as running:
        broker = Broker(running.port, simulator.subscribe_port)
        broker.warm_up()
        try:
            yield simulator, broker
        finally:
            broker.close()


@pytest.mark.parametrize(("command", "request_", "answer"), EXCHANGES, ids=[e[0].decode() for e in EXCHANGES])
def test_set_on_cmd_then_request_on_reqpar_answers_sndpar(board, command, request_, answer):
    _, broker = board
    broker.send(command)
    assert broker.ask(request_) == answer


@pytest.mark.parametrize(("request_", "answer"), FACTS, ids=[f[0].decode() for f in FACTS])
def test_the_board_tells_about_itself(board, request_, answer):
    _, broker = board
    assert broker.ask(request_) == answer


def test_a_soft_dac_ramps_to_its_target(board):
    _, broker = board
    command, request_, answer = RAMP
    broker.send(b"NANOUP:CMD:SET_TRIGGERS:0:0:0")
    broker.send(b"NANOUP:CMD:SET_DACSTEP:0.001")  # 1 mV every 50 ticks of 20 us: 1 V/s
    broker.send(b"NANOUP:CMD:SET_NUMT6TRIG:50")
    broker.send(command)
    assert broker.ask(request_) == answer
    deadline = time.monotonic() + 30
    while broker.ask(b"NANOUP:REQPAR:IS_RAMPING") != b"NANOUP:SNDPAR:m:0":
        assert time.monotonic() < deadline, "the ramp did not end within 30 s"
        time.sleep(0.05)
    assert broker.ask(b"NANOUP:REQPAR:GET_DAC_HARD") == b"NANOUP:SNDPAR:U:0.01"


def test_a_value_out_of_range_is_not_applied_and_the_reply_says_what_holds(board):
    _, broker = board
    broker.send(b"NANOUP:CMD:SET_PGAIN:0.3")
    assert broker.ask(b"NANOUP:REQPAR:GET_PGAIN") == b"NANOUP:SNDPAR:Q:0.3"
    broker.send(b"NANOUP:CMD:SET_PGAIN:1.7")
    assert broker.ask(b"NANOUP:REQPAR:GET_PGAIN") == b"NANOUP:SNDPAR:Q:0.3"
    broker.send(b"NANOUP:CMD:SET_TIM8PER:100")
    broker.send(b"NANOUP:CMD:SET_TIM8PER:0")
    assert broker.ask(b"NANOUP:REQPAR:GET_TIM8PER") == b"NANOUP:SNDPAR:8:100"


def test_the_text_data_stream_at_10_ks_per_s(board):
    simulator, broker = board
    broker.send(b"NANOUP:CMD:SET_TIM8PER:100")
    assert broker.ask(b"NANOUP:REQPAR:GET_TIM8PER") == b"NANOUP:SNDPAR:8:100"
    data = broker.context.socket(zmq.SUB)
    data.setsockopt(zmq.SUBSCRIBE, b"NANOUP:DATA:")
    data.setsockopt(zmq.RCVTIMEO, 10_000)
    data.connect(f"tcp://127.0.0.1:{simulator.subscribe_port}")
    try:
        frames = [data.recv() for _ in range(500)]
    finally:
        data.close(linger=0)
    pattern = re.compile(rb"NANOUP:DATA:\d+:-?\d+\.\d{6}:-?\d+\.\d{6}:[01]:[01]")
    assert all(pattern.fullmatch(frame) for frame in frames), frames[:3]
    ticks = [protocol.parse_data(frame.decode())[0] for frame in frames]
    assert set(np.diff(ticks)) == {5}  # 100 us between samples: 5 ticks of 20 us
