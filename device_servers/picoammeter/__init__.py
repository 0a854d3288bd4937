"""Keithley 6485 and 487 picoammeters: drivers and the `Picoammeter` Tango device."""
