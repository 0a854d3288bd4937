"""Standa 8SMC4/8SMC5 stepper controllers (XIMC binary protocol): driver and Tango device."""
