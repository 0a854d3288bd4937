"""Tektronix AFG31022 two-channel arbitrary function generator, simulated: its SCPI on the LAN
socket (device_servers/generators/afg31000_protocol.py).

Each channel keeps its function (SIN, SQU, RAMP, PRN, DC, EMEM1/EMEM2), frequency, amplitude
(Vpp), offset, load impedance (1 ohm to 10 kohm, or high impedance, which doubles the allowed
amplitude and offset), burst count and state, and its output switch (off at power-up); each edit
memory holds the points last sent to it. A setting out of the range of the channel's function
and load is refused: it stays, and `-222,"Data out of range"` goes to the error queue. A header
it does not know is `-113,"Undefined header"`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

from device_servers.core.errors import LinkError
from device_servers.core.framing import BlockLines, block_data, definite_length_block
from device_servers.generators.afg31000_protocol import (
    CHANNELS,
    ERRORS,
    FULL_SCALE,
    FUNCTION_FREQUENCY,
    HIGH_Z,
    POINTS,
    TCP_PORT,
    block_points,
    find,
    point_block_data,
)
from device_servers.generators.hp33120a_protocol import split_commands

from .core import LineProtocolSimulator

IDN = "TEKTRONIX,AFG31022,C000001,SCPI:99.0 FV:1.5.2"
ERROR_QUEUE_SIZE = 32
SHAPES = {"SIN": "SIN", "SINUSOID": "SIN", "SQU": "SQU", "SQUARE": "SQU", "RAMP": "RAMP", "PRN": "PRN",
          "PRNOISE": "PRN", "DC": "DC", "EMEM": "EMEM1", "EMEM1": "EMEM1", "EMEMORY": "EMEM1", "EMEMORY1": "EMEM1",
          "EMEM2": "EMEM2", "EMEMORY2": "EMEM2"}


class CommandError(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


@dataclass
class Channel:
    shape: str = "SIN"
    frequency: float = 1e6
    amplitude: float = 1.0
    offset: float = 0.0
    load: float = 50.0
    burst_count: int = 5
    burst_on: bool = False
    on: bool = False

    def volts(self) -> float:
        return 10.0 if self.load >= HIGH_Z else 5.0 * min(1.0, 2 * self.load / (self.load + 50.0))


@dataclass
class Memory:
    points: list[int] = field(default_factory=lambda: [FULL_SCALE // 2] * 2)


def _number(value: float) -> str:
    return f"{value:.6E}"


class Afg31000Simulator(LineProtocolSimulator):
    """Tektronix AFG31022 two-channel arbitrary function generator on its SCPI socket."""

    kind = "afg31000"
    default_port = TCP_PORT
    encoding = "latin-1"

    def __init__(self, *, seed: int | None = None, speed: float = 1.0) -> None:
        super().__init__(seed=seed, speed=speed)
        self.framing = BlockLines(b"\n")  # a waveform block may hold LF bytes
        self.errors: list[int] = []
        self.reset()

    def reset(self) -> None:
        self.channels = {n: Channel() for n in CHANNELS}
        self.memories = {n: Memory() for n in CHANNELS}

    # -- messages -------------------------------------------------------------------------------

    def handle_line(self, line: str) -> str | None:
        answers = []
        for command in split_commands(line.encode("latin-1")):
            header, _, argument = command.partition(b" ")
            try:
                answer = self._dispatch(header.decode("latin-1"), argument.lstrip())
            except CommandError as error:
                self._error(error.code)
                continue
            if answer is not None:
                answers.append(answer)
        return ";".join(answers) if answers else None

    def _dispatch(self, header: str, argument: bytes) -> str | None:
        command, n = find(header)
        if command is None:
            raise CommandError(-113)
        if command.startswith("DATA"):
            return self._DATA[command](self, argument)
        if command.endswith("?") and argument:
            raise CommandError(-108)
        return self._COMMANDS[command](self, self.channels[n], argument.decode("latin-1").strip())

    def _error(self, code: int) -> None:
        if len(self.errors) < ERROR_QUEUE_SIZE:
            self.errors.append(code)
        else:
            self.errors[-1] = -350

    # -- settings -------------------------------------------------------------------------------

    @staticmethod
    def _check(channel: Channel) -> None:
        top = FUNCTION_FREQUENCY.get(channel.shape)
        volts = channel.volts()
        if top is not None and not 1e-6 <= channel.frequency <= top:
            raise CommandError(-222)
        if channel.shape != "DC" and not volts / 5000 <= channel.amplitude <= 2 * volts:
            raise CommandError(-222)
        if abs(channel.offset) + (0 if channel.shape == "DC" else channel.amplitude / 2) > volts:
            raise CommandError(-222)

    def _set(self, channel: Channel, name: str, value: object) -> None:
        """Set one field, refused (and kept as it was) when the channel's settings do not allow it."""
        before = getattr(channel, name)
        setattr(channel, name, value)
        try:
            self._check(channel)
        except CommandError:
            setattr(channel, name, before)
            raise

    @staticmethod
    def _value(argument: str) -> float:
        if not argument:
            raise CommandError(-109)
        try:
            return float(argument)
        except ValueError:
            raise CommandError(-224) from None

    @staticmethod
    def _switch(argument: str) -> bool:
        word = argument.upper()
        if word not in ("ON", "OFF", "1", "0"):
            raise CommandError(-224)
        return word in ("ON", "1")

    def _set_shape(self, channel: Channel, argument: str) -> None:
        shape = SHAPES.get(argument.upper())
        if shape is None:
            raise CommandError(-224)
        self._set(channel, "shape", shape)

    def _set_impedance(self, channel: Channel, argument: str) -> None:
        word = argument.upper()
        load = HIGH_Z if word in ("INF", "INFINITY") else self._value(argument)
        if load != HIGH_Z and not 1.0 <= load <= 10_000.0:
            raise CommandError(-222)
        self._set(channel, "load", load)

    def _set_burst_count(self, channel: Channel, argument: str) -> None:
        count = self._value(argument)
        if not (1 <= count <= 1_000_000 and count == int(count)):
            raise CommandError(-222)
        channel.burst_count = int(count)

    def _next_error(self, _: Channel, __: str) -> str:
        code = self.errors.pop(0) if self.errors else 0
        return f'{code},"{ERRORS[code]}"' if code else '0,"No error"'

    _COMMANDS: ClassVar[dict[str, Callable[..., str | None]]] = {
        "*IDN?": lambda self, _, __: IDN,
        "*RST": lambda self, _, __: self.reset(),
        "*CLS": lambda self, _, __: self.errors.clear(),
        "SOURce:FUNCtion[:SHAPe]": _set_shape,
        "SOURce:FUNCtion[:SHAPe]?": lambda self, channel, _: channel.shape,
        "SOURce:FREQuency[:CW]": lambda self, channel, argument: self._set(channel, "frequency", self._value(argument)),
        "SOURce:FREQuency[:CW]?": lambda self, channel, _: _number(channel.frequency),
        "SOURce:VOLTage[:LEVel][:IMMediate][:AMPLitude]":
            lambda self, channel, argument: self._set(channel, "amplitude", self._value(argument)),
        "SOURce:VOLTage[:LEVel][:IMMediate][:AMPLitude]?": lambda self, channel, _: _number(channel.amplitude),
        "SOURce:VOLTage[:LEVel][:IMMediate]:OFFSet":
            lambda self, channel, argument: self._set(channel, "offset", self._value(argument)),
        "SOURce:VOLTage[:LEVel][:IMMediate]:OFFSet?": lambda self, channel, _: _number(channel.offset),
        "SOURce:BURSt:NCYCles": _set_burst_count,
        "SOURce:BURSt:NCYCles?": lambda self, channel, _: _number(channel.burst_count),
        "SOURce:BURSt[:STATe]": lambda self, channel, argument: setattr(channel, "burst_on", self._switch(argument)),
        "SOURce:BURSt[:STATe]?": lambda self, channel, _: str(int(channel.burst_on)),
        "OUTPut[:STATe]": lambda self, channel, argument: setattr(channel, "on", self._switch(argument)),
        "OUTPut[:STATe]?": lambda self, channel, _: str(int(channel.on)),
        "OUTPut:IMPedance": _set_impedance,
        "OUTPut:IMPedance?": lambda self, channel, _: "9.9E+37" if channel.load >= HIGH_Z else _number(channel.load),
        "SYSTem:ERRor[:NEXT]?": _next_error,
    }

    # -- edit memories --------------------------------------------------------------------------

    def _memory(self, name: bytes) -> Memory:
        word = SHAPES.get(name.strip().decode("latin-1").upper(), "")
        if not word.startswith("EMEM"):
            raise CommandError(-224)
        return self.memories[int(word[-1])]

    def _store(self, argument: bytes) -> None:
        name, comma, block = argument.partition(b",")
        if not comma:
            raise CommandError(-109)
        memory = self._memory(name)
        try:
            points = block_points(block_data(block.lstrip()))
        except (LinkError, ValueError):
            raise CommandError(-224) from None
        if not POINTS.low <= len(points) <= POINTS.high or max(points) > FULL_SCALE:
            raise CommandError(-222)
        memory.points = points

    def _held(self, argument: bytes) -> str:
        return definite_length_block(point_block_data(self._memory(argument).points)).decode("latin-1")

    _DATA: ClassVar[dict[str, Callable[..., str | None]]] = {
        "DATA[:DATA]": _store,
        "DATA[:DATA]?": _held,
        "DATA:POINts?": lambda self, argument: str(len(self._memory(argument).points)),
    }
