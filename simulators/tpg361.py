"""Pfeiffer TPG 361 SingleGauge, simulated: its mnemonics protocol over a pumped chamber.

The protocol follows Pfeiffer's "TPG 361, TPG 362 Mnemonics and Pfeiffer Vacuum Protocol" (BG 5510
BEN), section 1: RS-232 9600 8N1, or Ethernet on TCP port 8000 with the same bytes.

- The host sends a mnemonic of three letters, perhaps with parameters, ended by CR (the LF after it
  is optional): `PR1\\r\\n`. The gauge acknowledges with ACK CR LF (`\\x06\\r\\n`), or with NAK CR LF
  (`\\x15\\r\\n`) for a mnemonic or parameter it cannot take, and sets its error word.
- The host then sends ENQ (`\\x05`, one byte, no line end) and gets the answer ended by CR LF:
  `0,1.0000E-03\\r\\n`. Each further ENQ answers the last mnemonic again with fresh data. An ENQ
  with nothing acknowledged before it gets NAK (the manual does not say; this simulator's choice).
- ETX (`\\x03`) clears what the gauge has received of a mnemonic so far.

So the requests are framed as `TpgRequests` does: a line up to CR (with the LF after it if that has
arrived), or a control byte (ENQ, ETX) as a frame of its own wherever it stands; an LF that comes
on its own later is a frame of its own too, and is ignored. The range status (under, over)
follows the chamber's true pressure, the value its noisy reading clamped to the gauge's range.

Mnemonics answered: `PR1` (status, pressure in the current unit; status 0 ok, 1 underrange,
2 overrange, 3 sensor error, 4 sensor off, 5 no sensor (pressure field `2.0000E-02` as the manual
shows), 6 identification error), `UNI[,x]` (0 mbar, 1 Torr, 2 Pascal, 3 Micron, 4 hPascal,
5 Volt), `TID` (the gauge type: PKR by default), `ERR` (the error word `aaaa`: 1000 controller
error, 0100 no hardware, 0010 inadmissible parameter, 0001 syntax error; cleared when read),
`COM[,x]` (continuous output of `status,pressure` lines every 100 ms, 1 s or 1 min after the ACK;
the next byte the host sends ends it — the manual leaves open how it ends), `AYT`.
Not simulated: switching functions, the gauge's parameters (calibration, filter, gas type), the
watchdog, the Pfeiffer Vacuum Protocol of section 2 (RS-485 telegrams).
"""

from __future__ import annotations

import argparse
import math
from typing import ClassVar

from device_servers.gauge.tpg361_protocol import (
    ACK,
    BAD_PARAMETER,
    END,
    ENQ,
    ETX,
    LF,
    NAK,
    NO_HARDWARE,
    STREAM_PERIODS_S,
    SYNTAX_ERROR,
    TCP_PORT,
    UNITS,
    TpgRequests,
)

from .vacuum import VacuumSimulator

#: What each unit is in mbar (V is the gauge's output signal, not a pressure).
MBAR_PER = {"mbar": 1.0, "Torr": 1013.25 / 760, "Pa": 0.01, "Micron": 1013.25 / 760e3, "hPa": 1.0}
#: Gauge types and their measuring ranges, mbar.
GAUGES = {"PKR": (5e-9, 1000.0), "TPR": (5e-4, 1000.0), "IKR": (5e-11, 1e-2), "CMR": (1e-4, 1100.0)}
#: Sensor faults (control port) as PR1 status codes.
SENSOR_STATUS = {"error": 3, "off": 4, "none": 5}
IDENTITY = "TPG361,PTG28040,44998061,010100,010100"  # AYT: type, part number, serial, firmware, hardware


class Tpg361Simulator(VacuumSimulator):
    """Pfeiffer TPG 361 on TCP: PR1, UNI, TID, ERR, COM, AYT with ACK / NAK and ENQ."""

    kind = "tpg361"
    default_port = TCP_PORT
    framing = TpgRequests()
    garbage_end = END

    def __init__(self, *, gauge: str = "PKR", **options: object) -> None:
        super().__init__(**options)
        if gauge not in GAUGES:
            raise ValueError(f"gauge {gauge!r} is not one of {', '.join(GAUGES)}")
        self.gauge = gauge
        self.unit = 0  # UNI code
        self.errors = 0  # the error word's bits
        self.pending: str | None = None  # the mnemonic the next ENQ answers
        self.streaming: float | None = None  # COM period, s
        self._since_streamed = 0.0

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--gauge", default="PKR", choices=sorted(GAUGES), help="gauge type (PKR)")

    # -- the wire --------------------------------------------------------------------------------

    def handle(self, frame: bytes) -> bytes | None:
        self.received.append(frame)
        if frame == LF:  # the optional end of a line already taken at its CR
            return None
        self.streaming = None  # anything else from the host ends continuous output
        if frame.endswith(ETX):
            return None
        if frame == ENQ:
            if self.pending is None:
                self.errors |= SYNTAX_ERROR
                return NAK + END
            return self._answer(self.pending).encode("ascii") + END
        text = frame.rstrip(b"\r\n").decode("ascii", errors="replace").replace(" ", "")
        mnemonic, _, parameters = text.partition(",")
        accepted = self._take(mnemonic.upper(), parameters)
        if not accepted:
            self.pending = None
            return NAK + END
        self.pending = text.upper()
        if mnemonic.upper() == "COM":
            self.streaming = STREAM_PERIODS_S[int(parameters or 1)]
            self._since_streamed = 0.0
        return ACK + END

    def _take(self, mnemonic: str, parameters: str) -> bool:
        """Whether the gauge takes the mnemonic (setting a parameter on the way); else the error bit."""
        if mnemonic in ("PR1", "TID", "ERR", "AYT") and not parameters:
            return True
        if mnemonic == "UNI":
            if parameters == "":
                return True
            if parameters in {str(code) for code in range(len(UNITS))}:
                self.unit = int(parameters)
                return True
            self.errors |= BAD_PARAMETER
            return False
        if mnemonic == "COM":
            if parameters in ("", "0", "1", "2"):
                return True
            self.errors |= BAD_PARAMETER
            return False
        if mnemonic in ("PR2", "PRX"):  # a second gauge: the DualGauge TPG 362 has one
            self.errors |= NO_HARDWARE
            return False
        self.errors |= SYNTAX_ERROR
        return False

    def _answer(self, request: str) -> str:
        mnemonic = request.partition(",")[0]
        if mnemonic in ("PR1", "COM"):
            return self.measurement()
        if mnemonic == "UNI":
            return str(self.unit)
        if mnemonic == "TID":
            return self.gauge if self.sensor != "none" else "noSen"
        if mnemonic == "AYT":
            return IDENTITY
        word, self.errors = self.errors, 0
        return f"{word:04b}"

    def measurement(self) -> str:
        """`status,value` as PR1 and COM send it: the value in the current unit, exponential."""
        pressure = self.measured()
        if self.sensor in SENSOR_STATUS:
            status = SENSOR_STATUS[self.sensor]
            return f"{status},{_exponential(2e-2 if status == 5 else 0.0)}"
        low, high = GAUGES[self.gauge]
        status = 1 if self.pressure < low else 2 if self.pressure > high else 0
        pressure = min(max(pressure, low), high)
        unit = UNITS[self.unit]
        if unit == "V":  # the PKR's output signal: p = 10^(1.667 U - 11.33) mbar
            return f"{status},{_exponential((math.log10(pressure) + 11.33) / 1.667)}"
        return f"{status},{_exponential(pressure / MBAR_PER[unit])}"

    # -- continuous output -----------------------------------------------------------------------

    def step(self, dt: float) -> None:
        super().step(dt)
        if self.streaming is None or self.offline:
            return
        self._since_streamed += dt
        if self._since_streamed >= self.streaming:
            self._since_streamed = 0.0
            self.send_unasked(self.measurement().encode("ascii") + END)

    def clear(self) -> None:
        super().clear()
        with self.lock:
            self.errors = 0

    _CONTROL: ClassVar = {**VacuumSimulator._CONTROL, "clear": clear}


def _exponential(value: float) -> str:
    """`1.0000E-03` as the TPG writes numbers: four decimals, signed two-digit exponent."""
    return f"{value:.4E}"
