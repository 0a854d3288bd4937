"""The epz protocol of the NanoUP / Rasp-dsPIC AD/DA board (force spectroscopy), shared by the
driver and the simulator.

Everything goes through a ZeroMQ broker: producers publish to its port 6661, subscribers listen
on 6669 and filter by prefix. A message is one ASCII string of fields joined by `:`,
`DEV:TAG:...`:

    NANOUP:CMD:SET_PGAIN:0.3          set a parameter (by name; no reply)
    NANOUP:REQPAR:GET_PGAIN           ask for it
    NANOUP:SNDPAR:Q:0.3               the board's reply, tagged with the parameter's letter:
                                      the value that holds (a value out of range is not applied)
    NANOUP:DATA:t:adc:dac:save:ovl    one sample; t in 20 us ticks, adc (deflection) and dac
                                      (piezo) in volts, save and overload 0 or 1

For rates above the text stream's 10 kS/s the board also sends binary blocks, one multipart
message per block: the topic `NANOUP:BLOCK:`, a header (`BLOCK_HEADER`: counter, first sample
time, sample period, channels, sample type, samples per channel, save and overload flags) and the
samples, channel after channel. Files are fetched from a ROUTER socket on port 6000: the client sends `fetch` and
receives 250 kB chunks, an empty chunk ends the transfer.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np

DEVICE = "NANOUP"
#: The broker's ports as the epz conf file names them, and the file server's.
PUBPORT = 6661
SUBPORT = 6669
FILEPORT = 6000
FETCH = b"fetch"
CHUNK_BYTES = 250_000

CMD, REQPAR, SNDPAR, DATA, BLOCK = "CMD", "REQPAR", "SNDPAR", "DATA", "BLOCK"
#: The DATA frame's time unit.
TICK_S = 20e-6
#: The fastest rate the text DATA stream carries; faster streams go as binary blocks only.
TEXT_PERIOD_US = 100

#: The block stream's channels, in the order of the samples.
CHANNELS = ("deflection", "dac", "height", "sum")
#: counter, first sample time (s of board time), period (s), channels, sample type, samples per
#: channel, flags (SAVE_FLAG, OVERLOAD_FLAG).
BLOCK_HEADER = struct.Struct("<QddHHIH")
SAVE_FLAG, OVERLOAD_FLAG = 1, 2
SAMPLE_TYPES = {1: np.dtype("<f4")}
FLOAT32 = 1


@dataclass(frozen=True)
class Setting:
    """A parameter set on CMD as `SET_<name>` (or `name` when it has no SET_ prefix) and read
    back on REQPAR as `GET_<name>`; the board answers on SNDPAR with `letter`. `ranges` bounds
    each value; `integer` ones are whole numbers."""

    name: str
    letter: str
    ranges: tuple[tuple[float, float], ...]
    integer: bool = False
    prefix: str = "SET_"

    def whole(self, index: int) -> bool:
        """Whether value `index` is a whole number (flags always are)."""
        return self.integer or self.ranges[index] is FLAG

    @property
    def command(self) -> str:
        return f"{self.prefix}{self.name}"

    @property
    def request(self) -> str:
        return f"GET_{self.name}"


def _setting(name: str, letter: str, *ranges: tuple[float, float], integer: bool = False,
             prefix: str = "SET_") -> Setting:
    return Setting(name, letter, ranges, integer, prefix)


FLAG = (0, 1)
VOLTS_DAC = (-5.0, 5.0)
VOLTS_ADC = (-10.0, 10.0)

#: What the board can be set to, by name (the RPi server maps each to its dsPIC letter).
SETTINGS: dict[str, Setting] = {
    setting.name: setting
    for setting in (
        _setting("DACSTEP", "D", (1e-6, 1.0)),  # V the ramp moves per step
        _setting("NUMT6TRIG", "T", (1, 65535), integer=True),  # 20 us ticks per ramp step
        _setting("TIMETRIG", "M", (0, 1e9), FLAG, integer=True),  # us since the ramp started, sign
        _setting("DAC_SOFT", "B", VOLTS_DAC),  # ramp the piezo to V
        _setting("DAC_HARD", "U", VOLTS_DAC),  # jump the piezo to V
        _setting("TRIGGERS", "N", FLAG, FLAG, FLAG, integer=True),  # adc, dac, time in use
        _setting("ZTRIG", "L", VOLTS_DAC, FLAG),  # piezo stop trigger V, sign (0 >, 1 <)
        _setting("FTRIG", "K", VOLTS_ADC, FLAG),  # deflection stop trigger V, sign (0 >, 1 <)
        _setting("TIM8PER", "8", (1, 1_000_000), integer=True),  # sample period, us
        _setting("SETPOINT", "P", (-1.0, 1.0)),  # feedback set-point, deflection V
        _setting("PGAIN", "Q", (0.0, 1.0)),
        _setting("IGAIN", "R", (0.0, 1.0)),
        _setting("DGAIN", "S", (0.0, 1.0)),
        _setting("MODSAFE", "O", (0, 2), FLAG, integer=True, prefix="START_"),  # 2,0 feedback; 0,1 rest
        _setting("DACMODE", "F", FLAG, integer=True),  # 0 unipolar, 1 bipolar
        _setting("RAMPSIGN", "C", FLAG, integer=True),  # 0 towards the surface, 1 away
        _setting("SAVE", "W", FLAG, integer=True),  # tangolab's: the save flag of the data stream
    )
}

#: What the board tells about itself (read-only), by request name, with the letter of the reply.
FACTS: dict[str, str] = {
    "GET_DEVICE_TYPE": "a",
    "GET_EXT_ADC_RANGE": "b",
    "GET_EXT_ADC_VINMIN": "c",
    "GET_EXT_ADC_VINMAX": "d",
    "GET_INT_ADC_RESOLUTION": "e",
    "IS_ADCBUF_PRESENT": "f",
    "GET_ADCBUF_VINMIN": "g",
    "GET_ADCBUF_VINMAX": "h",
    "GET_ADCBUF_VOUTMIN": "i",
    "GET_ADCBUF_VOUTMAX": "j",
    "GET_DAC_VREF": "k",
    "GET_DAC_POLARITY": "l",
    "IS_RAMPING": "m",  # tangolab's: 1 while a soft DAC ramp runs (ended: target or trigger)
}

BY_COMMAND = {setting.command: setting for setting in SETTINGS.values()}
BY_REQUEST = {setting.request: setting for setting in SETTINGS.values()}
REPLY_LETTERS = {setting.letter for setting in SETTINGS.values()} | set(FACTS.values())

#: Every message driver and simulator use: name -> id (see `message_id`).
MESSAGES: dict[str, Hashable] = {
    **{f"CMD {s.command}": (CMD, s.command) for s in SETTINGS.values()},
    **{f"REQPAR {s.request}": (REQPAR, s.request) for s in SETTINGS.values()},
    **{f"REQPAR {name}": (REQPAR, name) for name in FACTS},
    **{f"SNDPAR {letter}": (SNDPAR, letter) for letter in sorted(REPLY_LETTERS)},
    "DATA": (DATA,),
    "BLOCK": (BLOCK,),
    "fetch": ("fetch",),
}


class ProtocolError(ValueError):
    """A message that is no message of this protocol, or a value out of its range."""


def message_id(frame: bytes) -> Hashable | None:
    """The id of one message (the first frame of a multipart one), None if it is none."""
    if frame == FETCH:
        return ("fetch",)
    fields = frame.decode("ascii").split(":")
    if len(fields) < 3:
        return None
    tag, first = fields[1], fields[2]
    if tag == CMD and first in BY_COMMAND:
        return (CMD, first)
    if tag == REQPAR and (first in BY_REQUEST or first in FACTS):
        return (REQPAR, first)
    if tag == SNDPAR and first in REPLY_LETTERS:
        return (SNDPAR, first)
    if tag in (DATA, BLOCK):
        return (tag,)
    return None


# -- encoding ----------------------------------------------------------------------------------------


def topic(tag: str, device: str = DEVICE) -> str:
    """The prefix a subscriber filters on: `NANOUP:SNDPAR:`."""
    return f"{device}:{tag}:"


def number(value: float, integer: bool = False) -> str:
    """A value as the board writes it: whole numbers without a point, others shortest (0.3, 1e-05)."""
    return str(int(value)) if integer else repr(float(value))


def set_command(name: str, values: Sequence[float], device: str = DEVICE) -> str:
    """`NANOUP:CMD:SET_PGAIN:0.3`, after checking the values against the setting's ranges."""
    setting = SETTINGS[name]
    check(setting, values)
    text = ":".join(number(value, setting.whole(index)) for index, value in enumerate(values))
    return f"{device}:{CMD}:{setting.command}:{text}"


def get_request(name: str, device: str = DEVICE) -> str:
    """`NANOUP:REQPAR:GET_PGAIN` for a setting, `NANOUP:REQPAR:GET_DAC_VREF` for a fact."""
    request = name if name in FACTS else SETTINGS[name].request
    return f"{device}:{REQPAR}:{request}"


def reply(letter: str, values: Sequence[object], device: str = DEVICE) -> str:
    """`NANOUP:SNDPAR:Q:0.3`."""
    return ":".join([device, SNDPAR, letter, *map(str, values)])


def parse_reply(text: str, device: str = DEVICE) -> tuple[str, list[str]]:
    """(letter, values) of an SNDPAR reply."""
    head = topic(SNDPAR, device)
    if not text.startswith(head):
        raise ProtocolError(f"not an SNDPAR reply of {device}: {text!r}")
    letter, *values = text[len(head):].split(":")
    return letter, values


def check(setting: Setting, values: Sequence[float]) -> None:
    """Raise `ProtocolError`, saying what is allowed, unless `values` fit the setting."""
    if len(values) != len(setting.ranges):
        raise ProtocolError(f"{setting.command} takes {len(setting.ranges)} value(s), not {len(values)}")
    for index, (value, (low, high)) in enumerate(zip(values, setting.ranges, strict=True)):
        if not (math.isfinite(value) and low <= value <= high) or (setting.whole(index) and value != int(value)):
            kind = "a whole number" if setting.whole(index) else "a number"
            raise ProtocolError(f"{setting.command} takes {kind} from {low:g} to {high:g}, not {value!r}")


def data_frame(ticks: int, adc: float, dac: float, save: bool, overload: bool, device: str = DEVICE) -> str:
    """`NANOUP:DATA:t:adc:dac:save:ovl`."""
    return f"{device}:{DATA}:{ticks}:{adc:.6f}:{dac:.6f}:{int(save)}:{int(overload)}"


def parse_data(text: str, device: str = DEVICE) -> tuple[int, float, float, bool, bool]:
    """(ticks, adc, dac, save, overload) of a DATA frame."""
    head = topic(DATA, device)
    fields = text[len(head):].split(":") if text.startswith(head) else []
    if len(fields) != 5:
        raise ProtocolError(f"not a DATA frame of {device}: {text!r}")
    ticks, adc, dac, save, overload = fields
    return int(float(ticks)), float(adc), float(dac), save == "1", overload == "1"


@dataclass(frozen=True)
class Block:
    """One block of the binary stream: `samples` is channels x n."""

    counter: int
    first_time: float
    period: float
    samples: np.ndarray
    save: bool = False
    overload: bool = False


def block_message(block: Block, device: str = DEVICE) -> list[bytes]:
    """The multipart message of one block: topic, header, samples."""
    samples = np.ascontiguousarray(block.samples, dtype=SAMPLE_TYPES[FLOAT32])
    channels, count = samples.shape
    flags = SAVE_FLAG * block.save | OVERLOAD_FLAG * block.overload
    header = BLOCK_HEADER.pack(block.counter, block.first_time, block.period, channels, FLOAT32, count, flags)
    return [topic(BLOCK, device).encode("ascii"), header, samples.tobytes()]


def parse_block(parts: Sequence[bytes], device: str = DEVICE) -> Block:
    """The block of a multipart BLOCK message (checked: sizes agree, known sample type)."""
    if len(parts) != 3 or parts[0] != topic(BLOCK, device).encode("ascii") or len(parts[1]) != BLOCK_HEADER.size:
        raise ProtocolError(f"not a BLOCK message of {device}: {len(parts)} part(s)")
    counter, first_time, period, channels, kind, count, flags = BLOCK_HEADER.unpack(parts[1])
    dtype = SAMPLE_TYPES.get(kind)
    if dtype is None or len(parts[2]) != channels * count * dtype.itemsize:
        raise ProtocolError(f"BLOCK {counter}: {len(parts[2])} bytes for {channels} x {count} of type {kind}")
    samples = np.frombuffer(parts[2], dtype=dtype).reshape(channels, count)
    return Block(counter, first_time, period, samples, bool(flags & SAVE_FLAG), bool(flags & OVERLOAD_FLAG))
