"""The Keithley 6485 picoammeter's SCPI (Model 6485 Instruction Manual, sections 13-16), shared by
the driver and the simulator.

One message a line, commands joined by `;`, the answers of its queries in one line joined by `;`.
Headers in short or long form, optional nodes as the manual writes them
(`[SENSe[1]:]CURRent[:DC]:RANGe?`), each taken from the root. A reading is the elements of
`FORMat:ELEMents` in the manual's order: `+1.040564E-06A,+2.236299E+02,+1.380000E+02` = reading
with its unit, timestamp, status word; an overflow reads `+9.9E37`. Errors go to the queue that
`SYSTem:ERRor?` empties: `-113,"Undefined header"`, `0,"No error"`.
"""

from __future__ import annotations

from ..core.spelling import Headers

RANGES = (2e-9, 20e-9, 200e-9, 2e-6, 20e-6, 200e-6, 2e-3, 20e-3)
#: An overflow reads as this value (manual: FORMat:ELEMents).
OVERFLOW = 9.9e37
ELEMENTS = ("READ", "UNIT", "TIME", "STAT")
#: Status word bits of a reading.
STATUS_OVERFLOW, STATUS_ZERO_CHECK, STATUS_ZERO_CORRECT = 1 << 0, 1 << 9, 1 << 10
#: The error queue's codes the instrument reports here, in the manual's words.
ERRORS = {
    -102: "Syntax error",
    -104: "Data type error",
    -108: "Parameter not allowed",
    -109: "Missing parameter",
    -113: "Undefined header",
    -222: "Parameter data out of range",
    -224: "Illegal parameter value",
    -230: "Data corrupt or stale",
    -350: "Queue overflow",
}

CURRENT = "[SENSe[1]:]CURRent[:DC]"
#: The commands driver and simulator use, as the manual spells them; a query ends in `?`.
COMMANDS = (
    "*IDN?", "*RST", "*CLS", "*OPC?",
    "SYSTem:ZCHeck[:STATe]", "SYSTem:ZCHeck[:STATe]?",
    "SYSTem:ZCORrect:ACQuire", "SYSTem:ZCORrect[:STATe]", "SYSTem:ZCORrect[:STATe]?",
    f"{CURRENT}:RANGe:AUTO:ULIMit", f"{CURRENT}:RANGe:AUTO:ULIMit?",
    f"{CURRENT}:RANGe:AUTO:LLIMit", f"{CURRENT}:RANGe:AUTO:LLIMit?",
    f"{CURRENT}:RANGe:AUTO", f"{CURRENT}:RANGe:AUTO?",
    f"{CURRENT}:RANGe[:UPPer]", f"{CURRENT}:RANGe[:UPPer]?",
    f"{CURRENT}:NPLCycles", f"{CURRENT}:NPLCycles?",
    "RANGe[:UPPer]", "RANGe:AUTO",  # the manual's own short forms in its examples
    "FORMat:ELEMents", "FORMat:ELEMents?",
    "INITiate[:IMMediate]", "FETCh?", "READ?", "MEASure[:CURRent[:DC]]?",
    "SYSTem:ERRor[:NEXT]?", "SYSTem:ERRor:COUNt?", "SYSTem:ERRor:ALL?",
    "SYSTem:TIME:RESet", "SYSTem:LFRequency?",
)
MESSAGES = {command: command for command in COMMANDS}
HEADERS = Headers(COMMANDS)


def reading(text: str) -> float | None:
    """The current of a reading (`+1.2E-09A,...`), None for an overflow."""
    first = text.split(",")[0].strip()
    if not first.upper().endswith("A"):
        raise ValueError(f"{first!r} is not in amps")
    amps = float(first[:-1])
    return None if abs(amps) >= OVERFLOW * 0.99 else amps


def message_id(frame: bytes) -> str | None:
    """The command a message of one command is (`b":SYST:ZCH ON\\n"` -> 'SYSTem:ZCHeck[:STATe]')."""
    line = frame.decode("ascii").strip()
    if not line or ";" in line:
        return None
    return HEADERS.find(line.partition(" ")[0])
