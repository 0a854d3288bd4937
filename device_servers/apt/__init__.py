"""Thorlabs APT DC servo controllers (KDC101, TDC001) with a linear stage: driver and Tango device."""
