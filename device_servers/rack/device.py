"""`Rack`: the climate of an instrument cabinet (`lab/rack/1`), as HiPERCAM's rack watched its
own: temperature, relative humidity, the dew point, and the margin between the cabinet's
temperature and its dew point, which is what warns of condensation on cold parts.

The readings come from another device's attributes, read as a client (`Temperature` and
`Humidity` name them; in the demo lab the Arduino environment box's sensor 1, `lab/box/1`):
the rack has no sensor of its own, and this way any sensor device serves without a new driver.
The source's device not answering, or its reading INVALID, is the rack's FAULT with the reason.

    dewPointMargin (°C): ALARM below 2 °C (condensation is near) and above 40 °C (a hot, dry
    cabinet: its cooling has failed); WARNING below 5 °C. Jive edits the limits.
"""

from __future__ import annotations

from typing import Any

import tango
from tango import DevState
from tango.server import device_property

from ..arduino.driver import dew_point
from ..core.errors import LinkError
from ..core.hardware import HardwareDevice, polled
from ..core.line import Line
from ..core.server import serve


def dew_point_margin(celsius: float, relative_humidity: float) -> float:
    """How far, °C, the air is above its dew point: 0 means condensation (Magnus formula)."""
    if not 0 <= relative_humidity <= 100:
        raise ValueError(f"relative humidity {relative_humidity!r} % is not between 0 and 100")
    return celsius - dew_point(celsius, relative_humidity)


def split_attribute(name: str) -> tuple[str, str]:
    """(device, attribute) of `domain/family/member/attribute`; a `tango://host:port/` prefix and
    a `#dbase=no` suffix (a device served without a database) stay with the device."""
    full, hash_, suffix = name.partition("#")
    device, _, attribute = full.rpartition("/")
    if device.removeprefix("tango://").count("/") < 2 + full.startswith("tango://") or not attribute:
        raise ValueError(f"{name!r} is not an attribute's name (domain/family/member/attribute)")
    return device + hash_ + suffix, attribute


class SourceLine(Line):
    """The devices whose attributes the rack reads, as Tango clients."""

    def __init__(self, sources: dict[str, str], *, timeout: float = 3.0) -> None:
        super().__init__(", ".join(sources.values()), timeout=timeout)
        self.sources = {key: split_attribute(name) for key, name in sources.items()}
        self._proxies: dict[str, tango.DeviceProxy] | None = None

    @property
    def is_open(self) -> bool:
        return self._proxies is not None

    def open(self) -> None:
        proxies = {}
        for device, _ in self.sources.values():
            try:
                proxies[device] = proxy = proxies.get(device) or tango.DeviceProxy(device)
                proxy.set_timeout_millis(int(self.timeout * 1000))
                proxy.ping()
            except tango.DevFailed as exc:
                raise LinkError(f"{device} does not answer: {exc.args[0].desc.strip()}") from exc
        self._proxies = proxies

    def close(self) -> None:
        self._proxies = None

    def read(self) -> dict[str, float]:
        """Each source's value; an unreachable device or an INVALID reading is a `LinkError`."""
        with self.lock:
            if self._proxies is None:
                raise LinkError("not connected to the source devices")
            values = {}
            for key, (device, attribute) in self.sources.items():
                try:
                    reading = self._proxies[device].read_attribute(attribute)
                except tango.DevFailed as exc:
                    raise LinkError(f"{device}/{attribute}: {exc.args[0].desc.strip()}") from exc
                if reading.quality == tango.AttrQuality.ATTR_INVALID:
                    raise LinkError(f"{device}/{attribute} is INVALID (its device: {self._proxies[device].status()})")
                values[key] = float(reading.value)
            return values


class Rack(HardwareDevice):
    """A cabinet's temperature and humidity from another device's sensor, with its dew point."""

    Url = device_property(dtype=str, default_value="", doc="Unused: Temperature and Humidity name the sources")
    Temperature = device_property(
        dtype=str, default_value="lab/box/1/temperature1", doc="The attribute giving the cabinet's temperature, °C"
    )
    Humidity = device_property(
        dtype=str, default_value="lab/box/1/humidity1", doc="The attribute giving the cabinet's relative humidity, %"
    )
    PollPeriod = device_property(dtype=float, default_value=2.0, doc="Seconds between two readings")
    Timeout = device_property(dtype=float, default_value=3.0, doc="Seconds a source device may take to answer")

    temperature = polled(dtype=float, unit="°C", format="%6.2f", abs_change=0.05, max_warning=35, max_alarm=40,
                         doc="The cabinet's temperature")
    humidity = polled(dtype=float, unit="%", format="%5.1f", abs_change=0.1, max_warning=70, max_alarm=80,
                      doc="The cabinet's relative humidity")
    dewPoint = polled(dtype=float, unit="°C", format="%6.2f", abs_change=0.05,
                      doc="The cabinet air's dew point (Magnus formula, Sonntag's constants)")
    dewPointMargin = polled(dtype=float, unit="°C", format="%6.2f", abs_change=0.05,
                            min_alarm=2, min_warning=5, max_alarm=40,
                            doc="Cabinet temperature minus its dew point: condensation near when small")

    def get_device_properties(self, ds_class: Any = None) -> None:
        """The sources stand for the `Url` in the Status and the log ("Connecting to ...")."""
        super().get_device_properties(ds_class)
        self.Url = f"{self.Temperature}, {self.Humidity}"

    def create_link(self) -> SourceLine:
        return SourceLine({"temperature": self.Temperature, "humidity": self.Humidity}, timeout=self.Timeout)

    def create_driver(self, link: SourceLine) -> SourceLine:
        return link

    def poll(self) -> dict[str, Any]:
        reading = self.driver.read()
        celsius, humidity = reading["temperature"], reading["humidity"]
        margin = dew_point_margin(celsius, humidity)
        return {"temperature": celsius, "humidity": humidity, "dewPoint": celsius - margin, "dewPointMargin": margin}

    def operating_state(self, values: dict[str, Any]) -> tuple[DevState, str]:
        return DevState.ON, (f"{values['temperature']:.1f} °C, {values['humidity']:.0f} %, dew point "
                             f"{values['dewPoint']:.1f} °C, margin {values['dewPointMargin']:.1f} °C")


def main() -> None:
    serve(Rack)


if __name__ == "__main__":
    main()
