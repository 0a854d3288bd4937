"""`Picoammeter`: a Keithley 6485 or 487 as a Tango device, chosen by the `Model` property.

The current with its range (an overflow is INVALID, never a number), auto range, zero check and
a `ZeroCorrect` command on both; the 487 adds its voltage source (`voltage`, `voltageRange`,
`currentLimit`, `sourceOn`, `interlock`). `Url` is a direct line (`socket://host:port`) or an
address behind the lab's GPIB bus device (`gpib://lab/gpib/1/14`).
"""

from __future__ import annotations

from typing import Any

from tango import DevState
from tango.server import command, device_property

from ..core.hardware import HardwareDevice, polled, writable
from ..core.link import Link
from ..core.models import Models, add_model_attributes
from ..core.server import serve
from .driver import (
    CURRENT_LIMIT_LIMITS,
    RANGE_LIMITS,
    VOLTAGE_LIMITS,
    VOLTAGE_RANGE_LIMITS,
    Keithley487,
    Keithley6485,
)
from .driver import (
    Picoammeter as PicoammeterDriver,
)

DRIVERS = Models({"6485": Keithley6485, "487": Keithley487})

#: The 487's voltage source, added at run time when `Model` is 487.
SOURCE_ATTRIBUTES: dict[str, dict[str, Any]] = {
    "voltage": {
        "dtype": float, "format": "%8.3f", "abs_change": 0.001, "writes": Keithley487.set_voltage, "limits": VOLTAGE_LIMITS,
        "doc": "Voltage source value; within ±50.5 V on the 50 V range, ±505 V on the 500 V range",
    },
    "voltageRange": {
        "dtype": float, "format": "%3.0f", "writes": Keithley487.set_voltage_range, "limits": VOLTAGE_RANGE_LIMITS,
        "doc": "Voltage source range: 50 or 500 V (500 V operates only with the interlock closed)",
    },
    "currentLimit": {
        "dtype": float, "format": "%.1e", "writes": Keithley487.set_current_limit, "limits": CURRENT_LIMIT_LIMITS,
        "doc": "Voltage source current limit: 25 uA, or 25 mA (50 V range) / 2.5 mA (500 V range)",
    },
    "sourceOn": {"dtype": bool, "writes": Keithley487.set_operate, "doc": "Voltage source operating (True) or in standby"},
    "interlock": {"dtype": bool, "doc": "Interlock closed: the 500 V range may operate"},
    "inCurrentLimit": {"dtype": bool, "doc": "The voltage source is limiting its current"},
}


class Picoammeter(HardwareDevice):
    """Keithley 6485 or 487 picoammeter (the 487 with its voltage source)."""

    Model = DRIVERS.property("6485", "6485 (SCPI) or 487 (DDC, with voltage source)")
    IntegrationPlc = device_property(
        dtype=float, default_value=1.0, doc="Integration time in power-line cycles, set at each connect"
    )
    Timeout = device_property(
        dtype=float, default_value=2.0, doc="Seconds to wait for one reply (a reading may range several times)"
    )

    current = polled(
        dtype=float, unit="A", format="%.4e", doc="Measured current; INVALID on overflow (beyond the range)"
    )
    overflow = polled(dtype=bool, doc="The current is beyond the present range")
    range = writable(
        dtype=float, format="%.0e", writes=PicoammeterDriver.set_range, limits=RANGE_LIMITS,
        doc="Full scale of the present range; a write picks the lowest range holding it and ends auto range",
    )
    autoRange = writable(dtype=bool, writes=PicoammeterDriver.set_auto_range, doc="Auto range on")
    zeroCheck = writable(
        dtype=bool, writes=PicoammeterDriver.set_zero_check, doc="Zero check: the input is shorted, readings ~0"
    )

    def create_driver(self, link: Link) -> PicoammeterDriver:
        driver = DRIVERS.pick(self.Model)
        if driver is Keithley487:
            add_model_attributes(self, SOURCE_ATTRIBUTES)
        return driver(link)

    def on_connect(self) -> None:
        self.driver.configure(self.IntegrationPlc)

    def poll(self) -> dict[str, Any]:
        status = self.driver.read_status()
        values: dict[str, Any] = {
            "current": status.reading.amps,
            "overflow": status.reading.overflow,
            "range": status.reading.range,
            "autoRange": status.auto_range,
            "zeroCheck": status.zero_check,
        }
        if status.source is not None:
            source = status.source
            values.update(
                voltage=source.voltage, voltageRange=source.voltage_range, currentLimit=source.current_limit,
                sourceOn=source.operate, interlock=source.interlock_closed, inCurrentLimit=source.in_current_limit,
            )
        return values

    def operating_state(self, values: dict[str, Any]) -> tuple[DevState, str]:
        if values["overflow"]:
            return DevState.ALARM, f"Overflow: the current is beyond the {values['range']:.0e} A range"
        parts = [f"Measuring on the {values['range']:.0e} A range{' (auto)' if values['autoRange'] else ''}"]
        if values["zeroCheck"]:
            parts.append("zero check ON (input shorted)")
        if values.get("sourceOn"):
            parts.append(f"voltage source ON at {values['voltage']:g} V")
            if values["inCurrentLimit"]:
                return DevState.ALARM, "; ".join([*parts, "in current limit"])
        return DevState.ON, "; ".join(parts)

    @command
    def ZeroCorrect(self) -> None:
        """Acquire the zero correction with the input shorted and apply it from now on."""
        self.call_driver(self.driver.zero_correct)


def main() -> None:
    serve(Picoammeter)


if __name__ == "__main__":
    main()
