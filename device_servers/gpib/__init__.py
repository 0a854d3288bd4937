"""GPIB bus behind a Prologix GPIB-ETHERNET controller: the driver (`driver.py`) and the `GpibBus` device."""

from .driver import NoReply, Prologix, escape

__all__ = ["NoReply", "Prologix", "escape"]
