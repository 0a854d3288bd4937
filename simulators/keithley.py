"""Keithley picoammeters on GPIB, simulated: the 6485 (SCPI) and the 487 (DDC, with a voltage source).

Both measure one current from a simulated sample: the 487's source voltage over the sample's
resistance, plus a photo-current that drifts slowly with the light, plus Gaussian noise. A
current beyond the range reads as an overflow; zero check shorts the input, so the reading is
the small input offset that zero correction later subtracts. Readings take their real time:
`reply_time` is one integration (NPLC / line frequency) plus processing, and one more
integration for every range an auto-ranging reading passes through.

**Keithley 6485** (Model 6485 Picoammeter Instruction Manual, sections 13-16): SCPI, one
message a line, commands joined by `;`, queries answered in one line joined by `;`. Each header
is taken from the root (a leading `:` is optional); short and long forms, optional nodes such as
`[SENSe[1]:]CURRent[:DC]` and `SYSTem:ZCHeck[:STATe]` as the manual writes them. A reading is
the elements of `FORMat:ELEMents` (default all four, as after *RST) in the manual's order:
`+1.040564E-06A,+2.236299E+02,+1.380000E+02` = reading with its unit, timestamp (s since power
on), status word (bit 0 overflow, bit 9 zero check, bit 10 zero correct). An overflow reads
`+9.9E37` (written as the other numbers are). Errors go to the queue that `SYST:ERR?` empties:
`-113,"Undefined header"`, `0,"No error"`. A query that fails answers nothing.

**Keithley 487** (DDC): a message is commands, a letter and its options, carried out at `X`
(`R3X`, `C1X`, `V10,0,1X`, `F0R0C0X`). An unknown letter sets the IDDC error, a bad option the
IDDCO error, and the whole message is ignored; `U1X` reports and clears the errors. A message
with `B0` (reading) or a `U` status answers; others make no reply. The U1X error word is
`487` and a 0/1 digit per error in the order the 6487 manual's 487 emulation lists them: IDDC,
IDDCO, no remote, self-test, trigger overrun, conflict, cal locked, zero check, calibration,
E2PROM defaults, E2PROM cal constants, V-source conflict, interlock. With `G0` a reading has the
prefix `NDCA` (`N` normal, `O` overflow, `Z` zero check; `DCA` DC amps, `OHM` in `F1` V/I ohms):
`NDCA+1.2345E-09`; `G1` sends the number alone.

`U0X`, the machine status, has fixed fields (index: field)::

    0 '487'  3 A  5 B  7 C  9 D  11 F  13 G  15 I  17 K  19 Mnnn  23 Nnnnn  28 O  30 P
    32 R<auto 0|1><range 1-7>  35 S  37 T  39 V<range 0|1><limit 0|1>  42 Z

The offsets of C, O, R and V are those lab software reads from real 487s (ccdlab: C at 7, O at
28, R at 32 with the range digit at 34, V at 39 with the current limit at 41); the 487 manual's
figure was not at hand, so the fields in between are the 487's other command letters in
alphabetical order with widths chosen to meet those offsets. `U9X` is the source status
`487<interlock open 0|1><current limit 0|1>` (6487 manual, figure C-3); `U8X`, the source
value, is `VS=+1.0000E+01V` (a reconstruction that fits how the lab software cuts it).

The voltage source: `V<volts>,<range 0: 50 V | 1: 500 V>,<limit 0: 25 mA (50 V) / 2.5 mA
(500 V) | 1: 25 uA>X` programs it (±50.5 V or ±505 V, else IDDCO); `O1X` / `O0X` operate and
standby. The 500 V range operates only with the interlock closed: `O1X` with it open stays in
standby and sets the Interlock error, and opening the interlock drops a 500 V output to standby.

Not simulated: data store, triggers, filters, math, display text (`D` takes only 0), binary
formats (`G2`-`G5` are IDDCO), the SRQ status byte; the 6485's buffer, limits and status model
beyond the error queue, and SCPI's relative header paths (every header starts at the root).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from device_servers.picoammeter import keithley487_protocol as ddc
from device_servers.picoammeter import keithley6485_protocol as scpi
from device_servers.picoammeter.keithley6485_protocol import (
    ELEMENTS,
    ERRORS,
    OVERFLOW,
    STATUS_OVERFLOW,
    STATUS_ZERO_CHECK,
    STATUS_ZERO_CORRECT,
)

from .gpib import DirectGpibSimulator, GpibInstrument

#: A 6485 range reads up to 105 % of full scale before overflow.
OVERRANGE_6485 = 1.05
PROCESSING_S = 0.002


@dataclass
class Sample:
    """What is wired to the input: a resistance, a voltage across it, and light on it."""

    resistance: float = 1e10  # ohm
    photo_current: float = 1.2e-9  # A at full light
    drift_period: float = 600.0  # s, the light's slow swing
    drift_depth: float = 0.1
    dark_current: float = 5e-12  # A
    input_offset: float = 3e-14  # A seen with the input shorted (zero check)
    noise: float = 2e-13  # A, one sigma

    def current(self, volts: float, elapsed: float, gauss: Callable[[float, float], float]) -> float:
        light = 1.0 + self.drift_depth * math.sin(2 * math.pi * elapsed / self.drift_period)
        return volts / self.resistance + self.photo_current * light + self.dark_current + gauss(0.0, self.noise)


class Picoammeter(GpibInstrument):
    """What both picoammeters share: the sample, the clock, ranging and overflow."""

    ranges: ClassVar[tuple[float, ...]] = scpi.RANGES
    overrange: ClassVar[float] = 1.0

    def __init__(self, address: int, *, seed: int | None = None, line_frequency: float = 50.0) -> None:
        super().__init__(address, seed=seed)
        self.sample = Sample()
        self.line_frequency = line_frequency
        self.elapsed = 0.0  # s since power on
        #: Readings held by the controller's `freeze` (shared with it), by name.
        self.frozen: dict[str, object] = {}
        self.range_index = 0
        self.auto_range = True
        self.zero_check = False
        self.zero_offsets: dict[int, float] = {}
        self.zero_correct = False
        #: Seconds the last handled message (`busy_for`) kept the instrument busy.
        self.busy = 0.0
        self.busy_for: str | None = None

    def step(self, dt: float) -> None:
        self.elapsed += dt

    def readings(self) -> dict[str, object]:
        return {"current": self.true_current()}

    def source_volts(self) -> float:
        return 0.0

    def true_current(self) -> float:
        if "current" in self.frozen:
            return float(self.frozen["current"])  # type: ignore[arg-type]
        return self.sample.current(self.source_volts(), self.elapsed, self.random.gauss)

    def integration_s(self) -> float:
        raise NotImplementedError

    def convert(self) -> tuple[float | None, int]:
        """One reading: (amps, or None on overflow; conversions it took). Auto range moves
        one range per conversion until the reading fits, as the instruments do."""
        conversions = 1
        while True:
            amps = (
                self.sample.input_offset + self.random.gauss(0.0, self.sample.noise / 20)
                if self.zero_check
                else self.true_current()
            )
            full_scale = self.ranges[self.range_index] * self.overrange
            if not self.auto_range:
                break
            if abs(amps) > full_scale and self.range_index < len(self.ranges) - 1:
                self.range_index += 1
            elif self.range_index > 0 and abs(amps) < self.ranges[self.range_index - 1] * 0.9:
                self.range_index -= 1
            else:
                break
            conversions += 1
        if abs(amps) > self.ranges[self.range_index] * self.overrange:
            return None, conversions
        if self.zero_correct and not self.zero_check:
            amps -= self.zero_offsets.get(self.range_index, 0.0)
        return amps, conversions

    def reply_time(self, message: str) -> float:
        if self.busy_for == message:
            return self.busy
        return PROCESSING_S


# -- Keithley 6485 (SCPI) ----------------------------------------------------------------------

IDN_6485 = "KEITHLEY INSTRUMENTS INC.,MODEL 6485,1234567,B03   Sep 25 2002 10:53:29/A02  /E"
ERROR_QUEUE_SIZE = 10


class ScpiError(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class Keithley6485(Picoammeter):
    """Keithley 6485 picoammeter: SCPI, eight ranges from 2 nA to 20 mA, no source."""

    model = "Keithley 6485"
    ranges = scpi.RANGES
    #: On GPIB it ends replies with LF (and EOI).
    terminator = "\n"
    overrange = OVERRANGE_6485

    def __init__(self, address: int = 14, *, seed: int | None = None, line_frequency: float = 50.0) -> None:
        super().__init__(address, seed=seed, line_frequency=line_frequency)
        self.errors: list[int] = []
        self.last_reading: str | None = None
        self.reset()

    def reset(self) -> None:
        """*RST: zero check on, auto range on, zero correction off, NPLC 5 at 50 Hz (6 at 60 Hz)."""
        self.zero_check = True
        self.zero_correct = False
        self.auto_range = True
        self.range_index = len(self.ranges) - 1
        self.upper_limit = len(self.ranges) - 1
        self.lower_limit = 0
        self.nplc = 5.0 if self.line_frequency == 50 else 6.0
        self.elements = ELEMENTS

    def integration_s(self) -> float:
        return self.nplc / self.line_frequency

    # -- messages ---------------------------------------------------------------------------

    def handle(self, message: str) -> str | None:
        self.busy, self.busy_for = PROCESSING_S, message
        answers = []
        for command in message.split(";"):
            command = command.strip()
            if not command:
                continue
            header, _, argument = command.partition(" ")
            try:
                answer = self._dispatch(header, argument.strip())
            except ScpiError as error:
                self._error(error.code)
                continue
            if answer is not None:
                answers.append(answer)
        return ";".join(answers) if answers else None

    def _dispatch(self, header: str, argument: str) -> str | None:
        command = scpi.HEADERS.find(header)
        if command is None:
            raise ScpiError(-113)
        if command.endswith("?") and argument:
            raise ScpiError(-108)
        return self._COMMANDS[command](self, argument)

    def _error(self, code: int) -> None:
        if len(self.errors) < ERROR_QUEUE_SIZE:
            self.errors.append(code)
        else:
            self.errors[-1] = -350

    # -- parameters -------------------------------------------------------------------------

    @staticmethod
    def _boolean(argument: str) -> bool:
        if not argument:
            raise ScpiError(-109)
        value = argument.upper()
        if value in ("ON", "1"):
            return True
        if value in ("OFF", "0"):
            return False
        raise ScpiError(-104)

    @staticmethod
    def _number(argument: str, low: float, high: float, default: float) -> float:
        if not argument:
            raise ScpiError(-109)
        named = {"MIN": low, "MINIMUM": low, "MAX": high, "MAXIMUM": high, "DEF": default, "DEFAULT": default}
        if argument.upper() in named:
            return named[argument.upper()]
        try:
            value = float(argument)
        except ValueError:
            raise ScpiError(-104) from None
        if not (math.isfinite(value) and low <= value <= high):
            raise ScpiError(-222)
        return value

    def _range_for(self, amps: float) -> int:
        """The lowest range that holds `amps`, as CURR:RANG <n> picks it."""
        return next(i for i, full in enumerate(self.ranges) if abs(amps) <= full * 1.0000001)

    @staticmethod
    def _on_off(flag: bool) -> str:
        return "1" if flag else "0"

    # -- commands ---------------------------------------------------------------------------

    def _idn(self, _: str) -> str:
        return IDN_6485

    def _rst(self, _: str) -> None:
        self.reset()

    def _cls(self, _: str) -> None:
        self.errors.clear()

    def _opc(self, _: str) -> str:
        return "1"

    def _set_zero_check(self, argument: str) -> None:
        self.zero_check = self._boolean(argument)

    def _zero_check(self, _: str) -> str:
        return self._on_off(self.zero_check)

    def _set_zero_correct(self, argument: str) -> None:
        self.zero_correct = self._boolean(argument)

    def _zero_correct(self, _: str) -> str:
        return self._on_off(self.zero_correct)

    def _acquire_zero(self, _: str) -> None:
        """SYST:ZCOR:ACQ: the last reading (taken with zero check on) becomes the correction."""
        if not self.zero_check or self._last_amps is None:
            raise ScpiError(-224)
        self.zero_offsets = {index: self._last_amps for index in range(len(self.ranges))}

    def _set_range(self, argument: str) -> None:
        amps = self._number(argument, -0.021, 0.021, self.ranges[-1])
        self.range_index = self._range_for(amps)
        self.auto_range = False

    def _range(self, _: str) -> str:
        return f"{self.ranges[self.range_index]:.6E}"

    def _set_auto(self, argument: str) -> None:
        self.auto_range = self._boolean(argument)

    def _auto(self, _: str) -> str:
        return self._on_off(self.auto_range)

    def _set_upper(self, argument: str) -> None:
        self.upper_limit = self._range_for(self._number(argument, -0.021, 0.021, 0.021))

    def _upper(self, _: str) -> str:
        return f"{self.ranges[self.upper_limit]:.6E}"

    def _set_lower(self, argument: str) -> None:
        self.lower_limit = self._range_for(self._number(argument, -0.021, 0.021, 2e-9))

    def _lower(self, _: str) -> str:
        return f"{self.ranges[self.lower_limit]:.6E}"

    def _set_nplc(self, argument: str) -> None:
        self.nplc = self._number(argument, 0.01, 60.0 if self.line_frequency == 60 else 50.0, self.nplc)

    def _nplc(self, _: str) -> str:
        return f"{self.nplc:.6E}"

    def _set_elements(self, argument: str) -> None:
        if not argument:
            raise ScpiError(-109)
        names = []
        for item in argument.split(","):
            item = item.strip().upper()
            match = next((e for e in ELEMENTS if item in (e, e + "ING", e + "S", e + "US")), None)
            if match is None:
                raise ScpiError(-224)
            names.append(match)
        self.elements = tuple(e for e in ELEMENTS if e in names)

    def _elements(self, _: str) -> str:
        return ",".join(self.elements)

    def _initiate(self, _: str) -> None:
        self.last_reading = self._measure()

    def _fetch(self, _: str) -> str:
        if self.last_reading is None:
            raise ScpiError(-230)
        return self.last_reading

    def _read(self, _: str) -> str:
        self._initiate("")
        return self.last_reading  # type: ignore[return-value]

    def _measure_query(self, _: str) -> str:
        self.auto_range = True
        return self._read("")

    def _next_error(self, _: str) -> str:
        code = self.errors.pop(0) if self.errors else 0
        return f'{code},"{ERRORS.get(code, "No error")}"'

    def _error_count(self, _: str) -> str:
        return str(len(self.errors))

    def _all_errors(self, _: str) -> str:
        answers = [self._next_error("") for _ in range(max(1, len(self.errors)))]
        return ",".join(answers)

    def _reset_time(self, _: str) -> None:
        self.elapsed = 0.0

    def _line_frequency(self, _: str) -> str:
        return f"{self.line_frequency:g}"

    _last_amps: float | None = None

    def _measure(self) -> str:
        """Take one reading and format it with the selected elements."""
        saved_auto = self.auto_range
        low, high = self.lower_limit, self.upper_limit
        self.range_index = min(max(self.range_index, low), high) if self.auto_range else self.range_index
        amps, conversions = self.convert()
        if self.auto_range:
            self.range_index = min(max(self.range_index, low), high)
            if amps is not None and abs(amps) > self.ranges[self.range_index] * self.overrange:
                amps = None
        self.auto_range = saved_auto
        self.busy += conversions * self.integration_s() + PROCESSING_S
        self._last_amps = amps
        status = (
            (STATUS_OVERFLOW if amps is None else 0)
            | (STATUS_ZERO_CHECK if self.zero_check else 0)
            | (STATUS_ZERO_CORRECT if self.zero_correct else 0)
        )
        parts = []
        if "READ" in self.elements:
            parts.append(f"{OVERFLOW if amps is None else amps:+.6E}" + ("A" if "UNIT" in self.elements else ""))
        if "TIME" in self.elements:
            parts.append(f"{self.elapsed % 100_000:+.6E}")
        if "STAT" in self.elements:
            parts.append(f"{status:+.6E}")
        return ",".join(parts)

    _COMMANDS: ClassVar[dict[str, Callable[..., str | None]]] = {}


_CURRENT = scpi.CURRENT
Keithley6485._COMMANDS = {
    "*IDN?": Keithley6485._idn,
    "*RST": Keithley6485._rst,
    "*CLS": Keithley6485._cls,
    "*OPC?": Keithley6485._opc,
    "SYSTem:ZCHeck[:STATe]": Keithley6485._set_zero_check,
    "SYSTem:ZCHeck[:STATe]?": Keithley6485._zero_check,
    "SYSTem:ZCORrect:ACQuire": Keithley6485._acquire_zero,
    "SYSTem:ZCORrect[:STATe]": Keithley6485._set_zero_correct,
    "SYSTem:ZCORrect[:STATe]?": Keithley6485._zero_correct,
    f"{_CURRENT}:RANGe:AUTO:ULIMit": Keithley6485._set_upper,
    f"{_CURRENT}:RANGe:AUTO:ULIMit?": Keithley6485._upper,
    f"{_CURRENT}:RANGe:AUTO:LLIMit": Keithley6485._set_lower,
    f"{_CURRENT}:RANGe:AUTO:LLIMit?": Keithley6485._lower,
    f"{_CURRENT}:RANGe:AUTO": Keithley6485._set_auto,
    f"{_CURRENT}:RANGe:AUTO?": Keithley6485._auto,
    f"{_CURRENT}:RANGe[:UPPer]": Keithley6485._set_range,
    f"{_CURRENT}:RANGe[:UPPer]?": Keithley6485._range,
    f"{_CURRENT}:NPLCycles": Keithley6485._set_nplc,
    f"{_CURRENT}:NPLCycles?": Keithley6485._nplc,
    "RANGe[:UPPer]": Keithley6485._set_range,  # the manual's own short form in its examples
    "RANGe:AUTO": Keithley6485._set_auto,
    "FORMat:ELEMents": Keithley6485._set_elements,
    "FORMat:ELEMents?": Keithley6485._elements,
    "INITiate[:IMMediate]": Keithley6485._initiate,
    "FETCh?": Keithley6485._fetch,
    "READ?": Keithley6485._read,
    "MEASure[:CURRent[:DC]]?": Keithley6485._measure_query,
    "SYSTem:ERRor[:NEXT]?": Keithley6485._next_error,
    "SYSTem:ERRor:COUNt?": Keithley6485._error_count,
    "SYSTem:ERRor:ALL?": Keithley6485._all_errors,
    "SYSTem:TIME:RESet": Keithley6485._reset_time,
    "SYSTem:LFRequency?": Keithley6485._line_frequency,
}


# -- Keithley 487 (DDC) ------------------------------------------------------------------------

class Keithley487(Picoammeter):
    """Keithley 487 picoammeter / voltage source: DDC commands, seven ranges 2 nA to 2 mA."""

    model = "Keithley 487"
    ranges = ddc.RANGES
    #: Its power-on terminator (Y0): CR LF.
    terminator = "\r\n"

    def __init__(self, address: int = 15, *, seed: int | None = None, line_frequency: float = 50.0) -> None:
        super().__init__(address, seed=seed, line_frequency=line_frequency)
        self.options = {letter: 0 for letter in ddc.OPTIONS}
        self.options.update(B=0, G=0, S=1, T=6)  # power-on: readings, prefix, line-cycle integration
        self.auto_range = True
        self.range_index = len(self.ranges) - 1
        self.zero_check = False
        self.error_bits: set[str] = set()
        self.volts = 0.0
        self.volt_range = 0
        self.current_limit = 0
        self.operate = False
        self.interlock_closed = True
        self.in_current_limit = False
        self.pending = ""

    def integration_s(self) -> float:
        return 1 / self.line_frequency if self.options["S"] else 0.003

    def source_volts(self) -> float:
        if not self.operate:
            return 0.0
        limit = ddc.CURRENT_LIMITS[(self.volt_range, self.current_limit)]
        self.in_current_limit = abs(self.volts) / self.sample.resistance > limit
        return math.copysign(limit * self.sample.resistance, self.volts) if self.in_current_limit else self.volts

    def step(self, dt: float) -> None:
        super().step(dt)
        if self.operate and self.volt_range == 1 and not self.interlock_closed:
            self.operate = False  # opening the interlock drops the 500 V output
            self.error_bits.add(ddc.INTERLOCK)

    # -- messages ---------------------------------------------------------------------------

    def handle(self, message: str) -> str | None:
        self.busy, self.busy_for = PROCESSING_S, message
        text = self.pending + message.replace(" ", "").upper()
        executable, x, self.pending = text.rpartition("X")
        if not x:
            self.pending = text
            return None
        try:
            commands = ddc.commands(executable)
        except ValueError:
            self.error_bits.add(ddc.IDDC)
            return None
        try:
            parsed = [(letter, self._option(letter, option)) for letter, option in commands]
        except ValueError:
            self.error_bits.add(ddc.IDDCO)
            return None
        output: str | None = None
        for letter, value in parsed:
            output = self._execute(letter, value) or output
        return output

    def _option(self, letter: str, option: str) -> object:
        if letter == "V":
            fields = option.split(",")
            if not 1 <= len(fields) <= 3 or not fields[0]:
                raise ValueError(option)
            volts = float(fields[0])
            volt_range = int(fields[1]) if len(fields) > 1 and fields[1] else self.volt_range
            limit = int(fields[2]) if len(fields) > 2 and fields[2] else self.current_limit
            if volt_range not in (0, 1) or limit not in (0, 1) or abs(volts) > ddc.VOLT_RANGES[volt_range]:
                raise ValueError(option)
            return volts, volt_range, limit
        value = int(option or "0")
        if value not in ddc.OPTIONS[letter]:
            raise ValueError(option)
        return value

    def _execute(self, letter: str, value: object) -> str | None:
        if letter == "V":
            self.volts, self.volt_range, self.current_limit = value  # type: ignore[misc]
            if self.operate and self.volt_range == 1 and not self.interlock_closed:
                self.operate = False
                self.error_bits.add(ddc.INTERLOCK)
            return None
        self.options[letter] = value  # type: ignore[assignment]
        if letter == "C":
            self.zero_check = value != 0
            if value == 2:
                self._acquire_zero()
        elif letter == "R":
            self.auto_range = value == 0
            if value:
                self.range_index = value - 1  # type: ignore[operator]
        elif letter == "O":
            if value and self.volt_range == 1 and not self.interlock_closed:
                self.error_bits.add(ddc.INTERLOCK)
                self.options["O"] = 0
            self.operate = bool(self.options["O"])
        elif letter == "B":
            return self._reading()
        elif letter == "U":
            return self._status(value)  # type: ignore[arg-type]
        return None

    def _acquire_zero(self) -> None:
        amps, conversions = self.convert()
        self.busy += conversions * self.integration_s()
        self.zero_offsets[self.range_index] = amps or 0.0
        self.zero_correct = True

    def _reading(self) -> str:
        amps, conversions = self.convert()
        self.busy += conversions * self.integration_s() + PROCESSING_S
        if self.options["F"] == 1:  # V/I ohms
            value = OVERFLOW if not amps else self.source_volts() / amps
            function = "OHM"
        else:
            value = OVERFLOW if amps is None else amps
            function = "DCA"
        state = "O" if amps is None else "Z" if self.zero_check else "N"
        number = f"{value:+.4E}"
        return f"{state}{function}{number}" if self.options["G"] == 0 else number

    def _status(self, which: int) -> str:
        if which == 0:
            o = self.options
            return (
                f"487A{o['A']}B{o['B']}C{o['C']}D{o['D']}F{o['F']}G{o['G']}I{o['I']}K{o['K']}"
                f"M{o['M']:03d}N{o['N']:04d}O{int(self.operate)}P{o['P']}"
                f"R{int(self.auto_range)}{self.range_index + 1}S{o['S']}T{o['T']}"
                f"V{self.volt_range}{self.current_limit}Z{o['Z']}"
            )
        if which == 1:
            word = ddc.error_word(self.error_bits)
            self.error_bits.clear()
            return word
        if which == 8:
            return f"VS={self.volts if self.operate else 0.0:+.4E}V"
        self.source_volts()  # refresh the current-limit flag
        return f"487{int(not self.interlock_closed)}{int(self.operate and self.in_current_limit)}"


# -- served directly on TCP (tests, scripts, an instrument on a GPIB-Ethernet bridge) -----------


class Keithley6485Simulator(DirectGpibSimulator):
    """Keithley 6485 picoammeter (SCPI) on a direct TCP link, LF-terminated."""

    kind = "keithley6485"

    def __init__(self, *, seed: int | None = None, speed: float = 1.0, line_frequency: float = 50.0) -> None:
        super().__init__(Keithley6485(seed=seed, line_frequency=line_frequency), seed=seed, speed=speed)

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--line-frequency", type=float, default=50.0, choices=(50.0, 60.0))


class Keithley487Simulator(DirectGpibSimulator):
    """Keithley 487 picoammeter / voltage source (DDC) on a direct TCP link, LF-terminated."""

    kind = "keithley487"

    def __init__(
        self, *, seed: int | None = None, speed: float = 1.0, line_frequency: float = 50.0, interlock: str = "closed"
    ) -> None:
        instrument = Keithley487(seed=seed, line_frequency=line_frequency)
        instrument.interlock_closed = interlock == "closed"
        super().__init__(instrument, seed=seed, speed=speed)

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--line-frequency", type=float, default=50.0, choices=(50.0, 60.0))
        parser.add_argument("--interlock", choices=("closed", "open"), default="closed")


__all__ = ["Keithley487", "Keithley487Simulator", "Keithley6485", "Keithley6485Simulator", "Sample"]
