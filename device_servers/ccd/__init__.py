"""A CCD head's health: its Peltier channel, vacuum gauge and coolant pen rolled into one (`health.py`
holds the rules, `device.py` the `CcdHead` Tango device that watches the sources' events)."""
