"""The Archon's exchanges byte for byte, against its simulator: requests `>id...`, replies
`<id...`, refusals `?id`, the configuration, power, the timing parameters, three frame buffers
and the binary FETCH in 1024-byte blocks (over a real socket). Most exchanges go straight to
`handle` with the simulated clock moved by `step`, so that times are exact."""

from __future__ import annotations

import numpy as np
import pytest

from device_servers.archon.protocol import FETCH_REPLIES, keys, message_id
from simulators import run_in_thread
from simulators.archon import ArchonSimulator
from simulators.ccd import BIAS_ADU, dark_rate, make_image
from tangolab.scripting import wait_until
from tests.wire import Wire

SYSTEM_REPLY = (
    b"<01BACKPLANE_TYPE=1 BACKPLANE_REV=4 BACKPLANE_VERSION=1.0.1054 BACKPLANE_ID=0123456789ABCDEF "
    b"POWER_ID=FEDCBA9876543210 MOD_PRESENT=2AA "
    b"MOD2_TYPE=2 MOD2_REV=0 MOD2_VERSION=1.0.548 MOD2_ID=00000000000000A2 "
    b"MOD4_TYPE=1 MOD4_REV=0 MOD4_VERSION=1.0.548 MOD4_ID=00000000000000A4 "
    b"MOD6_TYPE=9 MOD6_REV=0 MOD6_VERSION=1.0.548 MOD6_ID=00000000000000A6 "
    b"MOD8_TYPE=8 MOD8_REV=0 MOD8_VERSION=1.0.548 MOD8_ID=00000000000000A8 "
    b"MOD10_TYPE=11 MOD10_REV=1 MOD10_VERSION=1.0.548 MOD10_ID=00000000000000AA\n"
)


@pytest.fixture
def sim() -> ArchonSimulator:
    return ArchonSimulator(seed=1)


def answer(sim: ArchonSimulator, request: bytes) -> bytes:
    return sim.handle(request)


def small_frame(sim: ArchonSimulator) -> None:
    """12 x 8 pixels, 4 of them overscan; 0.2 s exposure, 25 ms a line; power on."""
    for request, expected in (
        (b">10WCONFIG0001LINECOUNT=8\n", b"<10\n"),
        (b">11WCONFIG0002PIXELCOUNT=12\n", b"<11\n"),
        (b">12WCONFIG0003OVERSCAN=4\n", b"<12\n"),
        (b">13WCONFIG0005PARAMETER0=IntMS=200\n", b"<13\n"),
        (b">14WCONFIG0006PARAMETER1=PixelNS=2083334\n", b"<14\n"),
        (b">15APPLYALL\n", b"<15\n"),
        (b">16LOADPARAMS\n", b"<16\n"),
        (b">17POWERON\n", b"<17\n"),
    ):
        assert answer(sim, request) == expected, request


def test_system_names_the_backplane_and_its_modules(sim):
    assert answer(sim, b">01SYSTEM\n") == SYSTEM_REPLY
    values = keys(SYSTEM_REPLY[3:].decode())
    assert int(values["MOD_PRESENT"], 16) == 0b1010101010  # slots 2, 4, 6, 8, 10


def test_status_while_off_and_on(sim):
    off = answer(sim, b">02STATUS\n")
    assert off.startswith(b"<02VALID=1 COUNT=1 LOG=0 POWER=2 POWERGOOD=0 OVERHEAT=0 BACKPLANE_TEMP=31.500 "
                          b"P2V5_V=0.000 P2V5_I=0.000 P5V_V=0.000 ")
    assert off.endswith(b" MOD10/TEMPA=-40.000 MOD10/TEMPB=-45.000\n")
    assert answer(sim, b">03POWERON\n") == b"<03\n"
    on = keys(answer(sim, b">04STATUS\n")[3:].decode())
    assert (on["COUNT"], on["POWER"], on["POWERGOOD"], on["P5V_V"], on["N17V_V"]) == ("2", "4", "1", "5.000", "-17.000")
    assert answer(sim, b">05POWEROFF\n") == b"<05\n"
    assert keys(answer(sim, b">06STATUS\n")[3:].decode())["POWER"] == "2"


def test_a_refusal_is_question_mark_and_id_and_the_reason_goes_to_the_log(sim):
    assert answer(sim, b">0ANOSUCHTHING\n") == b"?0A\n"
    assert answer(sim, b">0BSTATUS\n").startswith(b"<0BVALID=1 COUNT=1 LOG=1 ")
    assert answer(sim, b">0CFETCHLOG\n") == b"<0Cunknown or refused command 'NOSUCHTHING'\n"
    assert answer(sim, b">0DFETCHLOG\n") == b"<0D(null)\n"
    assert answer(sim, b"STATUS\n") is None  # no `>id`: no request at all


def test_configuration_lines_read_written_and_applied(sim):
    assert answer(sim, b">20RCONFIG0001\n") == b"<20LINECOUNT=512\n"
    assert answer(sim, b">21RCONFIG0005\n") == b"<21PARAMETER0=IntMS=1000\n"
    assert answer(sim, b">22WCONFIG0001LINECOUNT=0\n") == b"<22\n"
    assert answer(sim, b">23RCONFIG0001\n") == b"<23LINECOUNT=0\n"
    assert answer(sim, b">24APPLYALL\n") == b"?24\n"  # no frame of 0 lines
    assert answer(sim, b">25FETCHLOG\n") == b"<25APPLYALL refused: a frame of 544 x 0 pixels with 32 overscan columns\n"
    assert answer(sim, b">26WCONFIG0099KEY=1\n") == b"?26\n"  # past the end of the configuration
    assert answer(sim, b">27RCONFIGXYZ1\n") == b"?27\n"
    assert answer(sim, b">28CLEARCONFIG\n") == b"<28\n"
    assert answer(sim, b">29RCONFIG0000\n") == b"<29\n"


def test_exposure_and_readout_follow_the_timing_parameters(sim):
    small_frame(sim)
    assert answer(sim, b">30FASTLOADPARAM Exposures 1\n") == b"<30\n"
    sim.step(0.15)  # exposing: nothing read yet
    frame = keys(answer(sim, b">31FRAME\n")[3:].decode())
    assert (frame["WBUF"], frame["RBUF"], frame["BUF1COMPLETE"], frame["BUF1LINES"]) == ("1", "0", "0", "0")
    sim.step(0.11)  # 0.06 s into the readout at 25 ms a line: 2 lines
    frame = keys(answer(sim, b">32FRAME\n")[3:].decode())
    assert (frame["BUF1LINES"], frame["BUF1WIDTH"], frame["BUF1HEIGHT"], frame["BUF1COMPLETE"]) == ("2", "12", "8", "0")
    sim.step(0.16)
    frame = keys(answer(sim, b">33FRAME\n")[3:].decode())
    assert (frame["WBUF"], frame["RBUF"], frame["BUF1COMPLETE"], frame["BUF1FRAME"], frame["BUF1LINES"]) == (
        "2", "1", "1", "1", "8")
    assert frame["BUF1BASE"] == str(0xA0000000)
    assert int(frame["BUF1TIMESTAMP"], 16) == int(frame["TIMER"], 16)  # completed at this very step
    assert frame["TIMER"] == "000000000280DE80"  # 0.42 s in 10 ns ticks


def test_three_frame_buffers_in_turn(sim):
    small_frame(sim)
    assert answer(sim, b">40FASTLOADPARAM Exposures 4\n") == b"<40\n"
    for _ in range(40):
        sim.step(0.1)
    frame = keys(answer(sim, b">41FRAME\n")[3:].decode())
    assert [frame[f"BUF{n}FRAME"] for n in (1, 2, 3)] == ["4", "2", "3"]
    assert (frame["RBUF"], frame["WBUF"]) == ("1", "2")


def test_abort_ends_a_readout_at_once_and_leaves_the_buffer_incomplete(sim):
    small_frame(sim)
    answer(sim, b">50FASTLOADPARAM Exposures 1\n")
    sim.step(0.25)
    assert answer(sim, b">51FASTLOADPARAM Abort 1\n") == b"<51\n"
    sim.step(1.0)
    frame = keys(answer(sim, b">52FRAME\n")[3:].decode())
    assert (frame["BUF1COMPLETE"], frame["RBUF"], frame["WBUF"]) == ("0", "0", "1")
    assert answer(sim, b">53FETCHA000000000000001\n") == b"?53\n"  # nothing complete to fetch


def test_no_exposure_while_the_power_is_off(sim):
    assert answer(sim, b">60FASTLOADPARAM Exposures 1\n") == b"?60\n"
    assert answer(sim, b">61FETCHLOG\n") == b"<61Exposures refused: the power is not on\n"
    assert answer(sim, b">62FASTLOADPARAM NoSuchParameter 1\n") == b"?62\n"
    assert answer(sim, b">63FASTLOADPARAM IntMS -5\n") == b"?63\n"


def test_message_ids():
    assert message_id(b">0AFETCHA000000000000220\n") == "FETCH"
    assert message_id(b">0AFETCHLOG\n") == "FETCHLOG"
    assert message_id(b"<0A\n") is None


def test_dark_level_rises_with_exposure_time_and_temperature():
    rng = np.random.default_rng(2)
    short, long = (make_image(rng, 300, 200, 20, seconds, -10.0, 0.0) for seconds in (1.0, 10.0))
    warm = make_image(rng, 300, 200, 20, 10.0, 2.0, 0.0)
    levels = [float(np.median(image[:, :280])) for image in (short, long, warm)]
    assert levels[0] < levels[1] < levels[2]
    expected = dark_rate(-10.0) * 9.0 / 1.5  # electrons over the 9 s more, in ADU
    assert abs((levels[1] - levels[0]) - expected) < 0.2 * expected + 1
    assert abs(float(np.mean(long[:, 280:])) - BIAS_ADU) < 1.0  # overscan: bias only


def test_fetch_sends_1024_byte_blocks_of_the_read_buffer_over_the_wire():
    sim = ArchonSimulator(seed=3, ccd_temperature=20.0)
    with run_in_thread(sim) as running, Wire(running.port) as wire:
        wire.converse([
            (b">01WCONFIG0001LINECOUNT=64\n", b"<01\n"),
            (b">02WCONFIG0002PIXELCOUNT=40\n", b"<02\n"),
            (b">03WCONFIG0003OVERSCAN=8\n", b"<03\n"),
            (b">04WCONFIG0005PARAMETER0=IntMS=100\n", b"<04\n"),
            (b">05WCONFIG0006PARAMETER1=PixelNS=1000\n", b"<05\n"),
            (b">06APPLYALL\n", b"<06\n"),
            (b">07POWERON\n", b"<07\n"),
            (b">08FASTLOADPARAM Exposures 1\n", b"<08\n"),
        ])
        wait_until(lambda: keys(wire.ask(b">09FRAME\n")[3:].decode())["BUF1COMPLETE"] == "1", 30,
                   what="buffer 1 complete")
        wire.framing = FETCH_REPLIES
        wire.send(b">0AFETCHA000000000000005\n")  # 64 x 40 x 2 bytes = 5 blocks
        blocks = [wire.receive() for _ in range(5)]
        assert all(len(b) == 1028 and b.startswith(b"<0A:") for b in blocks)
        image = np.frombuffer(b"".join(b[4:] for b in blocks), "<u2").reshape(64, 40)
        assert abs(float(np.mean(image[:, 32:])) - BIAS_ADU) < 3  # overscan
        assert float(np.mean(image[:, :32])) > BIAS_ADU  # dark current at 20 degC
        assert wire.ask(b">0BFETCHB000000000000001\n") == b"?0B\n"  # buffer 2 holds no frame
        sim.faults.add("fetchcut")
        wire.send(b">0CFETCHA000000000000004\n")
        assert [wire.receive()[:4] for _ in range(2)] == [b"<0C:", b"<0C:"]
        assert wire.silent()  # the other two blocks never come
