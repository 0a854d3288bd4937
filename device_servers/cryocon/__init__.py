"""Cryo-Con 24C cryogenic temperature controller: its language (`protocol.py`), the driver
(`driver.py`) and its Tango device."""
