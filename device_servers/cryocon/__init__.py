"""Cryo-Con 24C cryogenic temperature controller: the driver (`driver.py`) and its Tango device."""

from .driver import (
    GAIN_LIMITS,
    HEATER_RANGES,
    INPUTS,
    LOOP_TYPES,
    LOOPS,
    MANUAL_POWER_LIMITS,
    RAMP_RATE_LIMITS,
    SETPOINT_LIMITS,
    CryoCon24C,
    CryoConStatus,
    Limits,
    LoopStatus,
)

__all__ = [
    "GAIN_LIMITS",
    "HEATER_RANGES",
    "INPUTS",
    "LOOPS",
    "LOOP_TYPES",
    "MANUAL_POWER_LIMITS",
    "RAMP_RATE_LIMITS",
    "SETPOINT_LIMITS",
    "CryoCon24C",
    "CryoConStatus",
    "Limits",
    "LoopStatus",
]
