"""Coolant flow: the Honeywell Minitrend recorder's driver (`driver.py`) and the `FlowMonitor` device."""
