"""Thorlabs APT DC servo controllers (KDC101, TDC001) with a linear stage: driver and Tango device."""

from .driver import AptStage, HardwareInfo
from .protocol import APT_FRAMING, COUNTS_PER_MM, MESSAGES, apt_data_length, decode, encode

__all__ = ["APT_FRAMING", "COUNTS_PER_MM", "MESSAGES", "AptStage", "HardwareInfo", "apt_data_length", "decode", "encode"]
