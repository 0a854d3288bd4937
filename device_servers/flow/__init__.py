"""Coolant flow: the Honeywell Minitrend recorder's driver (`driver.py`) and the `FlowMonitor` device."""

from .driver import ALARM_BITS, PEN_ALARMS, PEN_VALUES, PENS, Minitrend, PenStatus

__all__ = ["ALARM_BITS", "PENS", "PEN_ALARMS", "PEN_VALUES", "Minitrend", "PenStatus"]
