"""`FunctionGenerator`: a function generator as a Tango device, whatever its make (`Model`).

Per channel n: `waveform<n>` (SINE, SQUARE, TRIANGLE, RAMP, NOISE, DC, ARBITRARY), `frequency<n>`
(Hz), `amplitude<n>` (Vpp), `offset<n>` (V), `load<n>` (ohm; 9.9e37, SCPI's infinity, for high
impedance),
`burstCount<n>`, `burstState<n>`, `output<n>` where the instrument has an output switch, and
`arbitraryWaveform<n>`: writing points from -1 to +1 uploads them as the channel's arbitrary
waveform and plays it; reading it returns the points as the instrument holds them. Each write
reads the setting back and the instrument's error queue: a value it refused is a DevFailed in
its own words, and changes nothing.
"""

from __future__ import annotations

import enum
from typing import Any

from tango import DevState

from ..core.framing import BlockLines
from ..core.hardware import HardwareDevice
from ..core.link import Link
from ..core.models import Models, add_model_attributes
from ..core.server import serve
from .driver import WAVEFORMS, Afg31000Driver, FunctionGeneratorDriver, Hp33120aDriver

Waveform = enum.IntEnum("Waveform", list(WAVEFORMS), start=0)
DRIVERS = Models({"33120A": Hp33120aDriver, "AFG31000": Afg31000Driver})


def channel_attributes(n: int, driver: FunctionGeneratorDriver) -> dict[str, dict[str, Any]]:
    """The attributes of channel `n`, by name, as `add_polled_attribute` takes them."""
    this = type(driver)

    def setting(operation: Any, limits: Any = None, **kwargs: Any) -> dict[str, Any]:
        return {"dtype": float, "writes": (operation, n), "limits": limits, **kwargs}

    attributes = {
        f"waveform{n}": {"dtype": Waveform, "writes": (this.set_waveform, n), "doc": f"Channel {n} waveform"},
        f"frequency{n}": setting(this.set_frequency, this.frequency.limits, format="%.6g"),
        f"amplitude{n}": setting(this.set_amplitude, this.amplitude.limits, format="%.4g",
                                 doc=f"Channel {n} amplitude, peak to peak"),
        f"offset{n}": setting(this.set_offset, this.offset.limits, format="%.4g", doc=f"Channel {n} DC offset"),
        f"load{n}": setting(this.set_load, unit="ohm", doc=f"Channel {n} load the amplitude is set for (9.9e37: high impedance)"),
        f"burstCount{n}": {"dtype": int, "writes": (this.set_burst_count, n), "limits": this.burst_count.limits,
                           "doc": f"Channel {n} cycles per burst"},
        f"burstState{n}": {"dtype": bool, "writes": (this.set_burst_state, n), "doc": f"Channel {n} burst mode on"},
        f"arbitraryWaveform{n}": {
            "dtype": (float,), "max_dim_x": int(this.points.high), "writes": (this.upload, n),
            "doc": f"Channel {n} arbitrary waveform, points from -1 to +1 ({this.points}); writing uploads and plays it",
        },
    }
    if this.output is not None:
        attributes[f"output{n}"] = {"dtype": bool, "writes": (this.set_output, n), "doc": f"Channel {n} output on"}
    return attributes


class FunctionGenerator(HardwareDevice):
    """A function / arbitrary waveform generator: HP 33120A (GPIB) or Tektronix AFG31000 (LAN)."""

    Model = DRIVERS.property("33120A")

    #: Replies are lines, but a waveform read back is a binary block that may hold LF bytes.
    framing = BlockLines(b"\n")

    def create_driver(self, link: Link) -> FunctionGeneratorDriver:
        driver = DRIVERS.pick(self.Model)(link)
        for n in driver.channel_numbers:
            add_model_attributes(self, channel_attributes(n, driver))
        return driver

    def on_connect(self) -> None:
        self.driver.send("*CLS")  # the error queue from before is not this device's

    def poll(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for n in self.driver.channel_numbers:
            status = self.driver.read_channel(n)
            values.update({
                f"waveform{n}": WAVEFORMS.index(status.waveform) if status.waveform in WAVEFORMS else None,
                f"frequency{n}": status.frequency, f"amplitude{n}": status.amplitude, f"offset{n}": status.offset,
                f"load{n}": status.load, f"burstCount{n}": status.burst_count, f"burstState{n}": status.burst_on,
            })
            if status.output is not None:
                values[f"output{n}"] = status.output
        return values

    def operating_state(self, values: dict[str, Any]) -> tuple[DevState, str]:
        parts = []
        for n in self.driver.channel_numbers:
            waveform = WAVEFORMS[values[f"waveform{n}"]] if values.get(f"waveform{n}") is not None else "?"
            burst = f", bursts of {values[f'burstCount{n}']}" if values[f"burstState{n}"] else ""
            off = " (output off)" if values.get(f"output{n}") is False else ""
            parts.append(f"channel {n}: {waveform} {values[f'frequency{n}']:g} Hz, {values[f'amplitude{n}']:g} Vpp, "
                         f"offset {values[f'offset{n}']:g} V{burst}{off}")
        status = "; ".join(parts)
        return DevState.ON, status[:1].upper() + status[1:]


def main() -> None:
    serve(FunctionGenerator)


if __name__ == "__main__":
    main()
