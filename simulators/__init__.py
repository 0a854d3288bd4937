"""Instrument simulators: each speaks its instrument's protocol byte for byte over a physics model.

`python -m simulators KIND --port N` serves one; `run_in_thread` serves one inside a test.
"""

from .afg31000 import Afg31000Simulator
from .apt import AptSimulator
from .archon import ArchonSimulator
from .arduino import ArduinoSimulator
from .core import LineProtocolSimulator, Running, Simulator, run_in_thread
from .cryocon import CryoConSimulator
from .epz import EpzSimulator
from .esp301 import Esp301Simulator
from .gps import GpsSimulator
from .hp33120a import Hp33120aSimulator
from .huber import HuberSimulator
from .keithley import Keithley487Simulator, Keithley6485Simulator
from .mecom import MeComSimulator
from .minitrend import MinitrendSimulator
from .monochromator import CornerstoneSimulator
from .ngc import NgcSimulator
from .owon import OwonSimulator
from .pdr900 import Pdr900Simulator
from .prologix import PrologixSimulator
from .standa import StandaSimulator
from .telescope import TelescopeSimulator
from .tpg361 import Tpg361Simulator
from .tti import TtiSimulator
from .zaber import ZaberSimulator

#: The simulators `python -m simulators KIND` knows, by kind.
SIMULATORS: dict[str, type[Simulator]] = {
    simulator.kind: simulator
    for simulator in (
        CryoConSimulator,
        AptSimulator,
        ZaberSimulator,
        Esp301Simulator,
        PrologixSimulator,
        Keithley6485Simulator,
        Keithley487Simulator,
        MeComSimulator,
        Tpg361Simulator,
        Pdr900Simulator,
        MinitrendSimulator,
        HuberSimulator,
        TtiSimulator,
        StandaSimulator,
        Hp33120aSimulator,
        Afg31000Simulator,
        OwonSimulator,
        ArduinoSimulator,
        GpsSimulator,
        EpzSimulator,
        CornerstoneSimulator,
        ArchonSimulator,
        NgcSimulator,
        TelescopeSimulator,
    )
}

__all__ = [
    "SIMULATORS",
    "Afg31000Simulator",
    "AptSimulator",
    "ArchonSimulator",
    "ArduinoSimulator",
    "CornerstoneSimulator",
    "CryoConSimulator",
    "EpzSimulator",
    "Esp301Simulator",
    "GpsSimulator",
    "Hp33120aSimulator",
    "HuberSimulator",
    "Keithley487Simulator",
    "Keithley6485Simulator",
    "LineProtocolSimulator",
    "MeComSimulator",
    "MinitrendSimulator",
    "NgcSimulator",
    "OwonSimulator",
    "Pdr900Simulator",
    "PrologixSimulator",
    "Running",
    "Simulator",
    "StandaSimulator",
    "TelescopeSimulator",
    "Tpg361Simulator",
    "TtiSimulator",
    "ZaberSimulator",
    "run_in_thread",
]
