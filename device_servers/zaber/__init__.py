"""Zaber stages in the Binary protocol: the driver (`driver.py`) and its Tango device (`device.py`)."""

from .driver import ZaberBinaryStage, ZaberChain
from .protocol import decode, encode

__all__ = ["ZaberBinaryStage", "ZaberChain", "decode", "encode"]
