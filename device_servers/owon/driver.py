"""Driver of an OWON ODP6033 three-output power supply, on the Aim-TTi driver's operations.

Pure Python over a `Link` (the LAN socket, TCP 3000):

    psu = OwonOdp(SerialLink("socket://odp:3000"))
    psu.connect()
    psu.set_voltage(2, 12.0)      # :INST:NSEL 2;:SYST:ERR? then :VOLT 12.000;:VOLT?;:SYST:ERR? -> 12.0
    psu.set_output(2, True)
    psu.read_output(2)            # OutputStatus(voltage_setpoint=12.0, ..., on=True, trips=())

Settings act on the selected output: the driver selects it, holding the link, then writes, reads
back and asks the error queue, so a value the supply refused is an `InstrumentError` in its words.
"""

from __future__ import annotations

from ..core.errors import InstrumentError, RejectedValue, shown
from ..core.link import Link
from ..core.scpi import Quantity, TextInstrument, flag, scpi_error
from ..tti.driver import OutputStatus
from .protocol import ODP6033, TRIPS, OutputRanges


def _numbers(text: str) -> list[float]:
    return [float(field) for field in text.split(",")]


class OwonOdp(TextInstrument):
    """OWON ODP6033: three outputs, selected one at a time for settings and measurements."""

    model = "OWON ODP6033"
    error_query = Quantity(":SYST:ERR?", parse=scpi_error)

    identity = Quantity("*IDN?", parse=str.strip)
    voltage_setpoint = Quantity(":VOLT?", ":VOLT {:.3f}")
    current_limit = Quantity(":CURR?", ":CURR {:.3f}")
    ovp = Quantity(":VOLT:LIM?", ":VOLT:LIM {:.3f}")
    ocp = Quantity(":CURR:LIM?", ":CURR:LIM {:.3f}")
    voltage = Quantity(":MEAS:VOLT?")
    current = Quantity(":MEAS:CURR?")
    on = Quantity(":OUTP?", ":OUTP {:d}", flag)
    protection = Quantity(":OUTP:PROT:ALL?", parse=lambda text: [int(n) for n in _numbers(text)])

    def __init__(self, link: Link, ranges: dict[int, OutputRanges] = ODP6033) -> None:
        super().__init__(link)
        self.ranges = ranges
        self.outputs = tuple(ranges)

    def instrument_error(self, error: tuple[int, str]) -> str | None:
        code, words = error
        return f"error {code}, {words!r}" if code else None

    def check_model(self) -> str:
        """The identity, if it names an ODP6033; else InstrumentError."""
        (identity,) = self.read(self.identity)
        fields = [field.strip().upper() for field in identity.split(",")]
        if len(fields) < 2 or fields[1] != "ODP6033":
            raise InstrumentError(f"the instrument is {shown(identity)}, not an OWON ODP6033")
        return identity

    def read_output(self, output: int) -> OutputStatus:
        """Set-points, measurements, protection levels, on/off and trips of one output, one message."""
        self._range(output)
        setpoint, limit, volts, amps, ovp, ocp, on, trips = self.read(
            self.voltage_setpoint, self.current_limit, self.voltage, self.current, self.ovp, self.ocp, self.on,
            self.protection, after=[f":INST:NSEL {output}"],
        )
        tripped = (TRIPS[trips[output - 1]],) if trips[output - 1] in TRIPS else ()
        return OutputStatus(setpoint, limit, volts, amps, on, ovp, ocp, 0, tripped)

    def set_voltage(self, output: int, volts: float) -> float:
        return self._write(output, self.voltage_setpoint, self._range(output).voltage.check("voltage set-point", volts))

    def set_current_limit(self, output: int, amps: float) -> float:
        return self._write(output, self.current_limit, self._range(output).current.check("current limit", amps))

    def set_ovp(self, output: int, volts: float) -> float:
        return self._write(output, self.ovp, self._range(output).ovp.check("over-voltage protection", volts))

    def set_ocp(self, output: int, amps: float) -> float:
        return self._write(output, self.ocp, self._range(output).ocp.check("over-current protection", amps))

    def set_output(self, output: int, on: bool) -> bool:
        """Switch the output on or off; returns its state read back (off again if it trips at once)."""
        return self._write(output, self.on, bool(on))

    def reset_trips(self) -> None:
        """Clear every protection trip; the outputs that tripped stay off."""
        self.send(":OUTP:PROT:CLE")

    def _write(self, output: int, quantity: Quantity, value: object) -> object:
        with self.link.lock:
            self.send(f":INST:NSEL {output}")
            return self.write(quantity, value)

    def _range(self, output: int) -> OutputRanges:
        if output not in self.ranges:
            raise RejectedValue(f"output {output} does not exist: the {self.model} has outputs 1 to {len(self.ranges)}")
        return self.ranges[output]
