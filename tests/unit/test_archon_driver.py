"""The Archon driver against its simulator over a real socket: a refusal with the controller's
own reason, the timing from the configuration, a frame fetched in chunks that can be given up
between them, and a transfer cut short."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from device_servers.archon import driver as archon_driver
from device_servers.archon.driver import Archon, FetchCut
from device_servers.archon.protocol import LINES
from device_servers.core.errors import InstrumentError
from device_servers.core.link import SerialLink
from simulators import run_in_thread
from simulators.archon import ArchonSimulator
from tangolab.scripting import wait_until


@pytest.fixture(scope="module")
def sim() -> Iterator:
    with run_in_thread(ArchonSimulator(seed=5)) as running:
        yield running


@pytest.fixture
def archon(sim) -> Iterator[Archon]:
    sim.simulator.clear()
    link = SerialLink(sim.url, framing=LINES, timeout=1.0)
    link.connect()
    yield Archon(link)
    link.close()


@pytest.fixture(scope="module")
def frame(sim) -> tuple[int, int, int]:
    """A frame of 544 x 512 in a buffer: (buffer, width, height)."""
    link = SerialLink(sim.url, framing=LINES, timeout=1.0)
    link.connect()
    archon = Archon(link)
    archon.power_on()
    before = archon.frame().write_buffer
    archon.start_exposure(0.0)
    wait_until(lambda: archon.frame().buffers[before].complete, 30, what="a complete frame")
    link.close()
    return before, 544, 512


def test_a_refusal_carries_the_controllers_reason_from_its_log(archon):
    with pytest.raises(InstrumentError, match=r"refused RCONFIGZZZZ: unknown or refused command 'RCONFIGZZZZ'"):
        archon.ask("RCONFIGZZZZ")
    assert archon.fetch_log() is None  # the reason was taken off the log


def test_the_configuration_gives_the_timing(archon):
    timing = archon.timing()
    assert (timing.width, timing.height, timing.overscan, timing.pixel_ns) == (544, 512, 32, 2000)
    assert timing.readout_s == pytest.approx(0.557056)


def test_a_frame_comes_in_chunks_and_can_be_given_up_between_them(archon, frame, monkeypatch):
    monkeypatch.setattr(archon_driver, "CHUNK_BLOCKS", 100)
    buffer, width, height = frame
    progress = []
    image = archon.fetch_image(buffer, width, height, progress=lambda done, total: progress.append((done, total)))
    assert image.shape == (height, width) and image.dtype == np.uint16
    assert progress == [(100, 544), (200, 544), (300, 544), (400, 544), (500, 544), (544, 544)]
    chunks = iter([True, True, False])
    assert archon.fetch_image(buffer, width, height, keep_going=lambda: next(chunks)) is None
    assert archon.status().power == "ON"  # the line is whole: nothing half read is left on it


def test_a_transfer_cut_short_says_where(archon, frame, sim):
    buffer, width, height = frame
    sim.simulator.faults.add("fetchcut")
    with pytest.raises(FetchCut, match=r"cut short after 0 of 544 blocks: .*no reply"):
        archon.fetch_image(buffer, width, height)
