"""A vacuum chamber that a pump takes down from atmosphere, shared by the gauge simulators.

The pressure relaxes with the pump's time constant `tau` towards an equilibrium set by the gas
load: the chamber's outgassing, which falls slowly with pumping time (hence a fast exponential
from 1000 mbar, then a slow tail towards ~1e-6 mbar), plus a leak when one is opened from the
control port. Readings carry a small multiplicative noise from the seeded RNG.

Control port, besides the common faults::

    leak on|off                       open or close a leak: the pressure rises towards ~0.1 mbar
    sensor ok|error|off|none          the gauge's sensor works, fails, is switched off, is absent
    no sensor                         the same as `sensor none`
                                      (a gauge refuses the states its protocol cannot report)
    pressure MBAR                     jump to this pressure (a vented or pumped chamber)
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import ClassVar

from .core import Simulator, _on_off

ATMOSPHERE_MBAR = 1000.0
BASE_MBAR = 5e-7  # what the pump reaches with no gas load at all
OUTGASSING_MBAR = 2e-4  # the outgassing's equilibrium pressure at the start of pumping...
OUTGASSING_TIME_S = 60.0  # ...falling as 1 / (1 + t / this)
LEAK_MBAR = 0.1  # the equilibrium with a leak open
NOISE = 0.002  # relative, one sigma
#: The sensor faults the control port sets, by their control-port name.
SENSOR_FAULTS = ("ok", "error", "off", "none")


class VacuumSimulator(Simulator):
    """A gauge on a pumped chamber; the instrument's protocol is the subclass's."""

    #: Sensor faults this gauge can report (the rest are refused on the control port).
    sensor_faults: ClassVar[tuple[str, ...]] = SENSOR_FAULTS

    def __init__(
        self, *, tau: float = 20.0, pressure: float = ATMOSPHERE_MBAR, seed: int | None = None, speed: float = 1.0
    ) -> None:
        super().__init__(seed=seed, speed=speed)
        self.tau = tau
        self.pressure = pressure  # mbar, the chamber's true pressure
        self.pumping_time = 0.0  # s, how long the chamber has been under vacuum
        self.leak = False
        self.sensor = "ok"

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--tau", type=float, default=20.0, help="pump-down time constant, s (20)")
        parser.add_argument(
            "--pressure", type=float, default=ATMOSPHERE_MBAR, help="pressure at start, mbar (1000)"
        )

    # -- physics ---------------------------------------------------------------------------------

    def equilibrium(self) -> float:
        """Where the pressure is heading now, mbar."""
        outgassing = OUTGASSING_MBAR / (1.0 + self.pumping_time / OUTGASSING_TIME_S)
        return BASE_MBAR + outgassing + (LEAK_MBAR if self.leak else 0.0)

    def step(self, dt: float) -> None:
        self.pumping_time += dt
        target = self.equilibrium()
        self.pressure = target + (self.pressure - target) * math.exp(-dt / self.tau)

    def measured(self) -> float:
        """The pressure as the sensor sees it now (noisy; frozen if `freeze pressure`), mbar."""
        noisy = self.pressure * (1.0 + self.random.gauss(0.0, NOISE))
        return float(self.reading("pressure", noisy))

    def readings(self) -> dict[str, object]:
        return {"pressure": self.pressure}

    # -- control port ----------------------------------------------------------------------------

    def _control_leak(self, state: str) -> None:
        with self.lock:
            self.advance()
            self.leak = _on_off(state)

    def _control_sensor(self, state: str) -> None:
        state = state.lower()
        if state not in SENSOR_FAULTS:
            raise ValueError(f"sensor takes {'|'.join(SENSOR_FAULTS)}, not {state!r}")
        if state not in self.sensor_faults:
            raise ValueError(
                f"the {self.kind} gauge reports no 'sensor {state}'; it reports {'|'.join(self.sensor_faults)}"
            )
        self.sensor = state

    def _control_no(self, what: str) -> None:
        if what.lower() != "sensor":
            raise ValueError(f"'no {what}' is not a command; did you mean 'no sensor'?")
        self._control_sensor("none")

    def _control_pressure(self, mbar: str) -> None:
        value = float(mbar)
        if not 0.0 < value <= 2000.0:
            raise ValueError(f"pressure must be above 0 and at most 2000 mbar, not {mbar}")
        with self.lock:
            self.pressure = value

    def _control_help(self) -> str:
        no_sensor = " | no sensor" if "none" in self.sensor_faults else ""
        return (
            f"{super()._control_help()} | leak on|off | sensor {'|'.join(self.sensor_faults)}{no_sensor}"
            " | pressure MBAR"
        )

    def _control_status(self) -> str:
        return (
            f"{super()._control_status()} pressure={self.pressure:.3e} leak={'on' if self.leak else 'off'} "
            f"sensor={self.sensor}"
        )

    def clear(self) -> None:
        super().clear()
        with self.lock:
            self.leak = False
            self.sensor = "ok"

    _CONTROL: ClassVar[dict[str, Callable[..., str | None]]] = {
        **Simulator._CONTROL,
        "clear": clear,
        "help": _control_help,
        "status": _control_status,
        "leak": _control_leak,
        "sensor": _control_sensor,
        "no": _control_no,
        "pressure": _control_pressure,
    }
