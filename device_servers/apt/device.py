"""`ThorlabsStage`: a Thorlabs KDC101/TDC001 DC servo cube and its linear stage as a Tango motor.

Everything a stage does comes from `Stage` (Sardana's motor vocabulary, MOVING/ALARM/FAULT, the
state rules); this class says how to reach the cube (APT frames, 115200 baud, RTS/CTS) and
publishes the end of a move the moment the cube reports it, unasked, instead of at the next poll.
"""

from __future__ import annotations

from tango.server import command, device_property

from ..core.link import Link
from ..core.server import serve
from ..core.stage import Motion, Stage
from .driver import APT_FRAMING, COUNTS_PER_MM, AptStage


class ThorlabsStage(Stage):
    """Thorlabs linear stage on a KDC101/TDC001 DC servo controller (APT protocol)."""

    framing = APT_FRAMING
    write_terminator = b""

    BaudRate = device_property(dtype=int, default_value=115200, doc="Serial links: bits per second")
    Handshake = device_property(
        dtype=str, default_value="rtscts", doc="Serial links: none, rtscts (hardware) or xonxoff (software)"
    )
    Step_per_unit = device_property(
        dtype=float, default_value=float(COUNTS_PER_MM),
        doc="Encoder counts per mm of the stage: Position = counts / Step_per_unit",
    )

    def create_driver(self, link: Link) -> AptStage:
        driver = AptStage(link, counts_per_mm=self.Step_per_unit)
        driver.on_motion_end = self._motion_ended
        return driver

    def on_connect(self) -> None:
        self.driver.configure()
        info = self.driver.read_info()
        self.info_stream(f"{info.model} serial {info.serial_number}, firmware {info.firmware}, at {self.Url}")

    @command
    def Identify(self) -> None:
        """Flash the controller's front-panel LED, to find it on the bench."""
        self.call_driver(self.driver.identify)

    def _motion_ended(self, message: str, motion: Motion | None) -> None:
        """MOVE_COMPLETED / MOVE_STOPPED carry the final position: show it now, then let the poll
        loop settle the state at once."""
        if motion is not None:
            self.publish({"Position": motion.position / self.Step_per_unit})
        elif message == "MOT_MOVE_HOMED":
            self.publish({"Homed": True})
        self._wake.set()


def main() -> None:
    serve(ThorlabsStage)


if __name__ == "__main__":
    main()
