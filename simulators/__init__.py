"""Instrument simulators: each speaks its instrument's protocol byte for byte over a physics model.

`python -m simulators KIND --port N` serves one; `run_in_thread` serves one inside a test.
"""

from .core import LineProtocolSimulator, Running, Simulator, run_in_thread
from .cryocon import CryoConSimulator

#: The simulators `python -m simulators KIND` knows, by kind.
SIMULATORS: dict[str, type[Simulator]] = {
    simulator.kind: simulator for simulator in (CryoConSimulator,)
}

__all__ = ["SIMULATORS", "CryoConSimulator", "LineProtocolSimulator", "Running", "Simulator", "run_in_thread"]
