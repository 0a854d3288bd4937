"""Aim-TTi programmable power supplies (MX100QP, PL-P series): the driver and the `PowerSupply` device."""

from .driver import MODELS, AimTtiPsu, Model, OutputStatus

__all__ = ["MODELS", "AimTtiPsu", "Model", "OutputStatus"]
