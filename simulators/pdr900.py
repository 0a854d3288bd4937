"""MKS PDR900 vacuum gauge controller, simulated: the MKS 900-series serial protocol over a pumped
chamber, as the lab reaches it through a terminal server (raw TCP).

The protocol is that of MKS's 900-series transducers and their PDR900 controller (the 900-series
operation manuals, "Communication Protocol"): a request is `@`, a three-digit address, a command,
then `?` (query) or `!` and a value (command), ended by `;FF`; letters in either case. The answer
is `@<own address>ACK<value>;FF`, or `@<own address>NAK<code>;FF`:

    @253PR1?;FF        ->  @253ACK1.23E-3;FF     pressure, 3 digits, in the unit set (Torr at delivery)
    @253XYZ?;FF        ->  @253NAK160;FF         unrecognized message

NAK codes (manual): 8 zero adjustment at too high pressure, 9 atmospheric adjustment at too low
pressure, 160 unrecognized message, 169 invalid argument, 172 value out of range, 175
command/query character invalid, 180 protected setting. Addresses 001-253 (253 at delivery);
254 is heard by every device and each answers with its own address (`@254AD?;FF` ->
`@253ACK253;FF` finds an unknown address), 255 by every device and none answers; a request for
another address gets no answer (on RS-485 another device would answer it).

Commands: `PR1?` (PR2?-PR4? the same reading, PR4 with 4 digits), `U?` / `U!TORR|MBAR|PASCAL`,
`AD?` / `AD!nnn`, `T?` (transducer status: O ok, M MicroPirani sensor failure), `SNC?` / `FVC?`
(the controller's serial number and firmware version), `SN?`, `FV?`, `MD?`, `MF?`, `DT?` (the
transducer's).

The control port's `sensor error` makes `T?` answer `M`; the PDR900 reports no other sensor state,
so `sensor off` and `no sensor` are refused. Not simulated: set points and relays, the data
logger (`DLC`, `DLT`, `DL?`), zero and atmosphere adjustment, baud rate.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import ClassVar

from device_servers.gauge.pdr900_protocol import (
    BAD_CHARACTER,
    BROADCAST,
    END,
    FRAMING,
    INVALID_ARGUMENT,
    OUT_OF_RANGE,
    REQUEST,
    SILENT_BROADCAST,
    UNRECOGNIZED,
    number,
)

from .vacuum import VacuumSimulator

MBAR_PER = {"TORR": 1013.25 / 760, "MBAR": 1.0, "PASCAL": 0.01}  # the U! units
CONTROLLER_SERIAL, CONTROLLER_FIRMWARE = "1734201956", "1.07"
TRANSDUCER = {"SN": "1722001345", "FV": "1.20", "MD": "972B", "MF": "MKS", "DT": "DUALMAG"}


class Refused(Exception):
    """The device answers NAK with this code."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def _constant(text: str) -> Callable[[Pdr900Simulator, str | None], str]:
    """A query with a fixed answer (identification); setting it is refused."""

    def answer(simulator: Pdr900Simulator, value: str | None) -> str:
        if value is not None:
            raise Refused(BAD_CHARACTER)
        return text

    return answer


class Pdr900Simulator(VacuumSimulator):
    """MKS PDR900 on TCP: `@253PR1?;FF` -> `@253ACK1.23E-3;FF`, NAK codes, addresses."""

    kind = "pdr900"
    default_port = 4001  # a terminal server's first port; the real one is the lab's choice
    framing = FRAMING
    garbage_end = END
    sensor_faults = ("ok", "error")

    def __init__(self, *, address: int = 253, **options: object) -> None:
        super().__init__(**options)
        if not 1 <= address <= 253:
            raise ValueError(f"address {address} is not 1 to 253")
        self.address = address
        self.unit = "TORR"

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--address", type=int, default=253, help="device address, 1 to 253 (253)")

    def handle(self, frame: bytes) -> bytes | None:
        text = self.framing.payload(frame).decode("ascii", errors="replace").strip()
        self.received.append(text + ";FF")
        match = REQUEST.fullmatch(text)
        if match is None:
            return None  # no `@` and address: no device knows it is meant
        address = int(match[1])
        if address not in (self.address, BROADCAST, SILENT_BROADCAST):
            return None
        try:
            body = "ACK" + self._answer(match[2].upper(), match[3], match[4])
        except Refused as refusal:
            body = f"NAK{refusal.code}"
        if address == SILENT_BROADCAST:
            return None
        return f"@{self.address:03d}{body}".encode("ascii") + END

    def _answer(self, command: str, kind: str, value: str) -> str:
        if kind not in "?!":
            raise Refused(BAD_CHARACTER)
        handler = self._COMMANDS.get(command)
        if handler is None:
            raise Refused(UNRECOGNIZED)
        if kind == "?":
            if value:
                raise Refused(INVALID_ARGUMENT)
            return handler(self, None)
        return handler(self, value.upper())

    # -- commands: each takes None (a query) or the value to set, and returns the answer -----

    def _pressure(self, value: str | None, digits: int = 2) -> str:
        if value is not None:
            raise Refused(BAD_CHARACTER)
        return number(self.measured() / MBAR_PER[self.unit], digits)

    def _unit(self, value: str | None) -> str:
        if value is not None:
            if value not in MBAR_PER:
                raise Refused(INVALID_ARGUMENT)
            self.unit = value
        return self.unit

    def _address(self, value: str | None) -> str:
        if value is not None:
            if not value.isdigit():
                raise Refused(INVALID_ARGUMENT)
            if not 1 <= int(value) <= 253:
                raise Refused(OUT_OF_RANGE)
            self.address = int(value)
        return f"{self.address:03d}"

    def _status(self, value: str | None) -> str:
        if value is not None:
            raise Refused(BAD_CHARACTER)
        return "M" if self.sensor == "error" else "O"

    _COMMANDS: ClassVar[dict[str, Callable[..., str]]] = {
        "PR1": _pressure,
        "PR2": _pressure,
        "PR3": _pressure,
        "PR4": lambda self, value: self._pressure(value, 3),
        "U": _unit,
        "AD": _address,
        "T": _status,
        "SNC": _constant(CONTROLLER_SERIAL),
        "FVC": _constant(CONTROLLER_FIRMWARE),
        **{name: _constant(text) for name, text in TRANSDUCER.items()},
    }

    def spoil(self, fault: str, reply: bytes) -> bytes:
        if fault == "address":  # as if another gauge on the line answered
            other = 1 if self.address != 1 else 2
            return f"@{other:03d}".encode("ascii") + reply[4:]
        return super().spoil(fault, reply)  # truncate; the protocol has no checksum
