"""A CCD as the camera simulators make it: the charge of an exposure (bias, dark current that
doubles every `DARK_DOUBLING_K` of the CCD temperature, a light source's flux, Poisson noise,
cosmic rays in proportion to the exposure time, read noise, overscan columns that hold bias and
read noise only), and its temperature, fixed or followed from a Tango attribute (the Peltier
controller that cools it), so that the dark level a lab measures follows the cooling.
"""

from __future__ import annotations

import argparse
import threading
from collections.abc import Callable
from typing import ClassVar

import numpy as np

from .core import Simulator

BIAS_ADU = 1000.0
GAIN_E_PER_ADU = 1.5
READ_NOISE_E = 4.0
#: Dark current at -40 degC, electrons per pixel per second, and the warming that doubles it.
DARK_AT_MINUS_40 = 0.05
DARK_DOUBLING_K = 6.0
#: Cosmic-ray hits per million pixels per second of exposure, and their charge range (electrons).
COSMICS_PER_MPIX_S = 20.0
COSMIC_E = (500.0, 8000.0)
#: The longest a read of the CCD temperature's attribute waits, seconds.
FOLLOW_TIMEOUT_S = 1.0


def dark_rate(celsius: float) -> float:
    """Dark current, electrons per pixel per second, at this CCD temperature."""
    return DARK_AT_MINUS_40 * 2.0 ** ((celsius + 40.0) / DARK_DOUBLING_K)


def make_image(
    rng: np.random.Generator, width: int, height: int, overscan: int, seconds: float, celsius: float,
    light: float,
) -> np.ndarray:
    """One read-out frame in ADU (uint16, height x width); the last `overscan` columns hold no charge."""
    columns = max(width - overscan, 0)
    electrons = np.zeros((height, width))
    electrons[:, :columns] = rng.poisson((dark_rate(celsius) + light) * seconds, (height, columns))
    hits = rng.poisson(COSMICS_PER_MPIX_S * height * columns / 1e6 * seconds) if columns else 0
    if hits:
        rows, cols = rng.integers(0, height, hits), rng.integers(0, columns, hits)
        charge = rng.uniform(*COSMIC_E, hits)
        np.add.at(electrons, (rows, cols), charge)
        np.add.at(electrons, (rows, np.minimum(cols + 1, columns - 1)), charge / 4)  # a short track
    adu = BIAS_ADU + (electrons + rng.normal(0.0, READ_NOISE_E, (height, width))) / GAIN_E_PER_ADU
    return np.clip(np.rint(adu), 0, 65535).astype("<u2")



class CcdTemperature(Simulator):
    """A simulator of a CCD: its charge made with `rng`, under `light`, at `ccd_temperature`, or
    at what `temperature_attribute` reads (once a second, while it serves)."""

    def __init__(
        self, *, ccd_temperature: float = -40.0, temperature_attribute: str = "", light: float = 0.0,
        seed: int | None = None, speed: float = 1.0,
    ) -> None:
        super().__init__(seed=seed, speed=speed)
        self.rng = np.random.default_rng(seed)
        self.ccd_temperature = ccd_temperature
        self.temperature_attribute = temperature_attribute
        self.light = light

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--ccd-temperature", type=float, default=-40.0,
                            help="CCD temperature, degC, when no attribute gives it (-40)")
        parser.add_argument("--temperature-attribute", default="",
                            help="Tango attribute read once a second as the CCD temperature, degC "
                            "(e.g. lab/tec/1/objectTemperature); none: the fixed temperature")
        parser.add_argument("--light", type=float, default=0.0,
                            help="light on each pixel, electrons a second (0: dark)")

    async def serve(self, *args: object, **kwargs: object) -> None:
        """Serve, following the CCD temperature's attribute meanwhile if one is named; the
        follower is stopped and joined before serving ends, so that no thread is inside the
        Tango client library as the process exits (cppTango then aborts it)."""
        if not self.temperature_attribute:
            return await super().serve(*args, **kwargs)
        stop = threading.Event()
        follower = threading.Thread(target=self._follow_temperature, args=(self.temperature_attribute, stop),
                                    name="archon CCD temperature", daemon=True)
        follower.start()
        try:
            return await super().serve(*args, **kwargs)
        finally:
            stop.set()
            follower.join(FOLLOW_TIMEOUT_S + 1)

    def _follow_temperature(self, name: str, stop: threading.Event) -> None:
        """Read the CCD temperature from a Tango attribute once a second; keep the last on failure."""
        import tango  # only for a simulator coupled to a lab

        proxy = None
        while not stop.wait(1.0):
            try:
                if proxy is None:
                    proxy = tango.AttributeProxy(name)
                    proxy.get_device_proxy().set_timeout_millis(int(FOLLOW_TIMEOUT_S * 1000))
                value = proxy.read().value
                with self.lock:
                    self.ccd_temperature = float(self.reading("temperature", value))
            except Exception:  # noqa: BLE001 - the lab may not be up yet: keep the last value
                proxy = None

    def _control_light(self, flux: str) -> None:
        value = float(flux)
        if not 0 <= value < 1e7:
            raise ValueError(f"light must be 0 to 1e7 electrons a second, not {flux}")
        self.light = value

    def _control_temperature(self, celsius: str) -> None:
        value = float(celsius)
        if not -200 <= value <= 100:
            raise ValueError(f"temperature must be -200 to 100 degC, not {celsius}")
        self.ccd_temperature = value

    _CONTROL: ClassVar[dict[str, Callable[..., str | None]]] = {
        **Simulator._CONTROL, "light": _control_light, "temperature": _control_temperature,
    }
