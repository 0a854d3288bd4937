"""Vacuum gauges, one vocabulary (pressure in mbar, sensor status, the unit the gauge shows): the
Pfeiffer TPG 361 and MKS PDR900 drivers and the `PressureGauge` Tango device."""
