"""`PowerSupply`: an Aim-TTi power supply as a Tango device (`lab/psu/1`).

Per output n: `voltage<n>` and `current<n>` (read back at the terminals), `voltageSetpoint<n>`,
`currentLimit<n>`, `overVoltageProtection<n>`, `overCurrentProtection<n>` (writable within
the model's ranges) and `output<n>` (on/off). The attributes are made at start-up for the
outputs the model has (or `Outputs`). A protection trip makes the device ALARM, saying which
output and which protection; `ResetTrip` clears it (the output stays off until switched on).
"""

from __future__ import annotations

from typing import Any

from tango import DevState
from tango.server import command, device_property

from ..core.hardware import HardwareDevice, polled
from ..core.link import Link
from ..core.models import Models, add_model_attributes
from ..core.server import serve
from .driver import AimTtiPsu
from .protocol import MODELS, Model

SUPPLIES = Models(MODELS)


def output_attributes(n: int, model: Model) -> dict[str, dict[str, Any]]:
    """The attributes of output `n`, by name, as `add_polled_attribute` takes them."""

    def reading(unit: str, what: str) -> dict[str, Any]:
        return {"dtype": float, "unit": unit, "format": "%6.3f", "abs_change": 0.001, "doc": f"Output {n} {what}"}

    def setting(operation: Any, limits: Any, what: str) -> dict[str, Any]:
        return {"dtype": float, "format": "%6.3f", "writes": (operation, n), "limits": limits, "doc": f"Output {n} {what}"}

    return {
        f"voltage{n}": reading("V", "voltage, read back at the terminals"),
        f"current{n}": reading("A", "current, read back"),
        f"voltageSetpoint{n}": setting(AimTtiPsu.voltage_setpoint.set, model.voltage, "voltage set-point"),
        f"currentLimit{n}": setting(
            AimTtiPsu.current_limit.set, model.current, "current limit (constant current above it)"
        ),
        f"overVoltageProtection{n}": setting(
            AimTtiPsu.ovp.set, model.ovp, "over-voltage trip level: the output switches off above it"
        ),
        f"overCurrentProtection{n}": setting(
            AimTtiPsu.ocp.set, model.ocp, "over-current trip level: the output switches off above it"
        ),
        f"output{n}": {
            "dtype": bool, "writes": (AimTtiPsu.set_output, n),
            "doc": f"Output {n} on; switching on clears a trip of this output",
        },
    }


class PowerSupply(HardwareDevice):
    """Aim-TTi MX100QP / PL-P: voltage and current per output, protections, trips."""

    Model = SUPPLIES.property("MX100QP")
    Outputs = device_property(dtype=int, default_value=0, doc="Outputs to serve; 0: all the model has")

    trips = polled(dtype=str, doc="Protections tripped and not reset, e.g. 'output 2 over-current protection'")

    def create_driver(self, link: Link) -> AimTtiPsu:
        model = SUPPLIES.pick(self.Model)
        driver = AimTtiPsu(link, model, self.Outputs or None)
        for n in driver.outputs:
            add_model_attributes(self, output_attributes(n, model))
        return driver

    def on_connect(self) -> None:
        self.driver.check_model()

    def poll(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        tripped = []
        for n in self.driver.outputs:
            status = self.driver.read_output(n)
            values.update({
                f"voltage{n}": status.voltage, f"current{n}": status.current,
                f"voltageSetpoint{n}": status.voltage_setpoint, f"currentLimit{n}": status.current_limit,
                f"overVoltageProtection{n}": status.ovp, f"overCurrentProtection{n}": status.ocp,
                f"output{n}": status.on,
            })
            tripped += [f"output {n} {trip} (OVP {status.ovp:g} V, OCP {status.ocp:g} A)" for trip in status.trips]
        values["trips"] = "; ".join(tripped)
        return values

    def operating_state(self, values: dict[str, Any]) -> tuple[DevState, str]:
        if values["trips"]:
            return DevState.ALARM, f"Tripped: {values['trips']}; ResetTrip clears it, then switch the output on"
        on = [n for n in self.driver.outputs if values[f"output{n}"]]
        if not on:
            return DevState.OFF, "All outputs off"
        return DevState.ON, "Outputs on: " + ", ".join(
            f"{n} ({values[f'voltage{n}']:.3f} V, {values[f'current{n}']:.3f} A)" for n in on
        )

    @command
    def ResetTrip(self) -> None:
        """Clear every protection trip (TRIPRST); tripped outputs stay off until switched on."""
        self.call_driver(self.driver.reset_trips)


def main() -> None:
    serve(PowerSupply)


if __name__ == "__main__":
    main()
