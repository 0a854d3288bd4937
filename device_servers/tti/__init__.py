"""Aim-TTi programmable power supplies (MX100QP, PL-P series): their command set (`protocol.py`),
the driver and the `PowerSupply` device."""
