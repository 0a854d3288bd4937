"""MKS PDR900 vacuum gauge controller over the MKS 900-series serial protocol, as the lab reaches
it through a terminal server: `@253PR1?;FF` -> `@253ACK1.23E-3;FF`, or `@253NAK160;FF`.

    gauge = Pdr900(link, address=253)   # address None: asked with @254AD?;FF at configure
    gauge.configure()                   # the address if unknown, and the unit the gauge shows (U?)
    gauge.read()                        # GaugeReading(pressure=1.6e-03, status=SensorStatus.OK)

The pressure comes in the unit set on the controller (Torr at delivery) and is converted here to
mbar. The driver reads that unit (`U?`) rather than setting it (`U!MBAR` exists): the setting is
stored in the controller, and the operators read its front panel in their own unit.
"""

from __future__ import annotations

import re

from ..core.errors import InstrumentError, shown
from ..core.framing import Lines
from ..core.limits import Limits
from ..core.link import Link
from .vocabulary import Gauge, GaugeReading, SensorStatus, to_mbar

FRAMING = Lines(b";FF")
BROADCAST = 254
ADDRESS_LIMITS = Limits(1, 253)
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
#: `U?` answers, by the names the shared vocabulary uses.
UNITS = {"TORR": "Torr", "MBAR": "mbar", "PASCAL": "Pa"}
#: `T?` transducer status letters other than O (ok).
TRANSDUCER_FAILURES = {
    "M": "MicroPirani sensor failure",
    "Z": "Piezo sensor failure",
    "C": "cold cathode sensor failure",
    "P": "Pirani sensor failure",
}
ANSWER = re.compile(r"@(\d{3})(ACK|NAK)(.*)", re.DOTALL)


class Pdr900(Gauge):
    """One PDR900 controller and its transducer at one address."""

    model = "PDR900"
    framing = FRAMING

    def __init__(self, link: Link, address: int | None = 253) -> None:
        super().__init__(link)
        self.address = None if address is None else int(ADDRESS_LIMITS.check("address", address))
        self.unit = "Torr"

    def configure(self) -> None:
        if self.address is None:
            self.address = self.find_address()
        self.unit = self.read_unit()

    def find_address(self) -> int:
        """The address of the one device on the line (`@254AD?;FF`, which every device answers)."""
        answer = self.ask("AD?", BROADCAST)
        if not answer.isdigit():
            raise InstrumentError(f"{self.model} address {shown(answer)} is not a number")
        return int(answer)

    def identify(self) -> str:
        return f"PDR900 serial {self.ask('SNC?')}, firmware {self.ask('FVC?')}"

    def read_unit(self) -> str:
        answer = self.ask("U?").upper()
        if answer not in UNITS:
            raise InstrumentError(f"{self.model} unit {shown(answer)} is not one of {', '.join(UNITS)}")
        return UNITS[answer]

    def read(self) -> GaugeReading:
        status = self.ask("T?").upper()
        if status != "O":
            detail = TRANSDUCER_FAILURES.get(status, f"transducer status {status!r}")
            return GaugeReading(None, SensorStatus.SENSOR_ERROR, detail)
        answer = self.ask("PR1?")
        try:
            value = float(answer)
        except ValueError:
            raise InstrumentError(f"{self.model} pressure {shown(answer)} is not a number") from None
        return GaugeReading(to_mbar(value, self.unit), SensorStatus.OK)

    def ask(self, command: str, address: int | None = None) -> str:
        """Send `@<address><command>;FF` and return the value of its ACK; a NAK raises
        `InstrumentError` with the manual's words for its code."""
        address = self.address if address is None else address
        if address is None:
            raise InstrumentError(f"{self.model} address unknown: configure() finds it")
        request = f"@{address:03d}{command};FF".encode("ascii")
        payload = self.link.transaction(request, framing=FRAMING).decode("ascii", errors="replace")
        match = ANSWER.fullmatch(payload)
        if match is None:
            raise InstrumentError(f"{self.model} answered {shown(payload)} to {shown(request)}")
        if address != BROADCAST and int(match[1]) != address:
            raise InstrumentError(
                f"{self.model} answer from address {match[1]}, not {address:03d}: {shown(payload)}"
            )
        if match[2] == "NAK":
            code = match[3]
            words = NAK_CODES.get(int(code), "unknown code") if code.isdigit() else "unreadable code"
            raise InstrumentError(f"{self.model} refused {command!r}: NAK{code} ({words})")
        return match[3]
