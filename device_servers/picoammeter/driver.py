"""Drivers of the Keithley 6485 (SCPI) and 487 (DDC) picoammeters, one vocabulary for both.

Pure Python over a `Link`: a direct line (`socket://host:port`) or an address on a GPIB bus
(`gpib://lab/gpib/1/14`); both carry one message per line.

    meter = Keithley6485(link)
    meter.configure()              # reading elements, integration time
    meter.read_status().reading    # CurrentReading(amps=1.2e-09, range=2e-09, overflow=False)
    meter.set_range(20e-9); meter.set_auto_range(True); meter.zero_correct()

An overflow is `amps=None`, never a number. Every command is followed by the instrument's own
error report (`SYST:ERR?` on the 6485, the `U1X` error word on the 487) and an error becomes an
`InstrumentError` in the instrument's words. The 487's voltage source is checked here against
its range and the interlock before anything is sent (`RejectedValue`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..core.errors import InstrumentError, RejectedValue, shown
from ..core.limits import Limits
from ..core.link import Link

RANGES_6485 = (2e-9, 20e-9, 200e-9, 2e-6, 20e-6, 200e-6, 2e-3, 20e-3)
RANGES_487 = RANGES_6485[:7]
#: Any range a picoammeter here has: what the device's `range` attribute accepts.
RANGE_LIMITS = Limits(0.0, 20e-3, "A")
#: The 6485 reports an overflow as this value (manual: FORMat:ELEMents).
OVERFLOW_6485 = 9.9e37
#: Integration in power-line cycles: the 6485 takes 0.01 to 50 (60 at 60 Hz).
NPLC_LIMITS = Limits(0.01, 50.0, "PLC")

#: The 487 source: programmable magnitude per range, and its current limits.
VOLTAGE_RANGES_487 = {50.0: Limits(-50.5, 50.5, "V"), 500.0: Limits(-505.0, 505.0, "V")}
VOLTAGE_LIMITS = Limits(-505.0, 505.0, "V")
VOLTAGE_RANGE_LIMITS = Limits(50.0, 500.0, "V")
#: Current limit codes: 1 = 25 uA on both ranges; 0 = 25 mA (50 V) or 2.5 mA (500 V).
LOW_CURRENT_LIMIT = 25e-6
HIGH_CURRENT_LIMITS = {50.0: 25e-3, 500.0: 2.5e-3}
CURRENT_LIMIT_LIMITS = Limits(25e-6, 25e-3, "A")
#: The 487's U1X error word, one digit each after '487', left to right (the order the 6487
#: manual's 487 emulation lists them).
ERRORS_487 = (
    "IDDC (unknown command)", "IDDCO (illegal command option)", "no remote", "self-test failed",
    "trigger overrun", "conflict", "cal locked", "zero check", "calibration", "E2PROM defaults",
    "E2PROM cal constants", "V-source conflict", "interlock open",
)


@dataclass(frozen=True)
class CurrentReading:
    amps: float | None  # None: the current overflows the range
    range: float  # A, full scale of the range it was taken on

    @property
    def overflow(self) -> bool:
        return self.amps is None


@dataclass(frozen=True)
class SourceStatus:
    """The 487's voltage source."""

    voltage: float  # V at the output (0 in standby)
    voltage_range: float  # 50 or 500 V
    current_limit: float  # A
    operate: bool
    interlock_closed: bool
    in_current_limit: bool


@dataclass(frozen=True)
class PicoammeterStatus:
    reading: CurrentReading
    auto_range: bool
    zero_check: bool
    source: SourceStatus | None = None  # the 487 only


class Picoammeter:
    """What every picoammeter here does, in one vocabulary; the protocol is the subclass's."""

    model = "picoammeter"
    ranges: tuple[float, ...] = RANGES_6485

    def __init__(self, link: Link) -> None:
        self.link = link

    # -- the shared vocabulary --------------------------------------------------------------

    def set_range(self, amps: float) -> float:
        """Fix the range to the lowest that holds `amps` (auto range ends); returns its full scale."""
        amps = RANGE_LIMITS.check("range", amps)
        index = next((i for i, full in enumerate(self.ranges) if amps <= full * 1.000001), None)
        if index is None:
            allowed = ", ".join(f"{full:g}" for full in self.ranges)
            raise RejectedValue(f"the {self.model} has no range for {amps:g} A: ranges are {allowed} A")
        self._select_range(index)
        return self.ranges[index]

    def set_auto_range(self, on: bool) -> bool:
        self._set_auto_range(bool(on))
        return bool(on)

    def set_zero_check(self, on: bool) -> bool:
        """Zero check shorts the input: readings are ~0 and the input is protected."""
        self._set_zero_check(bool(on))
        return bool(on)

    def configure(self, nplc: float = 1.0) -> None:
        raise NotImplementedError

    def identify(self) -> str:
        raise NotImplementedError

    def read_status(self) -> PicoammeterStatus:
        raise NotImplementedError

    def read_current(self) -> CurrentReading:
        raise NotImplementedError

    def zero_correct(self) -> None:
        """Acquire the zero correction with the input shorted and use it; zero check is left
        as it was."""
        raise NotImplementedError

    def _select_range(self, index: int) -> None:
        raise NotImplementedError

    def _set_auto_range(self, on: bool) -> None:
        raise NotImplementedError

    def _set_zero_check(self, on: bool) -> None:
        raise NotImplementedError


def _number(text: str, what: str, reply: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise InstrumentError(f"cannot read {what} from {shown(text)} in reply {shown(reply)}") from None
    if not math.isfinite(value):
        raise InstrumentError(f"cannot read {what} from {shown(text)} in reply {shown(reply)}")
    return value


class Keithley6485(Picoammeter):
    """Keithley 6485: SCPI, 2 nA to 20 mA."""

    model = "6485"
    ranges = RANGES_6485
    STATUS_QUERY = ":READ?;:SENS:CURR:RANG?;:SENS:CURR:RANG:AUTO?;:SYST:ZCH?"

    def configure(self, nplc: float = 1.0) -> None:
        """Readings as reading with unit, timestamp, status; integration `nplc` line cycles."""
        nplc = NPLC_LIMITS.check("integration", nplc)
        self._command(f":FORM:ELEM READ,UNIT,TIME,STAT;:SENS:CURR:NPLC {nplc:g}")

    def identify(self) -> str:
        return self.link.query("*IDN?").strip()

    def read_current(self) -> CurrentReading:
        reply = self.link.query(":READ?;:SENS:CURR:RANG?")
        fields = self._fields(reply, 2)
        return self._reading(fields[0], fields[1], reply)

    def read_status(self) -> PicoammeterStatus:
        """Reading, range, auto range and zero check in one round trip."""
        reply = self.link.query(self.STATUS_QUERY)
        reading, full_scale, auto, zero_check = self._fields(reply, 4)
        return PicoammeterStatus(
            self._reading(reading, full_scale, reply), self._flag(auto, reply), self._flag(zero_check, reply)
        )

    def zero_correct(self) -> None:
        """The manual's zero correction: zero check on, a reading, acquire, correction on."""
        with self.link.lock:
            was_checking = self._flag(self._ask(":SYST:ZCH?"), ":SYST:ZCH?")
            self._command(":SYST:ZCH ON;:INIT;:SYST:ZCOR:ACQ;:SYST:ZCOR ON")
            if not was_checking:
                self._command(":SYST:ZCH OFF")

    def _select_range(self, index: int) -> None:
        self._command(f":SENS:CURR:RANG {self.ranges[index]:.0e}")

    def _set_auto_range(self, on: bool) -> None:
        self._command(f":SENS:CURR:RANG:AUTO {'ON' if on else 'OFF'}")

    def _set_zero_check(self, on: bool) -> None:
        self._command(f":SYST:ZCH {'ON' if on else 'OFF'}")

    # -- internals ----------------------------------------------------------------------------

    def _ask(self, query: str) -> str:
        return self.link.query(query).strip()

    def _command(self, command: str) -> None:
        """Send `command` with the error query after it; the instrument's error is raised."""
        reply = self.link.query(f"{command};:SYST:ERR?").strip()
        code_text, _, message = reply.partition(",")
        try:
            code = int(code_text)
        except ValueError:
            raise InstrumentError(f"unexpected reply {shown(reply)} to the error query after {shown(command)}") from None
        if code != 0:
            words = message.strip().strip('"')
            raise InstrumentError(f"the 6485 refused {shown(command, 60)}: error {code}, {words!r}")

    @staticmethod
    def _fields(reply: str, count: int) -> list[str]:
        fields = reply.strip().split(";")
        if len(fields) != count:
            raise InstrumentError(f"expected {count} answers, got {len(fields)}: {shown(reply)}")
        return fields

    @staticmethod
    def _flag(text: str, reply: str) -> bool:
        value = text.strip()
        if value not in ("0", "1"):
            raise InstrumentError(f"expected 0 or 1, got {shown(value)} in reply {shown(reply)}")
        return value == "1"

    @staticmethod
    def _reading(element: str, full_scale: str, reply: str) -> CurrentReading:
        first = element.split(",")[0].strip()
        if not first.upper().endswith("A"):
            raise InstrumentError(f"reading {shown(first)} is not in amps (reply {shown(reply)})")
        amps = _number(first[:-1], "current", reply)
        full = _number(full_scale, "range", reply)
        return CurrentReading(None if abs(amps) >= OVERFLOW_6485 * 0.99 else amps, full)


class Keithley487(Picoammeter):
    """Keithley 487: DDC commands, 2 nA to 2 mA, and a 50 V / 500 V voltage source."""

    model = "487"
    ranges = RANGES_487

    def configure(self, nplc: float = 1.0) -> None:
        """Readings with their prefix (G0), line-cycle integration (S1) unless `nplc` < 1;
        old errors are read and so cleared."""
        nplc = NPLC_LIMITS.check("integration", nplc)
        self.link.query("U1X")
        self._command(f"G0S{1 if nplc >= 1 else 0}X")

    def identify(self) -> str:
        status = self._machine_status()
        return f"Keithley 487 ({status[:3]})"

    def read_current(self) -> CurrentReading:
        with self.link.lock:
            reply = self.link.query("B0X").strip()
            status = self._machine_status()
        return self._reading(reply, status)

    def read_status(self) -> PicoammeterStatus:
        with self.link.lock:
            reading = self.link.query("B0X").strip()
            status = self._machine_status()
            source = self._source_status(status)
        return PicoammeterStatus(
            self._reading(reading, status), status[32:34] == "R1", status[7:9] != "C0", source
        )

    def zero_correct(self) -> None:
        """C2X acquires the correction on the present range (zero check on); then back to C0
        if zero check was off."""
        with self.link.lock:
            was_checking = self._machine_status()[7:9] != "C0"
            self._command("C2X" if was_checking else "C2XC0X")

    def _select_range(self, index: int) -> None:
        self._command(f"R{index + 1}X")

    def _set_auto_range(self, on: bool) -> None:
        with self.link.lock:
            if on:
                self._command("R0X")
            else:  # stay on the range auto ranging chose
                self._command(f"R{self._machine_status()[34]}X")

    def _set_zero_check(self, on: bool) -> None:
        self._command("C1X" if on else "C0X")

    # -- the voltage source -------------------------------------------------------------------

    def read_source(self) -> SourceStatus:
        with self.link.lock:
            return self._source_status(self._machine_status())

    def set_voltage(self, volts: float) -> float:
        """Program the source within its present range (50 V: ±50.5 V, 500 V: ±505 V)."""
        with self.link.lock:
            source = self.read_source()
            volts = VOLTAGE_RANGES_487[source.voltage_range].check(
                f"voltage on the {source.voltage_range:g} V range", volts
            )
            self._program(volts, source.voltage_range, source.current_limit)
            return volts

    def set_voltage_range(self, volts: float) -> float:
        """50 or 500 V; the 500 V range needs the interlock closed while the source operates."""
        choice = {50.0: 0, 500.0: 1}.get(float(volts))
        if choice is None:
            raise RejectedValue(f"voltage range {volts!r} V is not one of 50, 500 V")
        with self.link.lock:
            source = self.read_source()
            if choice and source.operate and not source.interlock_closed:
                raise RejectedValue("the 500 V range needs the interlock closed; it is open")
            programmed = self._programmed_volts()
            if not VOLTAGE_RANGES_487[float(volts)].low <= programmed <= VOLTAGE_RANGES_487[float(volts)].high:
                raise RejectedValue(
                    f"the programmed {programmed:g} V does not fit the {volts:g} V range: set a smaller voltage first"
                )
            limit = source.current_limit if source.current_limit == LOW_CURRENT_LIMIT else HIGH_CURRENT_LIMITS[float(volts)]
            self._program(programmed, float(volts), limit)
            return float(volts)

    def set_current_limit(self, amps: float) -> float:
        """25 uA, or the range's high limit (25 mA on 50 V, 2.5 mA on 500 V)."""
        with self.link.lock:
            source = self.read_source()
            high = HIGH_CURRENT_LIMITS[source.voltage_range]
            amps = CURRENT_LIMIT_LIMITS.check("current limit", amps)
            if not (math.isclose(amps, LOW_CURRENT_LIMIT) or math.isclose(amps, high)):
                raise RejectedValue(
                    f"current limit {amps:g} A is not one of 2.5e-05, {high:g} A on the {source.voltage_range:g} V range"
                )
            limit = LOW_CURRENT_LIMIT if math.isclose(amps, LOW_CURRENT_LIMIT) else high
            self._program(self._programmed_volts(), source.voltage_range, limit)
            return limit

    def set_operate(self, on: bool) -> bool:
        """Source output on (operate) or standby; on the 500 V range only with the interlock closed."""
        with self.link.lock:
            source = self.read_source()
            if on and source.voltage_range == 500.0 and not source.interlock_closed:
                raise RejectedValue("the 500 V range operates only with the interlock closed; it is open")
            self._command("O1X" if on else "O0X")
            if on and not self.read_source().operate:
                raise InstrumentError("the 487 stayed in standby after O1X")
            return bool(on)

    # -- internals ----------------------------------------------------------------------------

    def _program(self, volts: float, voltage_range: float, current_limit: float) -> None:
        code = 1 if math.isclose(current_limit, LOW_CURRENT_LIMIT) else 0
        self._command(f"V{volts:.3f},{0 if voltage_range == 50.0 else 1},{code}X")
        self._volts = volts

    _volts: float | None = None

    def _programmed_volts(self) -> float:
        """The programmed value: U8X reads 0 in standby, so the last value sent counts then."""
        return self._volts if self._volts is not None else self._source_volts()

    def _source_volts(self) -> float:
        reply = self.link.query("U8X").strip()
        if not (reply.startswith("VS=") and reply.endswith("V")):
            raise InstrumentError(f"unexpected voltage source reply {shown(reply)} to U8X")
        return _number(reply[3:-1], "source voltage", reply)

    def _machine_status(self) -> str:
        reply = self.link.query("U0X").strip()
        if len(reply) < 44 or not reply.startswith("487") or reply[7] != "C" or reply[28] != "O" or reply[32] != "R":
            raise InstrumentError(f"unexpected machine status {shown(reply)} to U0X")
        return reply

    def _source_status(self, status: str) -> SourceStatus:
        word = self.link.query("U9X").strip()
        if len(word) != 5 or not word.startswith("487") or set(word[3:]) - {"0", "1"}:
            raise InstrumentError(f"unexpected voltage source status {shown(word)} to U9X")
        voltage_range = 500.0 if status[40] == "1" else 50.0
        limit = LOW_CURRENT_LIMIT if status[41] == "1" else HIGH_CURRENT_LIMITS[voltage_range]
        return SourceStatus(
            voltage=self._source_volts(), voltage_range=voltage_range, current_limit=limit,
            operate=status[28:30] == "O1", interlock_closed=word[3] == "0", in_current_limit=word[4] == "1",
        )

    def _command(self, command: str) -> None:
        """Send `command`, then read the U1X error word (reading it clears it)."""
        with self.link.lock:
            self.link.write_line(command)
            word = self.link.query("U1X").strip()
        if not word.startswith("487") or len(word) != 3 + len(ERRORS_487) or set(word[3:]) - {"0", "1"}:
            raise InstrumentError(f"unexpected error status {shown(word)} to U1X after {shown(command)}")
        errors = [name for name, bit in zip(ERRORS_487, word[3:]) if bit == "1"]
        if errors:
            raise InstrumentError(f"the 487 refused {shown(command)}: {', '.join(errors)}")

    def _reading(self, reply: str, status: str) -> CurrentReading:
        full_scale = self.ranges[int(status[34]) - 1] if status[34] in "1234567" else math.nan
        if len(reply) < 5 or reply[0] not in "NOZ" or reply[1:4] != "DCA":
            raise InstrumentError(f"unexpected reading {shown(reply)} to B0X (expected e.g. 'NDCA+1.2345E-09')")
        amps = _number(reply[4:], "current", reply)
        return CurrentReading(None if reply[0] == "O" else amps, full_scale)
