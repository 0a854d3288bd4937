"""A streaming device (the core's `Streaming` over synthetic ramps) in a server process of its own.

The ramps give every sample's index away (`x` is the index, `y` the index + 1e12, `save` is up
for 2000 samples and down for 2000), so a test checks each sample, counter and time it receives.
10 kS/s in blocks of 500: 20 blocks a second.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from itertools import pairwise

import pytest
import tango
from tango.test_context import DeviceTestContext

from device_servers.archiver.subscription import not_archivable
from tangolab.blocks import Block
from tangolab.scripting import wait_until
from tests.unit.stream_device import StreamTester

PERIOD = 1e-4
BLOCK = 500
PER_PIXEL = 20  # ViewSeconds 1 s / 1e-4 s / ViewPixels 500


@pytest.fixture(scope="module")
def device() -> Iterator[tango.DeviceProxy]:
    properties = {"StreamBuffer": 4, "StreamTimeout": 1.0}
    with DeviceTestContext(StreamTester, properties=properties, process=True, timeout=30) as proxy:
        wait_until(lambda: proxy.state() == tango.DevState.ON, 30, what="streaming")
        yield proxy


class Blocks:
    """The blocks a subscription received, decoded, oldest first."""

    def __init__(self, device: tango.DeviceProxy) -> None:
        self.device = device
        self.event_id = device.subscribe_event("block", tango.EventType.CHANGE_EVENT, 10_000)
        self.received: list[Block] = []

    def take(self) -> list[Block]:
        for event in self.device.get_events(self.event_id):
            assert not event.err, event.errors
            if event.attr_value.quality == tango.AttrQuality.ATTR_VALID:
                self.received.append(Block.decode(event.attr_value.value))
        return self.received

    def until(self, condition, what: str, timeout: float = 30) -> list[Block]:
        wait_until(lambda: condition(self.take()), timeout, what=what)
        return self.received

    def close(self) -> None:
        self.device.unsubscribe_event(self.event_id)


@pytest.fixture
def blocks(device: tango.DeviceProxy) -> Iterator[Blocks]:
    feed = Blocks(device)
    yield feed
    feed.close()


def test_every_block_carries_its_counter_first_time_period_and_samples(device, blocks) -> None:
    received = blocks.until(lambda got: len(got) >= 10, "10 blocks")
    assert list(device.channelNames) == ["x", "y", "save"] and list(device.channelUnits) == ["V", "nm", ""]
    for block in received:
        x, y, save = block.samples
        assert block.samples.shape == (3, BLOCK) and block.period == PERIOD
        assert (x == x[0] + range(BLOCK)).all() and (y == x + 1e12).all()
        assert ((save != 0) == ((x // 2000) % 2 == 0)).all()
    for before, after in pairwise(received):
        skipped = after.counter - before.counter - 1
        assert skipped == after.dropped_before  # every block that did not come was dropped, and said so
        assert after.samples[0, 0] == before.samples[0, -1] + 1 + skipped * BLOCK  # index follows index
        assert after.first_time == pytest.approx(before.end_time + skipped * BLOCK * PERIOD, abs=PERIOD / 10)  # a UNIX time in float64 is good to 0.24 µs
    assert device.blocksProduced > received[-1].counter
    assert device.samplingRate == pytest.approx(1 / PERIOD)


def test_blocks_push_no_archive_events_and_the_archiver_refuses_them(device) -> None:
    with pytest.raises(tango.DevFailed):
        device.subscribe_event("block", tango.EventType.ARCHIVE_EVENT, 10)
    why = not_archivable("lab/afm/1/block", device.get_attribute_config("block"))
    assert why.startswith("lab/afm/1/block is encoded data") and "never archived" in why


def test_each_channel_has_a_min_max_view_at_most_ten_times_a_second(device) -> None:
    event_id = device.subscribe_event("xView", tango.EventType.CHANGE_EVENT, 1000)
    views: list[tango.DeviceAttribute] = []
    try:
        wait_until(lambda: len(views.__iadd__([e.attr_value for e in device.get_events(event_id)])) >= 6,
                   30, what="6 views")
    finally:
        device.unsubscribe_event(event_id)
    stamps = [view.time.totime() for view in views[1:]]  # the first is the value read as it subscribed
    assert min(later - earlier for earlier, later in pairwise(stamps)) >= 0.09
    view = views[-1].value
    assert len(view) <= 2 * 500 and len(view) % 2 == 0
    mins, maxs = view[0::2], view[1::2]
    assert (maxs - mins == PER_PIXEL - 1).all()  # each pixel: PER_PIXEL consecutive ramp samples
    assert (mins % PER_PIXEL == 0).all() and (mins[1:] > mins[:-1]).all()
    assert device.get_attribute_config("xView").unit == "V"


def test_a_backlog_larger_than_the_buffer_is_dropped_and_counted(device, blocks) -> None:
    blocks.until(lambda got: len(got) >= 2, "blocks")
    dropped_before = device.blocksDropped
    device.Stall(0.6)  # 12 blocks come due at once; the buffer holds 4
    received = blocks.until(lambda got: any(b.dropped_before for b in got), "a block after dropped ones")
    assert device.blocksDropped > dropped_before
    after_drop = next(b for b in received if b.dropped_before)
    before = received[received.index(after_drop) - 1]
    assert after_drop.counter - before.counter - 1 == after_drop.dropped_before
    assert device.state() == tango.DevState.ON  # shorter than StreamTimeout: no fault


def test_a_lost_source_makes_the_device_fault_with_the_reason_and_counts_a_gap(device, blocks) -> None:
    blocks.until(lambda got: len(got) >= 2, "blocks")
    gaps = device.streamGaps
    asked = time.monotonic()
    device.LoseSource(0.6)
    wait_until(lambda: device.state() == tango.DevState.FAULT, 10, what="FAULT")
    print(f"FAULT {time.monotonic() - asked:.3f} s after the source was lost")
    assert "Stream lost: LinkError: the synthetic source dropped the stream (since " in device.status()
    wait_until(lambda: device.state() == tango.DevState.ON, 30, what="ON again")
    assert device.streamGaps == gaps + 1
    received = blocks.until(lambda got: any(b.gap_before for b in got), "the block after the gap")
    after_gap = next(b for b in received if b.gap_before)
    assert after_gap.gap_before.startswith("Stream lost: LinkError: the synthetic source dropped the stream")
    before = received[received.index(after_gap) - 1]
    missed = after_gap.samples[0, 0] - before.samples[0, -1] - 1  # samples taken while the source was away
    assert missed >= BLOCK
    assert after_gap.first_time - before.end_time == pytest.approx(missed * PERIOD, abs=PERIOD / 10)  # a UNIX time in float64 is good to 0.24 µs


def test_a_silent_source_is_lost_too(device) -> None:
    wait_until(lambda: device.state() == tango.DevState.ON, 30, what="ON")
    gaps = device.streamGaps
    device.Stall(2.0)  # longer than StreamTimeout
    wait_until(lambda: device.state() == tango.DevState.FAULT, 10, what="FAULT")
    assert "Stream lost: no block for 1.0 s" in device.status()
    wait_until(lambda: device.state() == tango.DevState.ON, 30, what="ON again")
    assert device.streamGaps == gaps + 1
