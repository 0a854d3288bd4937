"""Meerstetter TEC controllers in the MeCom protocol: the driver (`driver.py`) and its Tango device (`device.py`)."""
