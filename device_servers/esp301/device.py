"""`NewportAxis`: one axis of a Newport ESP301 motion controller as a Tango motor (a lens arm).

The three axes are three devices (`lab/esp301/1`, `/2`, `/3`) on one controller and one serial
line: devices in one server process with one `Url` share the line (device_servers/core/line.py)
and its lock, so a reply always reaches the axis that asked, and one axis's Init or FAULT leaves
the others moving. Everything a motor does comes from `Stage`; this adds the
motor power (`motorOn`), the axis number and the home search mode.
"""

from __future__ import annotations

from typing import Any

from tango import DevState
from tango.server import device_property

from ..core.framing import Lines
from ..core.hardware import writable
from ..core.link import Link
from ..core.server import serve
from ..core.stage import Stage
from .driver import HOME_MODES, Esp301, Esp301Axis


class NewportAxis(Stage):
    """One axis of a Newport ESP301 (mm); `Abort` is the controller's AB: it stops every axis."""

    Axis = device_property(dtype=int, default_value=1, doc="The controller's axis this device drives: 1, 2 or 3")
    HomeSearchMode = device_property(
        dtype=int, default_value=1,
        doc="OR search mode of Home: " + "; ".join(f"{mode} {what}" for mode, what in HOME_MODES.items()),
    )
    BaudRate = device_property(dtype=int, default_value=19200, doc="Serial links: bits per second")
    Handshake = device_property(
        dtype=str, default_value="rtscts", doc="Serial links: none, rtscts (hardware) or xonxoff (software)"
    )

    framing = Lines(b"\r\n")
    write_terminator = b"\r"

    motorOn = writable(
        dtype=bool, writes=Esp301Axis.set_motor,
        doc="Motor power (MO/MF); off after Abort, and a move is refused while it is off",
    )

    def create_driver(self, link: Link) -> Esp301Axis:
        axis = Esp301.on(link).axis(self.Axis)
        axis.home_mode = self.HomeSearchMode
        return axis

    def on_connect(self) -> None:
        self.driver.configure(motor_on=True)

    def poll(self) -> dict[str, Any]:
        values = super().poll()
        values["motorOn"] = self.driver.motor_on
        return values

    def operating_state(self, values: dict[str, Any]) -> tuple[DevState, str]:
        state, status = super().operating_state(values)
        if state == DevState.ON and not values["motorOn"]:
            return DevState.OFF, f"Motor off at {values['Position']:.4f} mm: set motorOn to move"
        return state, status


def main() -> None:
    serve(NewportAxis)


if __name__ == "__main__":
    main()
