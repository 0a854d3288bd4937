"""The Tektronix AFG31000 series' SCPI (AFG31000 Series Programmer Manual), shared by the driver
and the simulator.

LAN: a raw SCPI socket on TCP 5025 (the port QuTech's maintained QMI driver for the AFG31000
uses), one message a line (LF), commands joined by `;` (each from the root when it starts with
`:`), answers joined by `;`. Channel settings live under `SOURce<n>:` and `OUTPut<n>:` (n 1 or
2; left out, 1). Numbers answer in NR3 (`1.000000E+03`); `OUTPut<n>:IMPedance?` answers
`9.9E+37` for high impedance. Errors wait in the queue `SYSTem:ERRor?` empties: `-222,"Data out
of range"`, `0,"No error"`; a setting refused leaves the setting as it was.

The arbitrary waveform goes to edit memory n as `DATA:DATA EMEMory<n>,<block>`: 14-bit points,
0 to 16383, each a 16-bit word most significant byte first, 2 to 131 072 of them;
`DATA:DATA? EMEMory<n>` answers the same block, and `SOURce<n>:FUNCtion:SHAPe EMEMory<n>` plays it.
The number formats of answers are the simulator's reading of the manual; a real instrument's may
differ in digits (the driver reads any NR3).
"""

from __future__ import annotations

import re
import struct

from ..core.limits import Limits
from ..core.spelling import Headers
from .hp33120a_protocol import split_commands

TCP_PORT = 5025
CHANNELS = (1, 2)
#: FUNCtion:SHAPe words, by the vocabulary's waveform names (`{channel}`: the channel's edit memory).
SHAPES = {"SINE": "SIN", "SQUARE": "SQU", "RAMP": "RAMP", "NOISE": "PRN", "DC": "DC", "ARBITRARY": "EMEM{channel}"}
#: What an AFG31022 allows: sine up to 25 MHz (square 20 MHz, ramp 500 kHz).
FREQUENCY = Limits(1e-6, 25e6, "Hz")
FUNCTION_FREQUENCY = {"SIN": 25e6, "SQU": 20e6, "RAMP": 500e3}
AMPLITUDE = Limits(0.001, 20.0, "Vpp")  # 1 mVpp to 10 Vpp into 50 ohm, twice that open
OFFSET = Limits(-10.0, 10.0, "V")  # |offset| + amplitude/2 within 5 V into 50 ohm, 10 V open
IMPEDANCE = Limits(1.0, 10_000.0, "ohm")
HIGH_Z = 9.9e37
BURST_COUNT = Limits(1, 1_000_000, "cycles")
POINTS = Limits(2, 131_072, "points")
FULL_SCALE = 16383
POINT_WORD = struct.Struct(">H")

ERRORS = {
    -102: "Syntax error",
    -108: "Parameter not allowed",
    -109: "Missing parameter",
    -113: "Undefined header",
    -221: "Settings conflict",
    -222: "Data out of range",
    -224: "Illegal parameter value",
    -350: "Queue overflow",
}

#: The commands driver and simulator use, as the manual spells them without the channel number.
COMMANDS = (
    "*IDN?", "*RST", "*CLS",
    "SOURce:FUNCtion[:SHAPe]", "SOURce:FUNCtion[:SHAPe]?",
    "SOURce:FREQuency[:CW]", "SOURce:FREQuency[:CW]?",
    "SOURce:VOLTage[:LEVel][:IMMediate][:AMPLitude]", "SOURce:VOLTage[:LEVel][:IMMediate][:AMPLitude]?",
    "SOURce:VOLTage[:LEVel][:IMMediate]:OFFSet", "SOURce:VOLTage[:LEVel][:IMMediate]:OFFSet?",
    "SOURce:BURSt:NCYCles", "SOURce:BURSt:NCYCles?", "SOURce:BURSt[:STATe]", "SOURce:BURSt[:STATe]?",
    "OUTPut[:STATe]", "OUTPut[:STATe]?", "OUTPut:IMPedance", "OUTPut:IMPedance?",
    "DATA[:DATA]", "DATA[:DATA]?", "DATA:POINts?",
    "SYSTem:ERRor[:NEXT]?",
)
MESSAGES = {command: command for command in COMMANDS}
HEADERS = Headers(COMMANDS)
_CHANNEL = re.compile(r"(:?(?:SOUR(?:CE)?|OUTP(?:UT)?))([12]?)(?=:|\?|$)", re.IGNORECASE)


def find(header: str) -> tuple[str | None, int]:
    """(the command `header` spells, its channel): `SOUR2:FREQ?` -> ('SOURce:FREQuency[:CW]?', 2)."""
    match = _CHANNEL.match(header.strip())
    channel = int(match[2]) if match and match[2] else 1
    bare = _CHANNEL.sub(lambda m: m[1], header.strip(), count=1) if match else header.strip()
    return HEADERS.find(bare), channel


def point_block_data(points: list[int]) -> bytes:
    return b"".join(POINT_WORD.pack(point) for point in points)


def block_points(data: bytes) -> list[int]:
    if len(data) % 2:
        raise ValueError(f"a waveform block holds 16-bit words, not {len(data)} bytes")
    return [word for (word,) in POINT_WORD.iter_unpack(data)]


def message_id(frame: bytes) -> str | None:
    """The command a message of one command is (`b":SOUR1:FREQ 1000\\n"` -> 'SOURce:FREQuency[:CW]')."""
    commands = split_commands(frame.rstrip(b"\r\n"))
    if len(commands) != 1:
        return None
    return find(commands[0].split(b" ", 1)[0].decode("latin-1"))[0]
