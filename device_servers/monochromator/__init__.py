"""Newport Cornerstone 130B/260B monochromators: their RS-232 command set (`protocol.py`), the
driver and the `Monochromator` device."""
