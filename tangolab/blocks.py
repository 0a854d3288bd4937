"""Blocks: a stream's samples with their counter and time base, as one DevEncoded value.

Shared by the streaming devices (`device_servers.core.stream`, which publishes them) and their
clients (`tangolab record`, live views), so a client needs no server code to read them.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

#: The format string of the `block` attribute's DevEncoded value.
BLOCK_FORMAT = "tangolab.block.1"
#: The block header, little-endian: counter, first-sample time (UNIX s), period (s), channels,
#: samples per channel, sample type (numpy kind and size: b"f8", b"i2", ...), blocks dropped just
#: before this one, length of the gap text that follows the header (UTF-8). Then the samples,
#: channel after channel, little-endian.
HEADER = struct.Struct("<QddHI2sIH")
#: A channel of this name is the save flag (the epz board's): non-zero while samples are to be saved.
SAVE_CHANNEL = "save"


@dataclass(frozen=True)
class Block:
    """Samples of every channel with their counter and time base, as one event carries them.

    `dropped_before`: blocks the device dropped just before this one (its buffer was full);
    `gap_before`: why samples just before this one were not measured or not delivered (the
    source was lost, or missed them), "" when this block follows the previous one."""

    counter: int
    first_time: float
    period: float
    samples: np.ndarray
    dropped_before: int = 0
    gap_before: str = ""

    @property
    def length(self) -> int:
        """Samples per channel."""
        return self.samples.shape[1]

    @property
    def end_time(self) -> float:
        """When the sample after the last one is due."""
        return self.first_time + self.length * self.period

    def encode(self) -> tuple[str, bytes]:
        """The `block` attribute's DevEncoded value: (BLOCK_FORMAT, header + gap text + samples)."""
        samples = np.ascontiguousarray(self.samples, dtype=self.samples.dtype.newbyteorder("<"))
        kind = f"{samples.dtype.kind}{samples.dtype.itemsize}".encode()
        gap = self.gap_before.encode()
        header = HEADER.pack(self.counter, self.first_time, self.period, samples.shape[0], samples.shape[1],
                             kind, self.dropped_before, len(gap))
        return BLOCK_FORMAT, b"".join((header, gap, samples.tobytes()))

    @classmethod
    def decode(cls, encoded: tuple[str, bytes]) -> Block:
        """A block from a DevEncoded value (an event's `attr_value.value`); ValueError if it is none."""
        form, data = encoded
        if form != BLOCK_FORMAT:
            raise ValueError(f"not a block: format {form!r}, expected {BLOCK_FORMAT!r}")
        data = bytes(data) if not isinstance(data, (bytes, bytearray, memoryview)) else data
        counter, first, period, channels, length, kind, dropped, gap_length = HEADER.unpack_from(data)
        start = HEADER.size + gap_length
        gap = bytes(data[HEADER.size:start]).decode()
        dtype = np.dtype("<" + kind.decode())
        if len(data) - start != channels * length * dtype.itemsize:
            raise ValueError(f"block {counter}: {len(data) - start} bytes of samples for {channels} x {length} {dtype}")
        samples = np.frombuffer(data, dtype, channels * length, start).reshape(channels, length)
        return cls(counter, first, period, samples, dropped, gap)
