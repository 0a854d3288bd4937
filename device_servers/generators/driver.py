"""Function generator drivers on one vocabulary: waveform, frequency, amplitude (Vpp), offset,
output load, output on/off where the instrument has it, burst count and state, and an arbitrary
waveform uploaded as points from -1 to +1.

Pure Python over a `Link`, one class per model; each setting is written, read back and followed
by the instrument's error query, so a value it refused comes back as an `InstrumentError` in its
own words (`-222,"Data out of range"`), and nothing else is changed:

    generator = Hp33120aDriver(link_for_url("gpib://lab/gpib/1/10"))
    generator.set_frequency(1, 2500.0)         # :FREQ 2500;:FREQ?;:SYST:ERR? -> 2500.0
    generator.upload(1, numpy.sin(...))        # DATA:DAC VOLATILE, #42000..., then checked
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from ..core.errors import InstrumentError, RejectedValue, shown
from ..core.framing import block_data, definite_length_block
from ..core.limits import Limits
from ..core.scpi import Quantity, TextInstrument, flag, integer, number, scpi_error
from . import afg31000_protocol as afg
from . import hp33120a_protocol as hp

#: The vocabulary's waveforms, in the order of the device's enumeration.
WAVEFORMS = ("SINE", "SQUARE", "TRIANGLE", "RAMP", "NOISE", "DC", "ARBITRARY")


@dataclass(frozen=True)
class ChannelStatus:
    waveform: str  # one of WAVEFORMS
    frequency: float  # Hz
    amplitude: float  # Vpp
    offset: float  # V
    load: float  # ohm; 9.9e37 (SCPI's infinity): high impedance
    burst_count: int
    burst_on: bool
    output: bool | None  # None: the instrument has no output switch


class FunctionGeneratorDriver(TextInstrument):
    """What every generator offers; a model declares its quantities and its words for the waveforms."""

    #: The channels, numbered from 1.
    channel_numbers: ClassVar[tuple[int, ...]] = (1,)
    #: Vocabulary waveform -> the instrument's word.
    shapes: ClassVar[dict[str, str]] = {}
    #: The arbitrary waveform's length.
    points: ClassVar[Limits] = Limits(2, 16_000, "points")

    shape: ClassVar[Quantity]
    frequency: ClassVar[Quantity]
    amplitude: ClassVar[Quantity]
    offset: ClassVar[Quantity]
    load: ClassVar[Quantity]
    burst_count: ClassVar[Quantity]
    burst_state: ClassVar[Quantity]
    output: ClassVar[Quantity | None] = None

    def instrument_error(self, error: tuple[int, str]) -> str | None:
        code, words = error
        return f"error {code}, {words!r}" if code else None

    def read_channel(self, channel: int) -> ChannelStatus:
        """Every setting of one channel in one round trip."""
        quantities = [self.shape, self.frequency, self.amplitude, self.offset, self.load, self.burst_count,
                      self.burst_state] + ([self.output] if self.output else [])
        shape, frequency, amplitude, offset, load, count, burst, *output = self.read(
            *(self._on(quantity, channel) for quantity in quantities)
        )
        return ChannelStatus(self._waveform(shape), frequency, amplitude, offset, load, int(count),
                             burst, output[0] if output else None)

    def set_waveform(self, channel: int, waveform: str) -> str:
        if waveform not in self.shapes:
            raise RejectedValue(f"the {self.model} has no {waveform} waveform: it has {', '.join(self.shapes)}")
        word = self.shapes[waveform].format(channel=channel)  # an edit memory may be the channel's
        return self._waveform(self.write(self._on(self.shape, channel), word))

    def set_frequency(self, channel: int, hertz: float) -> float:
        return self.write(self._on(self.frequency, channel), hertz)

    def set_amplitude(self, channel: int, volts_peak_to_peak: float) -> float:
        return self.write(self._on(self.amplitude, channel), volts_peak_to_peak)

    def set_offset(self, channel: int, volts: float) -> float:
        return self.write(self._on(self.offset, channel), volts)

    def set_load(self, channel: int, ohms: float) -> float:
        return self.write(self._on(self.load, channel), self._load_setting(ohms))

    def set_burst_count(self, channel: int, cycles: int) -> int:
        return int(self.write(self._on(self.burst_count, channel), cycles))

    def set_burst_state(self, channel: int, on: bool) -> bool:
        return self.write(self._on(self.burst_state, channel), bool(on))

    def set_output(self, channel: int, on: bool) -> bool:
        if self.output is None:
            raise RejectedValue(f"the {self.model} has no output switch: its output is always on")
        return self.write(self._on(self.output, channel), bool(on))

    def upload(self, channel: int, points: Sequence[float]) -> list[float]:
        """Store `points` (-1 to +1) as the channel's arbitrary waveform and play it; returns the
        points as the instrument holds them."""
        raise NotImplementedError

    # -- internals ------------------------------------------------------------------------------

    @staticmethod
    def _on(quantity: Quantity, channel: int) -> Any:
        return quantity(channel) if quantity.channel_names() else quantity()

    def _waveform(self, word: str) -> str:
        by_word = {instrument: ours for ours, instrument in self.shapes.items()}
        return by_word.get(word.upper(), word.upper())

    def _checked_points(self, points: Sequence[float]) -> list[float]:
        values = [float(point) for point in points]
        self.points.check("arbitrary waveform length", len(values))
        if not all(math.isfinite(v) and -1.0 <= v <= 1.0 for v in values):
            raise RejectedValue("arbitrary waveform points must be numbers from -1 to +1")
        return values

    def _load_setting(self, ohms: float) -> Any:
        return ohms


class Hp33120aDriver(FunctionGeneratorDriver):
    """HP 33120A: one channel, no output switch, 50 ohm or high-impedance load, GPIB."""

    model = "HP 33120A"
    shapes: ClassVar[dict[str, str]] = hp.SHAPES
    points: ClassVar[Limits] = hp.POINTS
    error_query = Quantity(":SYST:ERR?", parse=scpi_error)

    identity = Quantity("*IDN?", parse=str.strip)
    shape = Quantity(":FUNC:SHAP?", ":FUNC:SHAP {}", limits=tuple(hp.SHAPES.values()))
    frequency = Quantity(":FREQ?", ":FREQ {:.10g}", limits=hp.FREQUENCY)
    amplitude = Quantity(":VOLT?", ":VOLT {:.6g}", limits=hp.AMPLITUDE)
    offset = Quantity(":VOLT:OFFS?", ":VOLT:OFFS {:.6g}", limits=hp.OFFSET)
    load = Quantity(":OUTP:LOAD?", {50.0: ":OUTP:LOAD 50", hp.HIGH_Z: ":OUTP:LOAD INF"})
    burst_count = Quantity(":BM:NCYC?", ":BM:NCYC {:.0f}", limits=hp.BURST_COUNT)
    burst_state = Quantity(":BM:STAT?", ":BM:STAT {:d}", flag)
    arbitrary_points = Quantity(":DATA:ATTR:POIN?", parse=integer)
    arbitrary_average = Quantity(":DATA:ATTR:AVER?", parse=number)
    arbitrary_peak_to_peak = Quantity(":DATA:ATTR:PTP?", parse=number)

    def _load_setting(self, ohms: float) -> float:
        if ohms == math.inf or ohms >= hp.HIGH_Z:
            return hp.HIGH_Z
        if ohms == 50:
            return 50.0
        raise RejectedValue(f"the HP 33120A drives a 50 ohm or a high-impedance load (9.9e37), not {ohms:g} ohm")

    def upload(self, channel: int, points: Sequence[float]) -> list[float]:
        """DATA:DAC VOLATILE with a binary block, then FUNC:USER VOLATILE and FUNC:SHAP USER; the
        instrument's own figures of what it holds (points, mean, peak-to-peak) must be those sent."""
        dac = [round(value * hp.DAC_FULL_SCALE) for value in self._checked_points(points)]
        request = b":DATA:DAC VOLATILE, " + definite_length_block(hp.dac_block_data(dac)) + b";:SYST:ERR?"
        with self.link.lock:
            answer = self.link.transaction(request + self.link.write_terminator)
            if words := self.instrument_error(self.error_query().value(answer.decode("ascii", "replace"), "DATA:DAC")):
                raise InstrumentError(f"the {self.model} refused the arbitrary waveform of {len(dac)} points: {words}")
            self.send(":FUNC:USER VOLATILE", ":FUNC:SHAP USER")
            held, average, peak_to_peak = self.read(self.arbitrary_points, self.arbitrary_average,
                                                    self.arbitrary_peak_to_peak)
        sent = [point / hp.DAC_FULL_SCALE for point in dac]
        if held != len(sent) or not (math.isclose(average, sum(sent) / len(sent), abs_tol=1e-9)
                                     and math.isclose(peak_to_peak, max(sent) - min(sent), abs_tol=1e-9)):
            raise InstrumentError(
                f"the {self.model} holds {held} points (mean {average:g}, peak-to-peak {peak_to_peak:g}), "
                f"not the {len(sent)} sent; {shown(repr(sent[:4]))}..."
            )
        return sent


class Afg31000Driver(FunctionGeneratorDriver):
    """Tektronix AFG31000 (AFG31022): two channels, each with an output switch, on the LAN."""

    model = "AFG31000"
    channel_numbers: ClassVar[tuple[int, ...]] = afg.CHANNELS
    channels: ClassVar[dict[str, tuple[int, ...]]] = {"channel": afg.CHANNELS}
    shapes: ClassVar[dict[str, str]] = afg.SHAPES
    points: ClassVar[Limits] = afg.POINTS
    error_query = Quantity(":SYST:ERR?", parse=scpi_error)

    identity = Quantity("*IDN?", parse=str.strip)
    shape = Quantity(":SOUR{channel}:FUNC:SHAP?", ":SOUR{channel}:FUNC:SHAP {}",
                     limits=("SIN", "SQU", "RAMP", "PRN", "DC", "EMEM1", "EMEM2"))
    frequency = Quantity(":SOUR{channel}:FREQ?", ":SOUR{channel}:FREQ {:.10g}", limits=afg.FREQUENCY)
    amplitude = Quantity(":SOUR{channel}:VOLT?", ":SOUR{channel}:VOLT {:.6g}", limits=afg.AMPLITUDE)
    offset = Quantity(":SOUR{channel}:VOLT:OFFS?", ":SOUR{channel}:VOLT:OFFS {:.6g}", limits=afg.OFFSET)
    load = Quantity(":OUTP{channel}:IMP?", ":OUTP{channel}:IMP {}")
    burst_count = Quantity(":SOUR{channel}:BURS:NCYC?", ":SOUR{channel}:BURS:NCYC {:.0f}", limits=afg.BURST_COUNT)
    burst_state = Quantity(":SOUR{channel}:BURS:STAT?", ":SOUR{channel}:BURS:STAT {:d}", flag)
    output = Quantity(":OUTP{channel}:STAT?", ":OUTP{channel}:STAT {:d}", flag)

    def _waveform(self, word: str) -> str:
        return "ARBITRARY" if word.upper().startswith("EMEM") else super()._waveform(word)

    def _load_setting(self, ohms: float) -> str:
        if ohms >= afg.HIGH_Z:
            return "INF"
        return f"{afg.IMPEDANCE.check('load', ohms):g}"

    def set_load(self, channel: int, ohms: float) -> float:
        """A word (INF) or a number in, a number out: written, checked with the error queue, read."""
        request = self._on(self.load, channel)
        with self.link.lock:
            self.send(request.command(self._load_setting(ohms)))
            (load,) = self.read(request)
        return load

    def upload(self, channel: int, points: Sequence[float]) -> list[float]:
        """DATA:DATA EMEMory<n> with a binary block, then the channel plays it; the block the
        instrument answers to DATA:DATA? must be the one sent."""
        words = [round((value + 1) / 2 * afg.FULL_SCALE) for value in self._checked_points(points)]
        data = afg.point_block_data(words)
        with self.link.lock:
            answer = self.link.transaction(
                b":DATA:DATA EMEM%d," % channel + definite_length_block(data) + b";:SYST:ERR?" + self.link.write_terminator
            )
            if words_of_error := self.instrument_error(self.error_query().value(answer.decode("latin-1"), "DATA:DATA")):
                raise InstrumentError(f"the {self.model} refused the arbitrary waveform of {len(words)} points: "
                                      f"{words_of_error}")
            self.write(self._on(self.shape, channel), f"EMEM{channel}")
            held = self.link.transaction(b":DATA:DATA? EMEM%d" % channel + self.link.write_terminator)
        if block_data(held) != data:
            raise InstrumentError(f"the {self.model} holds another waveform in EMEMory{channel} than the one sent")
        return [word / afg.FULL_SCALE * 2 - 1 for word in words]
