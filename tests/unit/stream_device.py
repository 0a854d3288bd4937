"""A streaming device for the stream and recorder tests: the core's synthetic ramps, with faults on command."""

from __future__ import annotations

import time

import numpy as np
from tango import AttrWriteType
from tango.server import Device, attribute, command, device_property

from device_servers.core.errors import LinkError
from device_servers.core.stream import Channel, Samples, Streaming, SyntheticSource


class FaultySource(SyntheticSource):
    """Ramps on `x` and `y`, and a save flag up for `save_every` samples, down for as many; lost
    (`lose`) or stalled (`stall`: samples keep coming due, all delivered at its end) on request."""

    def __init__(self, rate: float, block_samples: int, save_every: int) -> None:
        super().__init__(3, rate, block_samples)
        self.save_every = save_every
        self.lost_until = self.stalled_until = 0.0

    def open(self) -> None:
        if time.time() < self.lost_until:
            raise LinkError("the synthetic source does not answer")
        super().open()

    def read(self, timeout: float) -> Samples | None:
        if time.time() < self.lost_until:
            raise LinkError("the synthetic source dropped the stream")
        if time.time() < self.stalled_until:
            time.sleep(timeout)
            return None
        samples = super().read(timeout)
        if samples is not None:
            first = round((samples.first_time - self.start) / self.period)
            index = np.arange(first, first + samples.data.shape[1])
            samples.data[2] = (index // self.save_every) % 2 == 0
        return samples


class StreamTester(Streaming, Device):
    """Three channels at `Rate` samples a second in blocks of `BlockSamples`."""

    channels = (Channel("x", "V"), Channel("y", "nm"), Channel("save"))

    Rate = device_property(dtype=float, default_value=10_000.0)
    BlockSamples = device_property(dtype=int, default_value=500)
    SaveEvery = device_property(dtype=int, default_value=2_000)

    def init_device(self) -> None:
        self._gain = 2.5
        super().init_device()

    def create_source(self) -> FaultySource:
        return FaultySource(self.Rate, self.BlockSamples, self.SaveEvery)

    @attribute(dtype=float, unit="V/V", access=AttrWriteType.READ_WRITE, doc="a parameter of the measurement")
    def gain(self) -> float:
        return self._gain

    @gain.write
    def gain(self, value: float) -> None:
        self._gain = value

    @command(dtype_in=float, doc_in="seconds the source is lost (reads and opens fail)")
    def LoseSource(self, seconds: float) -> None:
        self._source.lost_until = time.time() + seconds

    @command(dtype_in=float, doc_in="seconds the source delivers nothing, then all that came due")
    def Stall(self, seconds: float) -> None:
        self._source.stalled_until = time.time() + seconds
