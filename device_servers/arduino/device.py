"""`EnvironmentBox`: the lab's Arduino box (`lab/box/1`) as a Tango device: two temperature and
humidity sensors with their dew points, and four switches a client sets and reads back.

Opening an Arduino's serial port resets the board (DTR): after each connect the device waits up
to `StartupTime` for the board to start, saying so in its status, instead of failing the first
requests and cycling through FAULT.
"""

from __future__ import annotations

from typing import Any

from tango import DevState
from tango.server import device_property

from ..core.hardware import HardwareDevice, polled, writable
from ..core.link import Link
from ..core.server import serve
from .driver import STARTUP_S, EnvironmentBoxDriver, dew_point
from .protocol import FRAMING, SENSORS, SWITCHES


def _temperature(what: str) -> polled:
    return polled(dtype=float, unit="°C", format="%6.2f", abs_change=0.01, doc=what)


class EnvironmentBox(HardwareDevice):
    """The Arduino environment box (MIN protocol over its USB serial port)."""

    framing = FRAMING
    write_terminator = b""

    BaudRate = device_property(dtype=int, default_value=115200, doc="Serial links: bits per second (the sketch: 115200)")
    StartupTime = device_property(
        dtype=float, default_value=STARTUP_S,
        doc="Seconds the board may take to start after its port opens (opening it resets the board)",
    )

    temperature1 = _temperature("Sensor 1 temperature")
    temperature2 = _temperature("Sensor 2 temperature")
    humidity1 = polled(dtype=float, unit="%", format="%5.1f", abs_change=0.1, doc="Sensor 1 relative humidity")
    humidity2 = polled(dtype=float, unit="%", format="%5.1f", abs_change=0.1, doc="Sensor 2 relative humidity")
    dewPoint1 = _temperature("Sensor 1 dew point, from its temperature and humidity (Magnus formula)")
    dewPoint2 = _temperature("Sensor 2 dew point, from its temperature and humidity (Magnus formula)")
    switch1 = writable(dtype=bool, writes=(EnvironmentBoxDriver.set_switch, 1), doc="Switch 1 on")
    switch2 = writable(dtype=bool, writes=(EnvironmentBoxDriver.set_switch, 2), doc="Switch 2 on")
    switch3 = writable(dtype=bool, writes=(EnvironmentBoxDriver.set_switch, 3), doc="Switch 3 on")
    switch4 = writable(dtype=bool, writes=(EnvironmentBoxDriver.set_switch, 4), doc="Switch 4 on")

    def create_driver(self, link: Link) -> EnvironmentBoxDriver:
        return EnvironmentBoxDriver(link)

    def on_connect(self) -> None:
        self._set_state(DevState.INIT, f"Waiting up to {self.StartupTime:g} s for the board to start "
                                       "(opening its port resets it)")
        self.driver.start(self.StartupTime)

    def poll(self) -> dict[str, Any]:
        status = self.driver.read_status()
        values: dict[str, Any] = {}
        for n, celsius, humidity in zip(SENSORS, status.temperatures, status.humidities):
            values.update({f"temperature{n}": celsius, f"humidity{n}": humidity,
                           f"dewPoint{n}": dew_point(celsius, humidity)})
        values.update({f"switch{n}": on for n, on in zip(SWITCHES, status.switches)})
        return values

    def operating_state(self, values: dict[str, Any]) -> tuple[DevState, str]:
        on = [str(n) for n in SWITCHES if values.get(f"switch{n}")]
        return DevState.ON, (f"{values['temperature1']:.2f} °C, {values['humidity1']:.1f} %, dew point "
                             f"{values['dewPoint1']:.1f} °C; switches on: {', '.join(on) or 'none'}")


def main() -> None:
    serve(EnvironmentBox)


if __name__ == "__main__":
    main()
