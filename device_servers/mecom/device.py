"""`PeltierController`: one channel of a Meerstetter TEC controller (MeCom) as a Tango device.

A CCD head's Peltier is one channel of a TEC-1090 behind an LTR-1200 (`lab/tec/1` is channel
1, `lab/tec/2` channel 2). The channel devices of one server with the same `Url` share one TCP
connection (device_servers/core/line.py) and one MeCom sequence counter, so a reply always
reaches the channel that asked. RUNNING while the device regulates with this channel's output
stage enabled. A parameter the controller refuses (`+05` not available...) is INVALID with the
controller's words in the Status; the other readings go on.
"""

from __future__ import annotations

from typing import Any

from tango import DevState
from tango.server import command, device_property

from ..core.hardware import HardwareDevice, Refused, polled, writable
from ..core.link import Link
from ..core.server import serve
from .driver import FRAMING, TARGET_LIMITS, DeviceStatus, MeCom, OutputStage, TecChannel

#: Each attribute and the parameter (protocol.PARAMETERS) it shows, read one by one.
READINGS = {
    "objectTemperature": "object_temperature",
    "sinkTemperature": "sink_temperature",
    "targetTemperature": "target_temperature",
    "outputCurrent": "output_current",
    "outputVoltage": "output_voltage",
    "outputStage": "output_stage",
    "deviceStatus": "device_status",
}


def temperature(what: str, **kwargs: Any) -> polled:
    return polled(dtype=float, unit="degC", format="%7.2f", abs_change=0.01, archive_abs_change=0.1, doc=what, **kwargs)


class PeltierController(HardwareDevice):
    """One channel of a Meerstetter TEC controller (TEC-1090) over MeCom."""

    Channel = device_property(dtype=int, default_value=1, doc="The controller's channel (MeCom instance): 1, 2, ...")
    Address = device_property(
        dtype=int, default_value=1, doc="The controller's MeCom device address (0 reaches any device)"
    )
    BaudRate = device_property(dtype=int, default_value=57600, doc="Serial links: bits per second (TEC: 57600)")

    framing = FRAMING
    write_terminator = b"\r"

    objectTemperature = temperature("Temperature of the object (the CCD) this channel cools (parameter 1000)")
    sinkTemperature = temperature(
        "Temperature of the heat sink, cooled by the coolant (parameter 1001); it rises when the flow stops",
        max_warning=35.0, max_alarm=50.0,
    )
    targetTemperature = writable(
        dtype=float, format="%7.2f", abs_change=0.01, writes=TecChannel.set_target_temperature,
        limits=TARGET_LIMITS, doc="Target object temperature (parameter 3000)",
    )
    outputCurrent = polled(
        dtype=float, unit="A", format="%6.3f", abs_change=0.001, doc="Actual output current (parameter 1020)"
    )
    outputVoltage = polled(
        dtype=float, unit="V", format="%6.3f", abs_change=0.001, doc="Actual output voltage (parameter 1021)"
    )
    deviceStatus = polled(
        dtype=DeviceStatus, doc="Status of the whole controller (parameter 104): INIT, READY, RUN, ERROR, "
        "BOOTLOADER, RESETTING",
    )
    outputStage = writable(
        dtype=OutputStage, writes=TecChannel.set_output_stage,
        doc="Output stage enable (parameter 2010): OFF, ON, LIVE, HW_ENABLE (by the hardware enable input)",
    )

    def create_driver(self, link: Link) -> TecChannel:
        return MeCom.on(link, self.Address).channel(self.Channel)

    def poll(self) -> dict[str, Any]:
        with self.link.lock:
            return {name: Refused.of(self.driver.read, parameter) for name, parameter in READINGS.items()}

    def operating_state(self, values: dict[str, Any]) -> tuple[DevState, str]:
        channel = f"Channel {self.Channel}"
        if values["deviceStatus"] is None or values["outputStage"] is None:
            return DevState.ON, f"{channel}: device status or output stage unknown"
        status, stage = DeviceStatus(values["deviceStatus"]), OutputStage(values["outputStage"])
        if status == DeviceStatus.ERROR:
            return DevState.ALARM, f"{channel}: the controller reports an error; output stages off until Reset"
        if status in (DeviceStatus.INIT, DeviceStatus.RESETTING, DeviceStatus.BOOTLOADER):
            return DevState.INIT, f"{channel}: the controller is in {status.name}"
        if stage == OutputStage.OFF:
            return DevState.ON, f"{channel}: output stage OFF"
        if status == DeviceStatus.RUN:
            return DevState.RUNNING, (
                f"{channel}: regulating the object to {_celsius(values['targetTemperature'])} "
                f"({_celsius(values['objectTemperature'])} now), output stage {stage.name}"
            )
        return DevState.ON, f"{channel}: output stage {stage.name}, not running (hardware enable input off?)"

    @command
    def Reset(self) -> None:
        """Restart the whole controller (every channel); clears a controller error."""
        self.call_driver(self.driver.reset)


def _celsius(value: float | None) -> str:
    return "? degC" if value is None else f"{value:.2f} degC"


def main() -> None:
    serve(PeltierController)


if __name__ == "__main__":
    main()
