"""Zaber stages in the Binary protocol: the driver (`driver.py`) and its Tango device (`device.py`)."""

from .driver import ZaberBinaryStage, ZaberChain, decode, encode

__all__ = ["ZaberBinaryStage", "ZaberChain", "decode", "encode"]
