"""Huber temperature control units (Unichiller) over the LAI protocol: the protocol (`protocol.py`),
the driver and the `Chiller` device."""
