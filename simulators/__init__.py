"""Instrument simulators: each speaks its instrument's protocol byte for byte over a physics model.

`python -m simulators KIND --port N` serves one; `run_in_thread` serves one inside a test.
"""

from .apt import AptSimulator
from .archon import ArchonSimulator
from .core import LineProtocolSimulator, Running, Simulator, run_in_thread
from .cryocon import CryoConSimulator
from .esp301 import Esp301Simulator
from .huber import HuberSimulator
from .keithley import Keithley487Simulator, Keithley6485Simulator
from .mecom import MeComSimulator
from .minitrend import MinitrendSimulator
from .pdr900 import Pdr900Simulator
from .prologix import PrologixSimulator
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
        ArchonSimulator,
    )
}

__all__ = [
    "SIMULATORS",
    "AptSimulator",
    "ArchonSimulator",
    "CryoConSimulator",
    "Esp301Simulator",
    "HuberSimulator",
    "Keithley487Simulator",
    "Keithley6485Simulator",
    "LineProtocolSimulator",
    "MeComSimulator",
    "MinitrendSimulator",
    "Pdr900Simulator",
    "PrologixSimulator",
    "Running",
    "Simulator",
    "Tpg361Simulator",
    "TtiSimulator",
    "ZaberSimulator",
    "run_in_thread",
]
