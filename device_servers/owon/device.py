"""`OwonSupply`: an OWON ODP6033 three-output supply as a Tango device (`lab/psu/2`), on the
`PowerSupply` vocabulary of the Aim-TTi (device_servers/tti/device.py), whose poll, states and
`ResetTrip` it inherits.

Per output n: `voltage<n>` and `current<n>` (measured), `voltageSetpoint<n>`, `currentLimit<n>`,
`overVoltageProtection<n>`, `overCurrentProtection<n>` (within each output's ranges: outputs 1
and 2 up to 60 V, output 3 up to 6 V) and `output<n>`. A protection trip is ALARM saying which
output and which protection; `ResetTrip` clears it (the output stays off until switched on).
"""

from __future__ import annotations

from typing import Any

from tango.server import device_property

from ..core.link import Link
from ..core.models import add_model_attributes
from ..core.server import serve
from ..tti.device import PowerSupply
from .driver import OwonOdp
from .protocol import ODP6033, OutputRanges


def output_attributes(n: int, ranges: OutputRanges) -> dict[str, dict[str, Any]]:
    """The attributes of output `n`, named as the Aim-TTi's, by name, as `add_polled_attribute` takes them."""

    def reading(unit: str, what: str) -> dict[str, Any]:
        return {"dtype": float, "unit": unit, "format": "%6.3f", "abs_change": 0.001, "doc": f"Output {n} {what}"}

    def setting(operation: Any, limits: Any, what: str) -> dict[str, Any]:
        return {"dtype": float, "format": "%6.3f", "writes": (operation, n), "limits": limits, "doc": f"Output {n} {what}"}

    return {
        f"voltage{n}": reading("V", "voltage, measured"),
        f"current{n}": reading("A", "current, measured"),
        f"voltageSetpoint{n}": setting(OwonOdp.set_voltage, ranges.voltage, "voltage set-point"),
        f"currentLimit{n}": setting(OwonOdp.set_current_limit, ranges.current, "current limit (constant current above it)"),
        f"overVoltageProtection{n}": setting(OwonOdp.set_ovp, ranges.ovp, "over-voltage protection: the output switches off above it"),
        f"overCurrentProtection{n}": setting(OwonOdp.set_ocp, ranges.ocp, "over-current protection: the output switches off above it"),
        f"output{n}": {"dtype": bool, "writes": (OwonOdp.set_output, n), "doc": f"Output {n} on"},
    }


class OwonSupply(PowerSupply):
    """OWON ODP6033: voltage and current of three outputs, protections, trips."""

    Model = device_property(dtype=str, default_value="ODP6033", doc="The instrument's model (ODP6033)")

    def create_driver(self, link: Link) -> OwonOdp:
        ranges = {n: ODP6033[n] for n in list(ODP6033)[: self.Outputs or len(ODP6033)]}
        driver = OwonOdp(link, ranges)
        for n, output_ranges in ranges.items():
            add_model_attributes(self, output_attributes(n, output_ranges))
        return driver


def main() -> None:
    serve(OwonSupply)


if __name__ == "__main__":
    main()
