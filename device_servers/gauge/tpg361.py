"""Pfeiffer TPG 361 SingleGauge over its mnemonics protocol (RS-232 9600 8N1, or Ethernet on TCP
port 8000): each request is acknowledged (ACK, or NAK for one the gauge cannot take) and its
answer fetched with ENQ, both under the link's lock (`core.acknowledged`).

    gauge = Tpg361(link)
    gauge.configure()      # ERR: a clean error word; UNI,0: readings in mbar
    gauge.read()           # GaugeReading(pressure=1e-03, status=SensorStatus.OK)

A status other than 0 is a reading without a pressure, never a number. A NAK becomes an
`InstrumentError` in the gauge's words: the error word that `ERR` reads after it.
"""

from __future__ import annotations

from ..core.acknowledged import PFEIFFER, NotAcknowledged
from ..core.errors import GarbledReply, InstrumentError, LinkError, RejectedValue, shown
from ..core.link import Link
from .tpg361_protocol import ERROR_BITS, FRAMING, STREAM_PERIODS_S, UNITS
from .vocabulary import Gauge, GaugeReading, SensorStatus, to_mbar

STATUS_WORDS = {
    SensorStatus.UNDERRANGE: "below the gauge's measuring range",
    SensorStatus.OVERRANGE: "above the gauge's measuring range",
    SensorStatus.SENSOR_ERROR: "the gauge reports a sensor error",
    SensorStatus.SENSOR_OFF: "the sensor is switched off",
    SensorStatus.NO_SENSOR: "no gauge is connected",
    SensorStatus.IDENTIFICATION_ERROR: "the gauge cannot be identified",
}
#: COM intervals, s -> their code.
STREAM_MODES = {period: code for code, period in enumerate(STREAM_PERIODS_S)}


class Tpg361(Gauge):
    """One channel of a TPG 361 (the DualGauge TPG 362 speaks the same, with channel 2 too)."""

    model = "TPG 361"
    framing = FRAMING

    def __init__(self, link: Link, channel: int = 1) -> None:
        super().__init__(link)
        if channel not in (1, 2):
            raise RejectedValue(f"channel {channel!r} is not 1 or 2 (2 on a TPG 362 only)")
        self.channel = channel

    def configure(self) -> None:
        """Clear the error word (one word for the whole controller: what came before is not ours),
        and set readings in mbar."""
        self.read_error()
        self.set_unit("mbar")

    def identify(self) -> str:
        """The gauge type the controller sees (`TID`): PKR, TPR, IKR, CMR..., or noSen."""
        return self._query("TID")

    def read(self) -> GaugeReading:
        return self.parse_measurement(self._query(f"PR{self.channel}"))

    def parse_measurement(self, answer: str) -> GaugeReading:
        """`0,1.0000E-03` (as PR1 and COM send it) as a reading in mbar."""
        code, _, value = answer.partition(",")
        try:
            status = SensorStatus(int(code))
            number = float(value)
        except ValueError:
            raise GarbledReply(f"{self.model} measurement {shown(answer)} is not 'status,pressure'") from None
        if status is not SensorStatus.OK:
            return GaugeReading(None, status, STATUS_WORDS[status])
        if self.unit == "V":
            raise InstrumentError(f"{self.model} sends volts, not a pressure (UNI,5)")
        return GaugeReading(to_mbar(number, self.unit), status)

    def read_unit(self) -> str:
        return self._unit_of(self._query("UNI"))

    def set_unit(self, unit: str) -> str:
        """Set the unit the gauge shows and sends; returns the unit it then reports."""
        if unit not in UNITS:
            raise RejectedValue(f"unit {unit!r} is not one of {', '.join(UNITS)}")
        self.unit = self._unit_of(self._query(f"UNI,{UNITS.index(unit)}"))
        return self.unit

    def read_error(self) -> str:
        """The error word (`ERR`) in words, 'no error' when clear; reading it clears it."""
        word = _text(PFEIFFER.query(self.link, b"ERR\r\n", framing=FRAMING))
        if len(word) != len(ERROR_BITS) or set(word) - {"0", "1"}:
            raise GarbledReply(f"{self.model} error word {shown(word)} is not four bits")
        errors = [text for bit, text in zip(word, ERROR_BITS, strict=True) if bit == "1"]
        return f"{word} ({', '.join(errors) or 'no error'})"

    def start_streaming(self, interval: float = 1.0) -> None:
        """Continuous output (`COM`) every 0.1, 1 or 60 s; the lines come unasked (`parse_measurement`),
        and the next request ends it."""
        if interval not in STREAM_MODES:
            raise RejectedValue(f"interval {interval!r} s is not one of 0.1, 1, 60 s")
        self._acknowledged(f"COM,{STREAM_MODES[interval]}", enquire=False)

    # -- the exchange ------------------------------------------------------------------------------

    def _query(self, mnemonic: str) -> str:
        return self._acknowledged(mnemonic, enquire=True)

    def _acknowledged(self, mnemonic: str, *, enquire: bool) -> str:
        request = mnemonic.encode("ascii") + b"\r\n"
        with self.link.lock:
            try:
                if not enquire:
                    PFEIFFER.command(self.link, request, framing=FRAMING)
                    return ""
                return _text(PFEIFFER.query(self.link, request, framing=FRAMING))
            except NotAcknowledged:
                reason = self._error_after_nak()
                raise InstrumentError(f"{self.model} refused {mnemonic!r} (NAK): error {reason}") from None

    def _error_after_nak(self) -> str:
        try:
            return self.read_error()
        except (InstrumentError, LinkError) as exc:
            return f"unknown (ERR failed: {exc})"

    def _unit_of(self, answer: str) -> str:
        if not answer.isdigit() or int(answer) >= len(UNITS):
            raise GarbledReply(f"{self.model} unit code {shown(answer)} is not 0 to {len(UNITS) - 1}")
        return UNITS[int(answer)]


def _text(answer: bytes) -> str:
    try:
        return answer.decode("ascii")
    except UnicodeDecodeError:
        raise GarbledReply(f"TPG 361 answer {shown(answer)} is not text") from None
