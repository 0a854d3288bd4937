"""Blocks, decimated views and the recorder's file, without a server: the block format byte for
byte, min/max pixels, and gaps, save windows and TSV files as `tangolab record` writes them."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from device_servers.core.stream import MinMaxView
from tangolab.blocks import BLOCK_FORMAT, Block
from tangolab.record import Recording

# Block 7, first sample at 1.5 s, 0.25 s apart, 2 channels x 2 int16 samples, 2 blocks dropped
# before it, gap text "lost": the header, the gap text, then channel 0's samples, channel 1's.
ENCODED = bytes.fromhex(
    "0700000000000000"  # counter
    "000000000000f83f"  # first-sample time 1.5
    "000000000000d03f"  # period 0.25
    "0200" "02000000"  # channels, samples per channel
    "6932"  # "i2"
    "02000000"  # blocks dropped just before
    "0400" "6c6f7374"  # gap text length, "lost"
    "0100" "0200" "0300" "0400"  # [[1, 2], [3, 4]]
)


def test_a_block_is_its_header_its_gap_text_and_its_samples_channel_after_channel() -> None:
    block = Block(7, 1.5, 0.25, np.array([[1, 2], [3, 4]], dtype=np.int16), dropped_before=2, gap_before="lost")
    assert block.encode() == (BLOCK_FORMAT, ENCODED)
    decoded = Block.decode((BLOCK_FORMAT, ENCODED))
    assert (decoded.counter, decoded.first_time, decoded.period, decoded.dropped_before, decoded.gap_before) == (
        7, 1.5, 0.25, 2, "lost")
    assert decoded.samples.dtype == np.int16 and decoded.samples.tolist() == [[1, 2], [3, 4]]
    assert decoded.end_time == 2.0


def test_what_is_not_a_whole_block_is_refused() -> None:
    with pytest.raises(ValueError, match="not a block"):
        Block.decode(("jpeg", ENCODED))
    with pytest.raises(ValueError, match="6 bytes of samples for 2 x 2 int16"):
        Block.decode((BLOCK_FORMAT, ENCODED[:-2]))


def test_the_view_keeps_min_and_max_of_each_pixel_across_blocks() -> None:
    view = MinMaxView(channels=1, pixels=3)
    signal = np.array([[5, 1, 7, 2, 9, 0, 4, 3]])  # pixels of 2: (5, 1) (7, 2) (9, 0) (4, 3)
    view.add(signal[:, :3], per_pixel=2)  # the third sample waits for the fourth
    assert view.view(0).tolist() == [1, 5]
    view.add(signal[:, 3:], per_pixel=2)
    assert view.view(0).tolist() == [2, 7, 0, 9, 3, 4]  # the last 3 pixels, oldest first
    view.add(np.array([[8]]), per_pixel=4)  # another rate: the view starts again
    assert view.view(0).tolist() == []


def _ramp(counter: int, first: int, count: int, period: float = 0.001, save: np.ndarray | None = None,
          **kwargs) -> Block:
    """A block of two channels whose values are their sample's index (and its negative)."""
    index = np.arange(first, first + count, dtype=float)
    rows = [index, -index] + ([save] if save is not None else [])
    return Block(counter, 1000.0 + first * 0.001, period, np.array(rows), **kwargs)


def _recording(path: Path, names: tuple[str, ...] = ("a", "b"), tsv: bool = False) -> Recording:
    return Recording(path, "lab/test/1", list(names), ["V", "nm", ""][:len(names)],
                     {"gain": (2.5, "V/V"), "mode": ("fast", "")}, tsv=tsv)


def test_the_file_holds_every_sample_once_and_the_gaps_as_rows(tmp_path: Path) -> None:
    out = tmp_path / "run.h5"
    recording = _recording(out)
    recording.add(_ramp(10, 0, 100))
    recording.add(_ramp(11, 100, 100))
    assert not recording.add(_ramp(11, 100, 100))  # the same block again (read back at subscription)
    recording.add(_ramp(14, 400, 100, dropped_before=1))  # 12 dropped by the device, 13 lost on the way
    recording.note("events lost: API_MissedEvents: missed")
    recording.add(_ramp(15, 600, 100, gap_before="Stream lost: LinkError: dropped"))  # 100 samples never came
    assert not out.exists()  # only complete files have the name
    recording.close({"blocks_produced": 16, "blocks_dropped": 1})
    assert not out.with_name("run.h5.part").exists()

    with h5py.File(out) as f:
        assert f.attrs["complete"] and f.attrs["format"] == "tangolab.record.1"
        assert (f.attrs["first_block"], f.attrs["last_block"], f.attrs["blocks_received"]) == (10, 15, 4)
        assert (f.attrs["blocks_dropped_by_device"], f.attrs["blocks_lost_on_the_way"]) == (1, 1)
        assert f.attrs["device_blocks_produced"] == 16
        assert dict(f["parameters"].attrs) == {"gain": 2.5, "gain.unit": "V/V", "mode": "fast"}
        stream = f["stream"]
        assert stream["a"].attrs["unit"] == "V" and stream["b"].attrs["unit"] == "nm"
        expected = np.concatenate((np.arange(0, 200), np.arange(400, 500), np.arange(600, 700)))
        assert stream["a"][:].tolist() == expected.tolist()  # never a sample that was not measured
        assert stream["b"][:].tolist() == (-expected).tolist()
        segments = stream["segments"][:]
        assert segments["index"].tolist() == [0, 200, 300]
        assert segments["first_time"].tolist() == [1000.0, 1000.4, 1000.6]
        gaps = f["gaps"][:]
        assert gaps["samples"].tolist() == [200, 100]
        assert gaps["blocks"].tolist() == [2, 0]
        assert gaps["index"].tolist() == [200, 300]
        assert gaps["seconds"] == pytest.approx([0.2, 0.1])
        first, second = (cause.decode() for cause in gaps["cause"])
        assert first == ("1 block(s) dropped by the device (its buffer was full); "
                         "1 block(s) lost between the device and the recorder")
        assert second == "Stream lost: LinkError: dropped; events lost: API_MissedEvents: missed"


def test_a_stream_that_stopped_and_resumed_with_nothing_missing_is_no_gap(tmp_path: Path) -> None:
    recording = _recording(tmp_path / "run.h5")
    recording.add(_ramp(0, 0, 100))
    recording.add(_ramp(1, 100, 100, gap_before="Stream lost: no block for 0.5 s"))  # stalled, delivered late
    recording.close({})
    assert (recording.counts.gaps, recording.counts.interruptions) == (0, 1)


def test_a_save_flag_makes_a_group_and_a_tsv_file_per_save_window(tmp_path: Path) -> None:
    out = tmp_path / "pull.h5"
    recording = _recording(out, ("a", "b", "save"), tsv=True)
    flag = np.array([0, 0, 1, 1, 1, 1, 0, 0, 1, 1], dtype=float)
    recording.add(_ramp(0, 0, 10, save=flag))  # window 1: samples 2-5; window 2 starts at 8
    recording.add(_ramp(1, 10, 10, save=np.ones(10)))  # window 2 goes on
    recording.add(_ramp(3, 30, 10, save=np.ones(10)))  # block 2 lost: a gap inside window 2
    recording.add(_ramp(4, 40, 10, save=np.zeros(10)))  # window 2 ends
    recording.close({})

    with h5py.File(out) as f:
        assert sorted(f) == ["gaps", "parameters", "window_0001", "window_0002"]
        assert list(f.attrs["channels"]) == ["a", "b"]  # the flag itself is not written
        assert f["window_0001/a"][:].tolist() == [2, 3, 4, 5]
        assert f["window_0002/a"][:].tolist() == [8, 9, *range(10, 20), *range(30, 40)]
        assert f["window_0002/segments"]["index"].tolist() == [0, 12]
        gap = f["gaps"][0]
        assert (gap["group"].decode(), gap["index"], gap["samples"]) == ("window_0002", 12, 10)
        assert f["window_0001"].attrs["tsv"] == "pull_0001.tsv"

    first = (tmp_path / "pull_0001.tsv").read_text().splitlines()
    assert first[0] == "# time/s\ta/V\tb/nm"
    assert first[1:] == ["0\t2\t-2", "0.001\t3\t-3", "0.002\t4\t-4", "0.003\t5\t-5"]
    second = (tmp_path / "pull_0002.tsv").read_text().splitlines()
    assert second[13].startswith("# gap: 10 samples (0.01 s) missing: 1 block(s) lost")
    assert second[14] == "0.022\t30\t-30"  # time goes on from the window's first sample
    assert not list(tmp_path.glob("*.part"))
