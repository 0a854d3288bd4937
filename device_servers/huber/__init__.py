"""Huber temperature control units (Unichiller) over the LAI protocol: the driver and the `Chiller` device."""

from .driver import MODES, SETPOINT_LIMITS, HuberChiller, HuberStatus

__all__ = ["MODES", "SETPOINT_LIMITS", "HuberChiller", "HuberStatus"]
