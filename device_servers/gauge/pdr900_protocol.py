"""The MKS 900-series serial protocol of the PDR900 controller (the 900-series operation manuals,
"Communication Protocol"), as the lab reaches it through a terminal server; shared by the driver
and the simulator.

A request is `@`, a three-digit address, a command, then `?` (a query) or `!` and a value (a
command), ended by `;FF`; the answer is `@<own address>ACK<value>;FF` or `@<own address>NAK<code>;FF`:

    @253PR1?;FF   ->  @253ACK1.23E-3;FF    pressure in the unit set (Torr at delivery)
    @253XYZ?;FF   ->  @253NAK160;FF        unrecognized message

Addresses 001-253 (253 at delivery); every device hears 254 and answers with its own address
(`@254AD?;FF` finds an unknown one), 255 too but none answers.
"""

from __future__ import annotations

import re

from ..core.framing import Lines

END = b";FF"
FRAMING = Lines(END)
BROADCAST, SILENT_BROADCAST = 254, 255
#: NAK codes, in the manual's words.
NAK_CODES = {
    8: "zero adjustment at too high pressure",
    9: "atmospheric adjustment at too low pressure",
    160: "unrecognized message",
    169: "invalid argument",
    172: "value out of range",
    175: "command/query character invalid",
    180: "protected setting (locked)",
    195: "control setpoint enabled",
}
UNRECOGNIZED, INVALID_ARGUMENT, OUT_OF_RANGE, BAD_CHARACTER = 160, 169, 172, 175
#: `U?` answers, by the names the gauges' shared vocabulary uses.
UNITS = {"TORR": "Torr", "MBAR": "mbar", "PASCAL": "Pa"}
#: `T?` transducer status letters other than O (ok).
TRANSDUCER_FAILURES = {
    "M": "MicroPirani sensor failure",
    "Z": "Piezo sensor failure",
    "C": "cold cathode sensor failure",
    "P": "Pirani sensor failure",
}
REQUEST = re.compile(r"@(\d{3})([A-Z]+[0-9]?)(.)(.*)", re.IGNORECASE | re.DOTALL)
ANSWER = re.compile(r"@(\d{3})(ACK|NAK)(.*)", re.DOTALL)

#: The commands driver and simulator use (the transducer's own SN, FV, MD, MF, DT beside the
#: controller's SNC, FVC).
MESSAGES = {
    name: name for name in ("PR1", "PR2", "PR3", "PR4", "U", "AD", "T", "SNC", "FVC", "SN", "FV", "MD", "MF", "DT")
}


def request(address: int, command: str) -> bytes:
    """`@253PR1?;FF` for (253, 'PR1?')."""
    return f"@{address:03d}{command}".encode("ascii") + END


def number(value: float, digits: int) -> str:
    """`1.23E-3` as the 900 series writes numbers: `digits` decimals, exponent without padding."""
    mantissa, exponent = f"{value:.{digits}E}".split("E")
    return f"{mantissa}E{int(exponent):+d}"


def message_id(frame: bytes) -> str | None:
    """The command of one request (`b"@253PR1?;FF"` -> 'PR1')."""
    match = REQUEST.fullmatch(frame.decode("ascii").strip().removesuffix(END.decode()))
    return match[2].upper() if match and match[2].upper() in MESSAGES else None
