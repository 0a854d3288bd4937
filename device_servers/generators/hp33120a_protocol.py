"""The HP (Agilent) 33120A function generator's SCPI (33120A User's Guide, chapters 3 and 4),
shared by the driver and the simulator.

One message a line (LF, with EOI on GPIB), commands joined by `;`, each taken from the root
when it starts with `:`; the answers of its queries in one line joined by `;`. Numbers answer
as `+1.000000000000E+03`; `OUTP:LOAD?` answers `+9.900000000000E+37` for high impedance.
Errors go to the queue that `SYSTem:ERRor?` empties: `-222,"Data out of range"`,
`+0,"No error"`. A setting the instrument refuses leaves the setting as it was.

The arbitrary waveform goes in as `DATA:DAC VOLATILE, <block>`: an IEEE 488.2 definite-length
block of 16-bit integers, most significant byte first (FORMat:BORDer NORMal, the power-on
order), each -2047 to +2047, 8 to 16 000 of them; `FUNC:USER VOLATILE` then `FUNC:SHAP USER`
play it. The 33120A has no query that returns the points: what it holds is checked with
`DATA:ATTRibute:POINts?`, `AVERage?` and `PTPeak?` (points, mean and peak-to-peak of the
waveform normalised to ±1), which it computes from what it received.
"""

from __future__ import annotations

import struct

from ..core.limits import Limits
from ..core.spelling import Headers

#: FUNCtion:SHAPe words, by the vocabulary's waveform names.
SHAPES = {"SINE": "SIN", "SQUARE": "SQU", "TRIANGLE": "TRI", "RAMP": "RAMP", "NOISE": "NOIS", "DC": "DC",
          "ARBITRARY": "USER"}
FREQUENCY = Limits(100e-6, 15e6, "Hz")  # sine and square; triangle and ramp 100 kHz, user 5 MHz
FUNCTION_FREQUENCY = {"SIN": 15e6, "SQU": 15e6, "TRI": 100e3, "RAMP": 100e3, "USER": 5e6}
AMPLITUDE = Limits(0.05, 20.0, "Vpp")  # 50 mVpp to 10 Vpp into 50 ohm, twice that into high impedance
OFFSET = Limits(-10.0, 10.0, "V")  # |offset| + amplitude/2 within 5 V into 50 ohm, 10 V open
HIGH_Z = 9.9e37
BURST_COUNT = Limits(1, 50_000, "cycles")
DAC_FULL_SCALE = 2047
POINTS = Limits(8, 16_000, "points")
DAC_WORD = struct.Struct(">h")

ERRORS = {
    -102: "Syntax error",
    -108: "Parameter not allowed",
    -109: "Missing parameter",
    -113: "Undefined header",
    -221: "Settings conflict",
    -222: "Data out of range",
    -224: "Illegal parameter value",
    -350: "Too many errors",
}

#: The commands driver and simulator use, as the manual spells them; a query ends in `?`.
COMMANDS = (
    "*IDN?", "*RST", "*CLS",
    "APPLy:SINusoid", "APPLy:SQUare", "APPLy:TRIangle", "APPLy:RAMP", "APPLy:NOISe", "APPLy:DC", "APPLy:USER",
    "APPLy?",
    "FUNCtion:SHAPe", "FUNCtion:SHAPe?", "FUNCtion:USER", "FUNCtion:USER?",
    "FREQuency", "FREQuency?", "VOLTage", "VOLTage?", "VOLTage:OFFSet", "VOLTage:OFFSet?",
    "OUTPut:LOAD", "OUTPut:LOAD?",
    "BM:NCYCles", "BM:NCYCles?", "BM:STATe", "BM:STATe?",
    "DATA:DAC", "DATA",
    "DATA:ATTRibute:POINts?", "DATA:ATTRibute:AVERage?", "DATA:ATTRibute:PTPeak?",
    "SYSTem:ERRor?",
)
MESSAGES = {command: command for command in COMMANDS}
HEADERS = Headers(COMMANDS)


def dac_block_data(points: list[int]) -> bytes:
    """The bytes of a DATA:DAC block: each point a big-endian int16."""
    return b"".join(DAC_WORD.pack(point) for point in points)


def dac_points(data: bytes) -> list[int]:
    """The points of a DATA:DAC block's bytes."""
    if len(data) % 2:
        raise ValueError(f"a DATA:DAC block holds 16-bit words, not {len(data)} bytes")
    return [word for (word,) in DAC_WORD.iter_unpack(data)]


def split_commands(message: bytes) -> list[bytes]:
    """The commands of one message, cut at `;` outside definite-length blocks."""
    commands, start, at = [], 0, 0
    while at < len(message):
        byte = message[at : at + 1]
        if byte == b"#" and message[at + 1 : at + 2].isdigit() and message[at + 1] != 0x30:
            digits = message[at + 1] - 0x30
            length = message[at + 2 : at + 2 + digits]
            at += 2 + digits + (int(length) if length.isdigit() else 0)
            continue
        if byte == b";":
            commands.append(message[start:at])
            start = at + 1
        at += 1
    commands.append(message[start:])
    # a block may end with bytes that look like white space: only spaces are cut on the right
    return [command.lstrip().rstrip(b" \t") for command in commands if command.strip()]


def message_id(frame: bytes) -> str | None:
    """The command a message of one command is (`b":FREQ 1000\\n"` -> 'FREQuency')."""
    commands = split_commands(frame.rstrip(b"\r\n"))
    if len(commands) != 1:
        return None
    header = commands[0].split(b" ", 1)[0].decode("latin-1")
    return HEADERS.find(header)
