"""The telescope's link, its exchanges written literally against the simulator: offsets, a move
that settles, focus, the dome's weather, refusals in the link's words."""

from __future__ import annotations

import pytest

from simulators import run_in_thread
from simulators.telescope import TelescopeSimulator, dew_point
from tangolab.scripting import wait_until
from tests.wire import Wire


def test_the_link_exchanges_and_a_move_that_settles():
    sim = TelescopeSimulator(seed=1)
    with run_in_thread(sim) as running, Wire(running.port) as wire:
        assert wire.ask(b"OFFSET?\n") == b"OK 0.000 0.000\n"
        assert wire.ask(b"INPOS?\n") == b"OK 1\n"
        assert wire.ask(b"OFFSET 3 -1.5\n") == b"OK\n"
        assert wire.ask(b"INPOS?\n") == b"OK 0\n"
        assert wire.ask(b"OFFSET 4000 0\n") == b"ERR the RA offset '4000' is out of range: allowed -3600 to 3600 arcsec\n"
        assert wire.ask(b"FOCUS 2.5\n") == b"OK\n"
        assert wire.ask(b"FOCUS?\n") == b"OK 2.500\n"
        assert wire.ask(b"FOCUS\n") == b"ERR wrong number of arguments to FOCUS\n"
        assert wire.ask(b"SLEW 1 2\n") == b"ERR unknown request SLEW (known: OFFSET, OFFSET?, INPOS?, FOCUS, FOCUS?, WEATHER?)\n"
        wait_until(lambda: wire.ask(b"INPOS?\n") == b"OK 1\n", 10, what="in position")
        assert wire.ask(b"OFFSET?\n") == b"OK 3.000 -1.500\n"
        humidity, dew, air = (float(word) for word in wire.ask(b"WEATHER?\n").split()[1:])
        assert dew == pytest.approx(dew_point(air, humidity), abs=0.01) and dew < air


def test_dew_point_by_the_magnus_formula():
    assert dew_point(20.0, 100.0) == pytest.approx(20.0, abs=1e-6)
    assert dew_point(20.0, 50.0) == pytest.approx(9.26, abs=0.05)  # tables give 9.3 degC
