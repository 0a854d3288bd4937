"""The OWON ODP series' SCPI (ODP Series Programming Manual), shared by the driver and the simulator.

LAN: a raw socket on TCP 3000 (the port the original lab's daemon and a public ODP3122 driver
use). One message a line (LF), commands joined by `;`, answers joined by `;`, each ending the
line with LF. `INSTrument:NSELect <n>` selects the output that `VOLTage`, `CURRent`,
`VOLTage:LIMit` (over-voltage protection), `CURRent:LIMit` (over-current protection),
`MEASure:VOLTage?`, `MEASure:CURRent?` and `OUTPut` act on; `APPly:VOLTage?`,
`APPly:CURRent?` and `CHANnel:OUTPut:ALL?` answer for the three outputs at once (`5.000,0.000,3.300`,
`1,0,0`). Numbers answer with three decimals. `SYSTem:ERRor?` empties the error queue
(`-222,"Data out of range"`, `0,"No error"`); a setting refused leaves it as it was.

How the ODP reports a protection trip over SCPI was not found in public sources (the manual
pages seen and the public drivers read none): here `OUTPut:PROTection:ALL?` answers each
output's trip (0 none, 1 over-voltage, 2 over-current) and `OUTPut:PROTection:CLEar` clears
them, an assumption to check against the instrument; a trip switches the output off.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..core.limits import Limits
from ..core.spelling import Headers

TCP_PORT = 3000
OVER_VOLTAGE, OVER_CURRENT = 1, 2
TRIPS = {OVER_VOLTAGE: "over-voltage protection", OVER_CURRENT: "over-current protection"}


@dataclass(frozen=True)
class OutputRanges:
    voltage: Limits
    current: Limits
    ovp: Limits
    ocp: Limits


def _ranges(volts: float, amps: float) -> OutputRanges:
    return OutputRanges(Limits(0.0, volts, "V"), Limits(0.0, amps, "A"),
                        Limits(0.01, round(volts * 1.1, 3), "V"), Limits(0.01, round(amps * 1.1, 3), "A"))


#: The ODP6033's outputs: two of 60 V / 3 A and one of 6 V / 3 A.
ODP6033 = {1: _ranges(60.0, 3.0), 2: _ranges(60.0, 3.0), 3: _ranges(6.0, 3.0)}

ERRORS = {-102: "Syntax error", -109: "Missing parameter", -113: "Undefined header", -222: "Data out of range",
          -224: "Illegal parameter value"}

#: The commands driver and simulator use, as the manual spells them; a query ends in `?`.
COMMANDS = (
    "*IDN?", "*RST", "*CLS",
    "INSTrument:NSELect", "INSTrument:NSELect?",
    "[SOURce:]VOLTage[:LEVel][:IMMediate][:AMPLitude]", "[SOURce:]VOLTage[:LEVel][:IMMediate][:AMPLitude]?",
    "[SOURce:]CURRent[:LEVel][:IMMediate][:AMPLitude]", "[SOURce:]CURRent[:LEVel][:IMMediate][:AMPLitude]?",
    "[SOURce:]VOLTage:LIMit", "[SOURce:]VOLTage:LIMit?", "[SOURce:]CURRent:LIMit", "[SOURce:]CURRent:LIMit?",
    "MEASure[:SCALar]:VOLTage[:DC]?", "MEASure[:SCALar]:CURRent[:DC]?",
    "OUTPut[:STATe]", "OUTPut[:STATe]?", "CHANnel:OUTPut:ALL", "CHANnel:OUTPut:ALL?",
    "APPly:VOLTage?", "APPly:CURRent?",
    "OUTPut:PROTection:ALL?", "OUTPut:PROTection:CLEar",
    "SYSTem:ERRor?",
)
MESSAGES = {command: command for command in COMMANDS}
HEADERS = Headers(COMMANDS)


def message_id(frame: bytes) -> str | None:
    """The command a message of one command is (`b":VOLT 5\\n"` -> '[SOURce:]VOLTage[:LEVel]...')."""
    line = frame.decode("ascii").strip()
    if not line or ";" in line:
        return None
    return HEADERS.find(line.partition(" ")[0])
