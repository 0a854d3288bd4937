"""A GPS receiver streaming NMEA 0183, simulated (device_servers/gps/protocol.py): at each second
of its clock (or each fifth, tenth... at a `--rate` of 5, 10 Hz, as receivers offer) a burst of
GGA, GSV (three parts) and RMC, sent unasked, for a receiver at the GTC on La Palma (28° 45.3' N,
17° 53.5' W, 2267 m) with 8 of 11 satellites in use.

Its clock is the host's plus `--offset` seconds; sentences carry the moment that just began.
What the host sends is ignored. Faults apply to the stream: `garbage` sends random lines,
`checksum` a wrong checksum, `truncate` sentences cut short, `offline` nothing. Control port:
`fix on|off` loses the fix (GGA quality 0, RMC status V, no satellites in use).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import ClassVar

from device_servers.gps.protocol import FRAMING, sentence

from .core import Simulator, _on_off

LATITUDE, LONGITUDE, ALTITUDE = ("2845.3000", "N"), ("01753.5000", "W"), 2267.0
IN_VIEW, IN_USE = 11, 8


class GpsSimulator(Simulator):
    """A GPS receiver streaming NMEA 0183 (GGA, GSV, RMC) once a second."""

    kind = "gps"
    default_port = 15183
    framing = FRAMING
    tick = 0.02
    garbage_end = b"\r\n"

    def __init__(self, *, offset: float = 0.0, rate: float = 1.0, seed: int | None = None, speed: float = 1.0) -> None:
        super().__init__(seed=seed, speed=speed)
        if not 0 < rate <= 10:
            raise ValueError(f"a receiver sends 1 to 10 bursts a second, not {rate}")
        self.offset, self.rate = offset, rate
        self.has_fix = True
        self.bursts = 0
        self._last_tick: int | None = None

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--offset", type=float, default=0.0, help="the receiver's clock minus the host's, s (0)")
        parser.add_argument("--rate", type=float, default=1.0, help="bursts a second, 1 to 10 (1)")

    def handle(self, frame: bytes) -> bytes | None:
        return None  # configuration sentences from the host are not simulated

    def step(self, dt: float) -> None:
        tick = int((time.time() + self.offset) * self.rate)
        if tick != self._last_tick:
            self._last_tick = tick
            self.bursts += 1
            for line in self.burst(tick / self.rate):
                self._send(line)

    def burst(self, moment: float) -> list[bytes]:
        """The sentences of the moment `moment` (Unix time of the receiver's clock)."""
        second, hundredths = int(moment), round(moment % 1 * 100)
        clock = time.strftime("%H%M%S", time.gmtime(second)) + f".{hundredths:02d}"
        date = time.strftime("%d%m%y", time.gmtime(second))
        quality, in_use, status = (1, IN_USE, "A") if self.has_fix else (0, 0, "V")
        where = f"{LATITUDE[0]},{LATITUDE[1]},{LONGITUDE[0]},{LONGITUDE[1]}"
        lines = [sentence(f"GPGGA,{clock},{where},{quality},{in_use:02d},0.9,{ALTITUDE:.1f},M,30.5,M,,")]
        satellites = [(n, 10 + 7 * n % 80, 30 * n % 360, 25 + n) for n in range(1, IN_VIEW + 1)]
        parts = [satellites[i: i + 4] for i in range(0, IN_VIEW, 4)]
        for index, part in enumerate(parts, start=1):
            fields = ",".join(f"{prn:02d},{elevation:02d},{azimuth:03d},{snr:02d}" for prn, elevation, azimuth, snr in part)
            lines.append(sentence(f"GPGSV,{len(parts)},{index},{IN_VIEW:02d},{fields}"))
        lines.append(sentence(f"GPRMC,{clock},{status},{where},0.0,0.0,{date},,,A"))
        return lines

    def _send(self, line: bytes) -> None:
        if self.offline:
            return
        if "checksum" in self.faults:
            line = line[:-4] + (b"00" if line[-4:-2] != b"00" else b"01") + line[-2:]
        if "truncate" in self.faults:
            line = line[: len(line) // 2]
        self.send_unasked(self._garbage(len(line)) if self.garbage else line)

    def spoil(self, fault: str, reply: bytes) -> bytes:
        if fault == "checksum":
            return reply
        return super().spoil(fault, reply)

    def _control_fix(self, state: str) -> None:
        self.has_fix = _on_off(state)

    def _control_help(self) -> str:
        return super()._control_help() + " | fix on|off"

    def clear(self) -> None:
        super().clear()
        self.has_fix = True

    _CONTROL: ClassVar[dict[str, Callable[..., str | None]]] = {
        **Simulator._CONTROL, "fix": _control_fix, "help": _control_help, "clear": clear,
    }
