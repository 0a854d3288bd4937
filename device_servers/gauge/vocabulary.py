"""What every vacuum gauge driver here reports, whatever its protocol: a pressure in mbar, or
none with the sensor status that says why, and the unit the gauge itself shows."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ..core.link import Link


class SensorStatus(enum.IntEnum):
    """The sensor's state; only OK carries a pressure (values as the TPG's status codes)."""

    OK = 0
    UNDERRANGE = 1
    OVERRANGE = 2
    SENSOR_ERROR = 3
    SENSOR_OFF = 4
    NO_SENSOR = 5
    IDENTIFICATION_ERROR = 6


#: What one unit is in mbar, by the names the gauges use (Torr from 101325 Pa / 760).
MBAR_PER_UNIT = {
    "mbar": 1.0,
    "hPa": 1.0,
    "Pa": 0.01,
    "Torr": 1013.25 / 760,
    "Micron": 1013.25 / 760 / 1000,
}


@dataclass(frozen=True)
class GaugeReading:
    pressure: float | None  # mbar; None unless the status is OK
    status: SensorStatus
    detail: str = ""  # the gauge's own words for a status that is not OK

    @property
    def text(self) -> str:
        """The reading as a person reads it in a device status."""
        if self.status is SensorStatus.OK:
            return f"{self.pressure:.3e} mbar"
        words = self.status.name.replace("_", " ").capitalize()
        return f"{words}{': ' + self.detail if self.detail else ''}; no valid pressure"


def to_mbar(value: float, unit: str) -> float:
    """`value` in the gauge's `unit` as mbar."""
    return value * MBAR_PER_UNIT[unit]


class Gauge:
    """One gauge channel in the shared vocabulary; the protocol is the subclass's."""

    model = "gauge"

    def __init__(self, link: Link) -> None:
        self.link = link
        #: The unit the gauge shows and sends its readings in, as learnt or set at `configure`.
        self.unit = "mbar"

    def configure(self) -> None:
        """Bring the gauge into the state the driver relies on (after each connect)."""

    def identify(self) -> str:
        """What the gauge says it is."""
        raise NotImplementedError

    def read(self) -> GaugeReading:
        """The pressure in mbar with the sensor status."""
        raise NotImplementedError
