"""`PressureGauge`: a vacuum gauge as a Tango device, one vocabulary whatever the controller; the
`Model` property picks the driver: a Pfeiffer TPG 361 or an MKS PDR900.

`pressure` is in mbar whatever unit the gauge shows; when the sensor status is not OK (under or
over its range, a sensor error, switched off, no sensor) it is INVALID, the state ALARM and the
status says why in the gauge's terms. Alarm and warning levels are the attribute's standard Tango
properties (`max_alarm`, `max_warning`: Jive, or `attribute_properties` in the lab file).
"""

from __future__ import annotations

from typing import Any

from tango import DevState
from tango.server import device_property

from ..core.hardware import HardwareDevice, polled
from ..core.link import Link
from ..core.models import Models
from ..core.server import serve
from .pdr900 import Pdr900
from .tpg361 import Tpg361
from .vocabulary import Gauge, GaugeReading, SensorStatus

DRIVERS: Models[type[Gauge]] = Models({"TPG361": Tpg361, "PDR900": Pdr900})


class PressureGauge(HardwareDevice):
    """A vacuum gauge: pressure in mbar with its sensor status (Pfeiffer TPG 361 or MKS PDR900)."""

    Model = DRIVERS.property("TPG361", "TPG361 (Pfeiffer) or PDR900 (MKS)")
    Channel = device_property(
        dtype=int, default_value=1, doc="TPG: the gauge channel, 1 (2 on a DualGauge TPG 362)"
    )
    Address = device_property(
        dtype=int, default_value=253,
        doc="PDR900: the controller's address, 1 to 253 (253 at delivery); 0: ask it (@254AD?;FF) at connect",
    )

    pressure = polled(
        dtype=float, unit="mbar", format="%.3e", rel_change=1.0, archive_rel_change=10.0,
        doc="Pressure in mbar whatever unit the gauge shows; INVALID when the sensor status is not OK",
    )
    sensorStatus = polled(
        dtype=SensorStatus,
        doc="OK, or why there is no valid pressure: UNDERRANGE, OVERRANGE, SENSOR_ERROR, SENSOR_OFF, "
        "NO_SENSOR, IDENTIFICATION_ERROR",
    )
    displayUnit = polled(dtype=str, doc="The unit the gauge itself shows and sends (the TPG is set to mbar)")
    gaugeIdentity = polled(dtype=str, doc="What the gauge says it is (TPG: the gauge type; PDR900: serial, firmware)")

    def link_options(self) -> dict[str, Any]:
        return {**super().link_options(), "framing": DRIVERS.pick(self.Model).framing}

    def create_driver(self, link: Link) -> Gauge:
        if DRIVERS.pick(self.Model) is Pdr900:
            return Pdr900(link, address=self.Address or None)
        return Tpg361(link, channel=self.Channel)

    def on_connect(self) -> None:
        self.driver.configure()
        self._identity = self.driver.identify()

    def poll(self) -> dict[str, Any]:
        self._reading: GaugeReading = self.driver.read()
        return {
            "pressure": self._reading.pressure,
            "sensorStatus": int(self._reading.status),
            "displayUnit": self.driver.unit,
            "gaugeIdentity": self._identity,
        }

    def operating_state(self, values: dict[str, Any]) -> tuple[DevState, str]:
        name = f"{self.driver.model} ({self._identity})"
        if self._reading.status is SensorStatus.OK:
            return DevState.ON, f"{name}: {self._reading.text}"
        return DevState.ALARM, f"{name}: {self._reading.text}"


def main() -> None:
    serve(PressureGauge)


if __name__ == "__main__":
    main()
