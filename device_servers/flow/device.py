"""`FlowMonitor`: coolant flows recorded by a Honeywell Minitrend, as a Tango device (`lab/flow/1`).

Six of the recorder's pens (by default pens 0, 1, 2, 3, 8 and 9) are `pen1` … `pen6` in l/min,
read with their alarm words in two Modbus requests per poll. The device is ALARM, naming the
pen, when a flow is below its attribute's `min_alarm` (0.4 l/min unless changed, e.g. in Jive)
or when the recorder reports one of the pen's own alarms. A request the recorder refuses (a
Modbus exception reply) leaves the values it would have read INVALID with the exception in the
Status (ALARM: a flow without a value) on the same connection; FAULT when the recorder cannot be
reached or answers garbage, until it answers again.
"""

from __future__ import annotations

from typing import Any

from tango import DevState
from tango.server import device_property

from ..core.hardware import HardwareDevice, Refused, polled
from ..core.modbus_link import ModbusLink
from ..core.server import serve
from .driver import PENS, Minitrend

#: Below this flow (l/min) a pen is in alarm, unless its attribute's min_alarm is changed.
MIN_FLOW = 0.4
SHOWN_PENS = 6


def pen(n: int) -> polled:
    return polled(
        dtype=float, unit="l/min", format="%5.2f", min_value=0.0, min_alarm=MIN_FLOW,
        abs_change=0.05, archive_abs_change=0.1,
        doc=f"Coolant flow on the recorder pen at place {n} of the Pens property; "
        "ALARM below min_alarm, INVALID when the recorder has no valid value",
    )


def pen_alarms(n: int) -> polled:
    return polled(
        dtype=int, min_value=0, max_value=0x3F,
        doc=f"The recorder's own six alarms on pen{n}: bit 0 is alarm 1 ... bit 5 alarm 6",
    )


class FlowMonitor(HardwareDevice):
    """Coolant flows on six pens of a Honeywell Minitrend recorder, over Modbus TCP."""

    Url = device_property(
        dtype=str, mandatory=True,
        doc="The recorder: modbus://<host>[:<port, 502>][/<unit, 1>], e.g. modbus://192.168.1.30:502/1",
    )
    Pens = device_property(
        dtype=(int,), default_value=[0, 1, 2, 3, 8, 9],
        doc="The six recorder pens (0 to 15, as numbered in its register map) shown as pen1 … pen6",
    )
    WordOrder = device_property(
        dtype=str, default_value="big",
        doc="Order of the two registers of a pen's float32: big (high word first, the recorder's) or little",
    )

    pen1, pen2, pen3, pen4, pen5, pen6 = (pen(n) for n in range(1, SHOWN_PENS + 1))
    pen1Alarms, pen2Alarms, pen3Alarms, pen4Alarms, pen5Alarms, pen6Alarms = (
        pen_alarms(n) for n in range(1, SHOWN_PENS + 1)
    )

    def create_driver(self, link: ModbusLink) -> Minitrend:
        pens = list(self.Pens)
        if len(pens) != SHOWN_PENS or any(p not in PENS for p in pens):
            raise ValueError(f"Pens must name {SHOWN_PENS} recorder pens of 0 to 15, not {pens}")
        return Minitrend(link, word_order=self.WordOrder.strip().lower())

    def poll(self) -> dict[str, Any]:
        pens = list(self.Pens)
        with self.link.lock:
            flows = Refused.of(self.driver.read_pens, pens)
            alarms = Refused.of(self.driver.read_alarms, pens)
        values: dict[str, Any] = {}
        for n, number in enumerate(pens, 1):
            values[f"pen{n}"] = flows if isinstance(flows, Refused) else flows[number]
            values[f"pen{n}Alarms"] = alarms if isinstance(alarms, Refused) else alarms[number]
        return values

    def operating_state(self, values: dict[str, Any]) -> tuple[DevState, str]:
        problems = []
        for n, number in enumerate(self.Pens, 1):
            name = f"pen{n}"
            flow, alarms, level = values[name], values[f"{name}Alarms"], self.alarm_level(name)
            if flow is None:
                problems.append(f"{name} (recorder pen {number}) has no valid value")
            elif level is not None and flow < level:
                problems.append(f"{name} flow {flow:.2f} l/min is below {level:g} l/min")
            if alarms is not None and (on := [bit + 1 for bit in range(6) if alarms >> bit & 1]):
                listed = ", ".join(map(str, on))
                problems.append(f"{name} (recorder pen {number}) alarm {listed} on")
        if problems:
            return DevState.ALARM, "; ".join(problems)
        return DevState.ON, f"{SHOWN_PENS} flows above their alarm levels"

    def alarm_level(self, name: str) -> float | None:
        """The attribute's min_alarm as configured now (Jive can change it), or None if unset."""
        text = self.get_device_attr().get_attr_by_name(name).get_properties().min_alarm
        try:
            return float(text)
        except ValueError:  # "Not specified"
            return None


def main() -> None:
    serve(FlowMonitor)


if __name__ == "__main__":
    main()
