"""HP 33120A function generator, simulated: its SCPI over GPIB (device_servers/generators/hp33120a_protocol.py).

A `GpibInstrument` for the Prologix simulator's bus (`Hp33120a`), and `python -m simulators
hp33120a` serves one on TCP as a GPIB-Ethernet bridge passes it through.

What it keeps: the function (SIN, SQU, TRI, RAMP, NOIS, DC, USER), frequency, amplitude (Vpp),
offset, output load (50 ohm or high impedance, which doubles the allowed amplitude and offset),
burst count and state, and the volatile arbitrary waveform (DAC points). A setting out of the
range of the present function and load is refused: the setting stays and `-222,"Data out of
range"` goes to the error queue (the real one clips to the limit and reports the same error); a
load that no longer allows the amplitude or offset cuts them to fit, with `-221,"Settings conflict"`.
A header it does not know is `-113,"Undefined header"`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from device_servers.core.errors import LinkError
from device_servers.core.framing import BlockLines, block_data
from device_servers.generators.hp33120a_protocol import (
    DAC_FULL_SCALE,
    ERRORS,
    FUNCTION_FREQUENCY,
    HEADERS,
    HIGH_Z,
    POINTS,
    dac_points,
    split_commands,
)

from .gpib import DirectGpibSimulator, GpibInstrument

IDN = "HEWLETT-PACKARD,33120A,0,7.0-5.0-1.0"
ERROR_QUEUE_SIZE = 20
SHAPES = {"SIN": "SIN", "SINUSOID": "SIN", "SQU": "SQU", "SQUARE": "SQU", "TRI": "TRI", "TRIANGLE": "TRI",
          "RAMP": "RAMP", "NOIS": "NOIS", "NOISE": "NOIS", "DC": "DC", "USER": "USER"}


class CommandError(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def _number(value: float) -> str:
    return f"{value:+.12E}"


def _applying(shape: str) -> Callable[[Hp33120a, str], None]:
    """APPLy:<function> [<frequency> [,<amplitude> [,<offset>]]]: all at once, DEF or left out keeps."""

    def apply(self: Hp33120a, argument: str) -> None:
        values = [part.strip() for part in argument.split(",")] if argument else []
        values += [""] * (3 - len(values))
        frequency = self._value(values[0], self.frequency)
        amplitude = self._value(values[1], self.amplitude)
        offset = self._value(values[2], self.offset)
        self._check(shape, frequency, amplitude, offset)
        self.shape, self.frequency, self.amplitude, self.offset = shape, frequency, amplitude, offset

    return apply


class Hp33120a(GpibInstrument):
    """HP 33120A 15 MHz function / arbitrary waveform generator."""

    model = "HP 33120A"
    terminator = "\n"

    def __init__(self, address: int = 10, *, seed: int | None = None) -> None:
        super().__init__(address, seed=seed)
        self.errors: list[int] = []
        self.volatile: list[int] | None = None
        self.reset()

    def reset(self) -> None:
        """*RST: 1 kHz sine, 100 mVpp, no offset, 50 ohm, burst off with 1 cycle."""
        self.shape, self.frequency, self.amplitude, self.offset = "SIN", 1000.0, 0.1, 0.0
        self.load, self.burst_count, self.burst_on, self.user = 50.0, 1, False, "EXP_RISE"

    # -- messages -------------------------------------------------------------------------------

    def handle(self, message: str) -> str | None:
        answers = []
        for command in split_commands(message.encode("latin-1")):
            header, _, argument = command.partition(b" ")
            try:
                answer = self._dispatch(header.decode("latin-1"), argument.lstrip())
            except CommandError as error:
                self._error(error.code)
                continue
            if answer is not None:
                answers.append(answer)
        return ";".join(answers) if answers else None

    def reply_time(self, message: str) -> float:
        return 0.002

    def _dispatch(self, header: str, argument: bytes) -> str | None:
        command = HEADERS.find(header)
        if command is None:
            raise CommandError(-113)
        if command.endswith("?") and argument and not command.startswith("DATA:ATTR"):
            raise CommandError(-108)
        if command.startswith("DATA"):
            return self._DATA[command](self, argument)
        return self._COMMANDS[command](self, argument.decode("latin-1"))

    def _error(self, code: int) -> None:
        if len(self.errors) < ERROR_QUEUE_SIZE:
            self.errors.append(code)
        else:
            self.errors[-1] = -350

    # -- limits ---------------------------------------------------------------------------------

    def _volts(self) -> float:
        """The largest |offset| + amplitude/2 the load allows (5 V into 50 ohm, 10 V open)."""
        return 5.0 if self.load == 50.0 else 10.0

    def _check(self, shape: str, frequency: float, amplitude: float, offset: float) -> None:
        top = FUNCTION_FREQUENCY.get(shape)
        volts = self._volts()
        if top is not None and not 100e-6 <= frequency <= top:
            raise CommandError(-222)
        if shape != "DC" and not volts / 100 <= amplitude <= 2 * volts:
            raise CommandError(-222)
        if abs(offset) + (0 if shape == "DC" else amplitude / 2) > volts:
            raise CommandError(-222)

    @staticmethod
    def _value(argument: str, default: float | None = None) -> float:
        if not argument or argument.upper() in ("DEF", "DEFAULT"):
            if default is None:
                raise CommandError(-109)
            return default
        try:
            return float(argument)
        except ValueError:
            raise CommandError(-224) from None

    # -- commands -------------------------------------------------------------------------------

    def _applied(self, _: str) -> str:
        return f'"{self.shape} {_number(self.frequency)},{_number(self.amplitude)},{_number(self.offset)}"'

    def _set_shape(self, argument: str) -> None:
        shape = SHAPES.get(argument.upper())
        if shape is None:
            raise CommandError(-224)
        if shape == "USER" and self.user == "VOLATILE" and self.volatile is None:
            raise CommandError(-221)
        self._check(shape, self.frequency, self.amplitude, self.offset)
        self.shape = shape

    def _set_user(self, argument: str) -> None:
        name = argument.upper()
        if name not in ("VOLATILE", "EXP_RISE") or (name == "VOLATILE" and self.volatile is None):
            raise CommandError(-224)
        self.user = name

    def _set_frequency(self, argument: str) -> None:
        frequency = self._value(argument)
        self._check(self.shape, frequency, self.amplitude, self.offset)
        self.frequency = frequency

    def _set_amplitude(self, argument: str) -> None:
        amplitude = self._value(argument)
        self._check(self.shape, self.frequency, amplitude, self.offset)
        self.amplitude = amplitude

    def _set_offset(self, argument: str) -> None:
        offset = self._value(argument)
        self._check(self.shape, self.frequency, self.amplitude, offset)
        self.offset = offset

    def _set_load(self, argument: str) -> None:
        """Into 50 ohm an amplitude and offset set for high impedance may no longer fit: they are
        cut to fit, with -221 in the error queue."""
        word = argument.upper()
        if word in ("INF", "INFINITY", "MAX"):
            self.load = HIGH_Z
        elif word in ("50", "MIN", "DEF"):
            self.load = 50.0
        else:
            raise CommandError(-224)
        volts = self._volts()
        amplitude = min(self.amplitude, 2 * volts)
        offset = max(-volts + amplitude / 2, min(volts - amplitude / 2, self.offset))
        if (amplitude, offset) != (self.amplitude, self.offset):
            self.amplitude, self.offset = amplitude, offset
            raise CommandError(-221)

    def _set_burst_count(self, argument: str) -> None:
        count = self._value(argument)
        if not (1 <= count <= 50_000 and count == int(count)):
            raise CommandError(-222)
        self.burst_count = int(count)

    def _set_burst_state(self, argument: str) -> None:
        word = argument.upper()
        if word not in ("ON", "OFF", "1", "0"):
            raise CommandError(-224)
        self.burst_on = word in ("ON", "1")

    def _next_error(self, _: str) -> str:
        code = self.errors.pop(0) if self.errors else 0
        return f'{code:+d},"{ERRORS[code]}"' if code else '+0,"No error"'

    _COMMANDS: ClassVar[dict[str, Callable[..., str | None]]] = {
        "*IDN?": lambda self, _: IDN,
        "*RST": lambda self, _: self.reset(),
        "*CLS": lambda self, _: self.errors.clear(),
        **{f"APPLy:{name}": _applying(shape) for name, shape in (
            ("SINusoid", "SIN"), ("SQUare", "SQU"), ("TRIangle", "TRI"), ("RAMP", "RAMP"), ("NOISe", "NOIS"),
            ("DC", "DC"), ("USER", "USER"))},
        "APPLy?": _applied,
        "FUNCtion:SHAPe": _set_shape,
        "FUNCtion:SHAPe?": lambda self, _: self.shape,
        "FUNCtion:USER": _set_user,
        "FUNCtion:USER?": lambda self, _: self.user,
        "FREQuency": _set_frequency,
        "FREQuency?": lambda self, _: _number(self.frequency),
        "VOLTage": _set_amplitude,
        "VOLTage?": lambda self, _: _number(self.amplitude),
        "VOLTage:OFFSet": _set_offset,
        "VOLTage:OFFSet?": lambda self, _: _number(self.offset),
        "OUTPut:LOAD": _set_load,
        "OUTPut:LOAD?": lambda self, _: _number(self.load),
        "BM:NCYCles": _set_burst_count,
        "BM:NCYCles?": lambda self, _: _number(self.burst_count),
        "BM:STATe": _set_burst_state,
        "BM:STATe?": lambda self, _: str(int(self.burst_on)),
        "SYSTem:ERRor?": _next_error,
    }

    # -- the arbitrary waveform -----------------------------------------------------------------

    def _store(self, points: list[int]) -> None:
        if not POINTS.low <= len(points) <= POINTS.high or any(abs(p) > DAC_FULL_SCALE for p in points):
            raise CommandError(-222)
        self.volatile = points

    def _dac(self, argument: bytes) -> None:
        name, comma, values = argument.partition(b",")
        if name.strip().upper() != b"VOLATILE" or not comma:
            raise CommandError(-224)
        values = values.lstrip()
        try:
            points = dac_points(block_data(values)) if values.startswith(b"#") else [int(v) for v in values.split(b",")]
        except (LinkError, ValueError):
            raise CommandError(-224) from None
        self._store(points)

    def _data(self, argument: bytes) -> None:
        name, comma, values = argument.partition(b",")
        if name.strip().upper() != b"VOLATILE" or not comma:
            raise CommandError(-224)
        try:
            floats = [float(v) for v in values.split(b",")]
        except ValueError:
            raise CommandError(-224) from None
        if any(abs(v) > 1.0 for v in floats):
            raise CommandError(-222)
        self._store([round(v * DAC_FULL_SCALE) for v in floats])

    def _normalised(self) -> list[float]:
        if self.volatile is None:
            raise CommandError(-221)
        return [point / DAC_FULL_SCALE for point in self.volatile]

    _DATA: ClassVar[dict[str, Callable[..., str | None]]] = {
        "DATA:DAC": _dac,
        "DATA": _data,
        "DATA:ATTRibute:POINts?": lambda self, _: f"{len(self._normalised()):+d}",
        "DATA:ATTRibute:AVERage?": lambda self, _: _number(sum(p := self._normalised()) / len(p)),
        "DATA:ATTRibute:PTPeak?": lambda self, _: _number(max(p := self._normalised()) - min(p)),
    }


class Hp33120aSimulator(DirectGpibSimulator):
    """HP 33120A function generator on its own TCP port (as behind a GPIB-Ethernet bridge)."""

    kind = "hp33120a"
    default_port = 15120
    encoding = "latin-1"

    def __init__(self, *, address: int = 10, seed: int | None = None, speed: float = 1.0) -> None:
        super().__init__(Hp33120a(address, seed=seed), seed=seed, speed=speed)
        self.framing = BlockLines(b"\n")  # a DATA:DAC block may hold LF bytes
