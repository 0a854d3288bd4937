"""Zaber stages in the Binary protocol: the driver (`driver.py`) and its Tango device (`device.py`)."""
