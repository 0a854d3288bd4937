"""The NGC control server's exchanges, against its simulator: the commands of the reference
(`start|stop|abort|online|off|standby|reset`, `setup PAR val`, `cldc 0 enable`, `seq 0 start`,
`status [PAR]`, `dbRead "<alias>ngcircon_ircam1:<attr>"`) written literally, refusals as `NOK`
lines, the states OFF/LOADED/STANDBY/ONLINE, a run's count-down and frames, and the frame
transfer in definite-length blocks. Most exchanges go straight to `handle` with the simulated
clock moved by `step`, so that times are exact."""

from __future__ import annotations

import numpy as np
import pytest

from device_servers.core.framing import block_data
from device_servers.ngc.protocol import REPLIES
from simulators import run_in_thread
from simulators.ccd import BIAS_ADU
from simulators.ngc import NgcSimulator
from tangolab.scripting import wait_until
from tests.wire import Wire


@pytest.fixture
def sim() -> NgcSimulator:
    return NgcSimulator(seed=2, ccd_temperature=20.0)


def ready(sim: NgcSimulator) -> None:
    """ONLINE, clocks and sequencer on, a 16 x 8 frame (4 overscan) of 0.5 s, 2 frames a run."""
    for request in (b"online\n", b"cldc 0 enable\n", b"seq 0 start\n",
                    b"setup DET.WIN1.NX 16 DET.WIN1.NY 8 DET.WIN1.OVSCX 4 DET.SEQ1.DIT 0.5 DET.NDIT 2\n"):
        assert sim.handle(request) == b"OK\n", request


def test_states_move_as_the_commands_say_and_status_tells_them(sim):
    assert sim.handle(b"status\n") == b"OK LOADED\n"
    assert sim.handle(b"standby\n") == b"OK\n"
    assert sim.handle(b"status\n") == b"OK STANDBY\n"
    assert sim.handle(b"online\n") == b"OK\n"
    assert sim.handle(b'dbRead "<alias>ngcircon_ircam1:system.stateName"\n') == b"OK system.stateName = ONLINE\n"
    assert sim.handle(b"off\n") == b"OK\n"
    assert sim.handle(b"status\n") == b"OK LOADED\n"
    assert sim.handle(b"exit\n") == b"OK\n"
    assert sim.handle(b"status\n") == b"OK OFF\n"
    assert sim.handle(b"online\n") == b"NOK online refused: the control server is OFF (run off to load it)\n"
    assert sim.handle(b"off\n") == b"OK\n"
    assert sim.handle(b"reset\n") == b"OK\n"
    assert sim.handle(b"status\n") == b"OK LOADED\n"


def test_setup_and_status_of_a_parameter_and_refusals_that_change_nothing(sim):
    assert sim.handle(b"setup DET.SEQ1.DIT 5\n") == b"OK\n"
    assert sim.handle(b"status DET.SEQ1.DIT\n") == b"OK 5\n"
    assert sim.handle(b"setup DET.NDIT 0 DET.SEQ1.DIT 7\n") == b"NOK setup refused: DET.NDIT must be 1 to 9999, not 0\n"
    assert sim.handle(b"status DET.SEQ1.DIT\n") == b"OK 5\n"  # all or nothing
    assert sim.handle(b"setup DET.READ.CURNAME turbo\n") == (
        b"NOK setup refused: DET.READ.CURNAME must be one of slow, fast, not 'turbo'\n")
    assert sim.handle(b"setup DET.FOO 1\n").startswith(b"NOK setup refused: unknown parameter DET.FOO (known: ")
    assert sim.handle(b"status DET.FOO\n") == b"NOK unknown parameter DET.FOO\n"
    assert sim.handle(b"setup DET.NDIT\n") == b"NOK setup takes PAR VALUE pairs\n"
    assert sim.handle(b"expose\n").startswith(b"NOK unknown command expose (known: start, stop, abort")


def test_start_needs_online_clocks_and_sequencer(sim):
    assert sim.handle(b"start\n") == b"NOK start refused: the state is LOADED (ONLINE needed)\n"
    assert sim.handle(b"online\n") == b"OK\n"
    assert sim.handle(b"start\n") == b"NOK start refused: the clocks are disabled (cldc 0 enable)\n"
    assert sim.handle(b"seq 0 start\n") == b"NOK seq refused: the clocks are disabled (cldc 0 enable)\n"
    assert sim.handle(b"cldc 0 enable\n") == b"OK\n"
    assert sim.handle(b"start\n") == b"NOK start refused: the sequencer is stopped (seq 0 start)\n"
    assert sim.handle(b"seq 0 start\n") == b"OK\n"
    assert sim.handle(b'dbRead "<alias>ngcircon_ircam1:seq_0.statusName"\n') == b"OK seq_0.statusName = running\n"
    assert sim.handle(b"start\n") == b"OK\n"
    assert sim.handle(b"start\n") == b"NOK start refused: an exposure runs\n"


def test_a_run_counts_down_reads_its_frames_out_and_holds_them_for_fetching(sim):
    ready(sim)
    readout = 16 * 8 * 1e-6  # fast: 1 us a pixel
    assert sim.handle(b"start\n") == b"OK\n"
    assert sim.handle(b"dbRead exposure.expStatusName\n") == b"OK exposure.expStatusName = integrating\n"
    assert sim.handle(b"dbRead exposure.countDown\n") == f"OK exposure.countDown = {2 * (0.5 + readout):.3f}\n".encode()
    assert sim.handle(b"dbRead exposure.time\n") == b"OK exposure.time = 1\n"
    sim.step(0.25)
    assert sim.handle(b"dbRead exposure.countDown\n") == (
        f"OK exposure.countDown = {0.25 + 2 * readout + 0.5:.3f}\n".encode())
    sim.step(0.25 + readout + 1e-9)
    assert sim.handle(b"dbRead exposure.frameNo\n") == b"OK exposure.frameNo = 1\n"
    assert sim.handle(b"dbRead exposure.frameCount\n") == b"OK exposure.frameCount = 1\n"
    assert sim.handle(b"dbRead system.subStateName\n") == b"OK system.subStateName = active\n"
    for _ in range(11):
        sim.step(0.05)
    assert sim.handle(b"dbRead exposure.expStatusName\n") == b"OK exposure.expStatusName = success\n"
    assert sim.handle(b"dbRead exposure.frameCount\n") == b"OK exposure.frameCount = 2\n"
    assert sim.handle(b"dbRead exposure.runNo\n") == b"OK exposure.runNo = 1\n"
    reply = sim.handle(b"fetch 2 0 256\n")
    assert reply.startswith(b"OK #3256") and reply.endswith(b"\n") and len(reply) == len(b"OK #3256") + 256 + 1
    image = np.frombuffer(block_data(reply[3:-1]), "<u2").reshape(8, 16)
    assert abs(image[:, 12:].mean() - BIAS_ADU) < 10  # overscan: bias only
    assert image[:, :12].mean() > image[:, 12:].mean()  # a warm CCD's dark charge
    assert sim.handle(b"fetch 2 200 100\n") == b"OK #256" + reply[8 + 200: 8 + 256] + b"\n"
    assert sim.handle(b"fetch 3 0 16\n") == b"NOK fetch refused: frame 3 is not held (held: 1, 2)\n"
    assert sim.handle(b"fetch 2 256 16\n") == b"NOK fetch refused: offset 0 to 255 and length 1 to 262144 bytes\n"


def test_abort_drops_the_frame_and_stop_reads_it_out_early(sim):
    ready(sim)
    sim.handle(b"start\n")
    sim.step(0.2)
    assert sim.handle(b"abort\n") == b"OK\n"
    assert sim.handle(b"dbRead exposure.expStatusName\n") == b"OK exposure.expStatusName = aborted\n"
    sim.step(2.0)
    assert sim.handle(b"dbRead exposure.frameCount\n") == b"OK exposure.frameCount = 0\n"
    sim.handle(b"start\n")
    sim.step(0.2)
    assert sim.handle(b"stop\n") == b"OK\n"
    assert sim.handle(b"dbRead exposure.expStatusName\n") == b"OK exposure.expStatusName = reading\n"
    sim.step(0.01)
    assert sim.handle(b"dbRead exposure.expStatusName\n") == b"OK exposure.expStatusName = success\n"
    assert sim.handle(b"dbRead exposure.frameCount\n") == b"OK exposure.frameCount = 1\n"  # the run's last
    assert sim.handle(b"dbRead exposure.nothing\n").startswith(b"NOK dbRead: no attribute exposure.nothing (known: ")


def test_a_frame_comes_whole_over_a_socket_in_definite_length_blocks():
    with run_in_thread(NgcSimulator(seed=3)) as running, Wire(running.port, REPLIES) as wire:
        for line in (b"online\n", b"cldc 0 enable\n", b"seq 0 start\n",
                     b"setup DET.WIN1.NX 544 DET.WIN1.NY 512 DET.SEQ1.DIT 0\n", b"start\n"):
            assert wire.ask(line) == b"OK\n"
        wait_until(lambda: wire.ask(b"dbRead exposure.frameCount\n") == b"OK exposure.frameCount = 1\n", 30,
                   what="the frame read out")
        reply = wire.ask(b"fetch 1 0 262144\n")
        assert reply.startswith(b"OK #6262144") and len(block_data(reply[3:-1])) == 262144
        assert wire.ask(b"fetch 1 557056 16\n").startswith(b"NOK fetch refused")  # 544 x 512 x 2 bytes in all
