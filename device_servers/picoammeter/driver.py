"""Drivers of the Keithley 6485 (SCPI) and 487 (DDC) picoammeters, one vocabulary for both.

Pure Python over a `Link`: a direct line (`socket://host:port`) or an address on a GPIB bus
(`gpib://lab/gpib/1/14`); both carry one message per line.

    meter = Keithley6485(link)
    meter.configure()              # reading elements, integration time
    meter.read_status().reading    # CurrentReading(amps=1.2e-09, range=2e-09)
    meter.set_range(20e-9); meter.set_auto_range(True); meter.zero_correct()

An overflow is `amps=None`, never a number. Every command is followed by the instrument's own
error report (`SYST:ERR?` on the 6485, the `U1X` error word on the 487), and an error is an
`InstrumentError` in the instrument's words. The 487's voltage source is checked here against
its ranges before anything is sent (`RejectedValue`); its interlock is the instrument's to judge.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..core.errors import InstrumentError, RejectedValue
from ..core.limits import Limits
from ..core.scpi import Quantity, TextInstrument, flag, scpi_error
from . import keithley487_protocol as ddc
from . import keithley6485_protocol as scpi

#: Any range a picoammeter here has: what the device's `range` attribute accepts.
RANGE_LIMITS = Limits(0.0, 20e-3, "A")
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


class Picoammeter(TextInstrument):
    """What every picoammeter here does, in one vocabulary; the protocol is the subclass's."""

    ranges: tuple[float, ...] = scpi.RANGES

    def set_range(self, amps: float) -> float:
        """Fix the range to the lowest that holds `amps` (auto range ends); returns its full scale."""
        amps = RANGE_LIMITS.check("range", amps)
        index = next((i for i, full in enumerate(self.ranges) if amps <= full * 1.000001), None)
        if index is None:
            allowed = ", ".join(f"{full:g}" for full in self.ranges)
            raise RejectedValue(f"the {self.model} has no range for {amps:g} A: ranges are {allowed} A")
        return self._select_range(index)

    def configure(self, nplc: float = 1.0) -> None:
        raise NotImplementedError

    def read_status(self) -> PicoammeterStatus:
        raise NotImplementedError

    def zero_correct(self) -> None:
        """Acquire the zero correction with the input shorted and use it; zero check is left
        as it was."""
        raise NotImplementedError

    def set_auto_range(self, on: bool) -> bool:
        return self._switch_auto_range(bool(on))

    def set_zero_check(self, on: bool) -> bool:
        """Zero check shorts the input: readings are ~0 and the input is protected."""
        return self._switch_zero_check(bool(on))

    def _select_range(self, index: int) -> float:
        raise NotImplementedError

    def _switch_auto_range(self, on: bool) -> bool:
        raise NotImplementedError

    def _switch_zero_check(self, on: bool) -> bool:
        raise NotImplementedError


class Keithley6485(Picoammeter):
    """Keithley 6485: SCPI, 2 nA to 20 mA."""

    model = "Keithley 6485"
    ranges = scpi.RANGES
    error_query = Quantity(":SYST:ERR?", parse=scpi_error)

    identity = Quantity("*IDN?", parse=str.strip)
    current = Quantity(":READ?", parse=scpi.reading)
    full_scale = Quantity(":SENS:CURR:RANG?", ":SENS:CURR:RANG {:.0e}", limits=RANGE_LIMITS)
    auto_range = Quantity(":SENS:CURR:RANG:AUTO?", ":SENS:CURR:RANG:AUTO {:d}", flag)
    zero_check = Quantity(":SYST:ZCH?", ":SYST:ZCH {:d}", flag)
    integration = Quantity(":SENS:CURR:NPLC?", ":SENS:CURR:NPLC {:g}", limits=NPLC_LIMITS)

    def instrument_error(self, error: tuple[int, str]) -> str | None:
        code, words = error
        return f"error {code}, {words!r}" if code else None

    def configure(self, nplc: float = 1.0) -> None:
        """Readings as reading with unit, timestamp, status; integration `nplc` line cycles."""
        self.send(":FORM:ELEM READ,UNIT,TIME,STAT")
        self.write(self.integration, nplc)

    def read_status(self) -> PicoammeterStatus:
        """Reading, range, auto range and zero check in one round trip."""
        amps, full_scale, auto, zero_check = self.read(self.current, self.full_scale, self.auto_range, self.zero_check)
        return PicoammeterStatus(CurrentReading(amps, full_scale), auto, zero_check)

    def zero_correct(self) -> None:
        """The manual's zero correction: zero check on, a reading, acquire, correction on."""
        with self.link.lock:
            (was_checking,) = self.read(self.zero_check)
            self.send(":SYST:ZCH ON", ":INIT", ":SYST:ZCOR:ACQ", ":SYST:ZCOR ON")
            if not was_checking:
                self.write(self.zero_check, False)

    def _switch_auto_range(self, on: bool) -> bool:
        return self.write(self.auto_range, on)

    def _switch_zero_check(self, on: bool) -> bool:
        return self.write(self.zero_check, on)

    def _select_range(self, index: int) -> float:
        return self.write(self.full_scale, self.ranges[index])


class Keithley487(Picoammeter):
    """Keithley 487: DDC commands, 2 nA to 2 mA, and a 50 V / 500 V voltage source."""

    model = "Keithley 487"
    ranges = ddc.RANGES
    separator = None  # a DDC message that fails is ignored whole: one command a line
    error_query = Quantity("U1X", parse=ddc.errors_in)

    machine_status = Quantity("U0X", parse=ddc.machine_status)
    current = Quantity("B0X", parse=ddc.reading)
    source_value = Quantity("U8X", answer="VS={}V")
    source_status = Quantity("U9X", parse=ddc.source_status)

    def instrument_error(self, errors: list[str]) -> str | None:
        return ", ".join(errors) or None

    def configure(self, nplc: float = 1.0) -> None:
        """Readings with their prefix (G0), line-cycle integration (S1) unless `nplc` < 1;
        old errors are read and so cleared."""
        nplc = NPLC_LIMITS.check("integration", nplc)
        self.read(self.error_query)
        self.send(f"G0S{1 if nplc >= 1 else 0}X")

    def read_status(self) -> PicoammeterStatus:
        (state, amps), status, (interlock, limiting), volts = self.read(
            self.current, self.machine_status, self.source_status, self.source_value
        )
        full_scale = self.ranges[int(status[34]) - 1] if status[34] in "1234567" else math.nan
        return PicoammeterStatus(
            CurrentReading(None if state == "O" else amps, full_scale),
            auto_range=status[ddc.RANGE][1] == "1", zero_check=status[ddc.ZERO_CHECK] != "C0",
            source=_source(status, volts, interlock, limiting),
        )

    def zero_correct(self) -> None:
        """C2X acquires the correction on the present range (zero check on); then back to C0
        if zero check was off."""
        with self.link.lock:
            (status,) = self.read(self.machine_status)
            self.send("C2X" if status[ddc.ZERO_CHECK] != "C0" else "C2XC0X")

    def _switch_auto_range(self, on: bool) -> bool:
        with self.link.lock:
            (status,) = self.read(self.machine_status)
            self.send("R0X" if on else f"R{status[34]}X")  # off: stay on the range auto ranging chose
        return on

    def _switch_zero_check(self, on: bool) -> bool:
        self.send("C1X" if on else "C0X")
        return on

    def _select_range(self, index: int) -> float:
        self.send(f"R{index + 1}X")
        return self.ranges[index]

    # -- the voltage source -------------------------------------------------------------------

    def read_source(self) -> SourceStatus:
        status, (interlock, limiting), volts = self.read(self.machine_status, self.source_status, self.source_value)
        return _source(status, volts, interlock, limiting)

    def set_voltage(self, volts: float) -> float:
        """Program the source within its present range (50 V: ±50.5 V, 500 V: ±505 V)."""
        with self.link.lock:
            source = self.read_source()
            limits = VOLTAGE_RANGES_487[source.voltage_range]
            volts = limits.check(f"voltage on the {source.voltage_range:g} V range", volts)
            self._program(volts, source.voltage_range, source.current_limit)
            return volts

    def set_voltage_range(self, volts: float) -> float:
        """50 or 500 V; the 500 V range needs the interlock closed while the source operates."""
        if float(volts) not in VOLTAGE_RANGES_487:
            raise RejectedValue(f"voltage range {volts!r} V is not one of 50, 500 V")
        volts = float(volts)
        with self.link.lock:
            source = self.read_source()
            if volts == 500.0 and source.operate and not source.interlock_closed:
                raise RejectedValue("the 500 V range needs the interlock closed; it is open")
            programmed = self._programmed_volts(source)
            if not VOLTAGE_RANGES_487[volts].low <= programmed <= VOLTAGE_RANGES_487[volts].high:
                raise RejectedValue(
                    f"the programmed {programmed:g} V does not fit the {volts:g} V range: set a smaller voltage first"
                )
            low = math.isclose(source.current_limit, LOW_CURRENT_LIMIT)
            self._program(programmed, volts, LOW_CURRENT_LIMIT if low else HIGH_CURRENT_LIMITS[volts])
            return volts

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
            self._program(self._programmed_volts(source), source.voltage_range, limit)
            return limit

    def set_operate(self, on: bool) -> bool:
        """Source output on (operate) or standby; the 487 refuses to operate the 500 V range with
        its interlock open (its error word says so)."""
        self.send("O1X" if on else "O0X")
        if on and not self.read_source().operate:
            raise InstrumentError(f"the {self.model} stayed in standby after O1X")
        return bool(on)

    # -- internals ----------------------------------------------------------------------------

    _volts: float | None = None

    def _program(self, volts: float, voltage_range: float, current_limit: float) -> None:
        code = 1 if math.isclose(current_limit, LOW_CURRENT_LIMIT) else 0
        self.send(f"V{volts:.3f},{0 if voltage_range == 50.0 else 1},{code}X")
        self._volts = volts

    def _programmed_volts(self, source: SourceStatus) -> float:
        """The programmed value: U8X reads 0 in standby, so the last value sent counts then."""
        return self._volts if self._volts is not None else source.voltage


def _source(status: str, volts: float, interlock_closed: bool, in_current_limit: bool) -> SourceStatus:
    """The 487 source from its machine status (U0X), value (U8X) and status (U9X)."""
    voltage_range = 500.0 if status[40] == "1" else 50.0
    limit = LOW_CURRENT_LIMIT if status[41] == "1" else HIGH_CURRENT_LIMITS[voltage_range]
    return SourceStatus(volts, voltage_range, limit, status[ddc.OPERATE] == "O1", interlock_closed, in_current_limit)

