"""Keithley 6485 and 487 picoammeters: their languages (`keithley6485_protocol.py`,
`keithley487_protocol.py`), the drivers and the `Picoammeter` Tango device."""
