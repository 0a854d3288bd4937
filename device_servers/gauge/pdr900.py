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

from ..core.errors import GarbledReply, InstrumentError, shown
from ..core.limits import Limits
from ..core.link import Link
from ..core.scpi import integer, number, parsed
from .pdr900_protocol import ANSWER, BROADCAST, FRAMING, NAK_CODES, TRANSDUCER_FAILURES, UNITS, request
from .vocabulary import Gauge, GaugeReading, SensorStatus, to_mbar

ADDRESS_LIMITS = Limits(1, 253)


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
        return parsed(integer, self.ask("AD?", BROADCAST), f"{self.model} address")

    def identify(self) -> str:
        return f"PDR900 serial {self.ask('SNC?')}, firmware {self.ask('FVC?')}"

    def read_unit(self) -> str:
        answer = self.ask("U?").upper()
        if answer not in UNITS:
            raise GarbledReply(f"{self.model} unit {shown(answer)} is not one of {', '.join(UNITS)}")
        return UNITS[answer]

    def read(self) -> GaugeReading:
        status = self.ask("T?").upper()
        if status != "O":
            detail = TRANSDUCER_FAILURES.get(status, f"transducer status {status!r}")
            return GaugeReading(None, SensorStatus.SENSOR_ERROR, detail)
        pressure = parsed(number, self.ask("PR1?"), f"{self.model} pressure")
        return GaugeReading(to_mbar(pressure, self.unit), SensorStatus.OK)

    def ask(self, command: str, address: int | None = None) -> str:
        """Send `@<address><command>;FF` and return the value of its ACK; a NAK raises
        `InstrumentError` with the manual's words for its code."""
        address = self.address if address is None else address
        if address is None:
            raise InstrumentError(f"{self.model} address unknown: configure() finds it")
        sent = request(address, command)
        raw = self.link.transaction(sent, framing=FRAMING)
        payload = raw.decode("ascii", errors="replace")
        match = ANSWER.fullmatch(payload)
        if match is None:
            raise GarbledReply(f"{self.model} answered {shown(raw)} to {shown(sent)}")
        if address != BROADCAST and int(match[1]) != address:
            raise GarbledReply(
                f"{self.model} answer from address {match[1]}, not {address:03d}: {shown(payload)}"
            )
        if match[2] == "NAK":
            code = match[3]
            words = NAK_CODES.get(int(code), "unknown code") if code.isdigit() else "unreadable code"
            raise InstrumentError(f"{self.model} refused {command!r}: NAK{code} ({words})")
        return match[3]
