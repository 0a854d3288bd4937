"""`tangolab record` against a streaming device in a server process of its own (the core's
`Streaming` over synthetic ramps: `x` is each sample's index, `save` is up for 2000 samples and
down for 2000), the recorder in a process of its own, stopped with Ctrl-C as a person would."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import h5py
import numpy as np
import pytest
import tango
from tango.test_context import DeviceTestContext

from tangolab.cli import main
from tangolab.scripting import wait_until
from tests.unit.stream_device import StreamTester

PERIOD = 1e-4
BLOCK = 500
SAVE_EVERY = 2000
TANGOLAB = [sys.executable, "-m", "tangolab"]


@pytest.fixture(scope="module")
def device() -> Iterator[tuple[tango.DeviceProxy, str]]:
    context = DeviceTestContext(StreamTester, process=True, timeout=30)
    with context as proxy:
        wait_until(lambda: proxy.state() == tango.DevState.ON, 30, what="streaming")
        yield proxy, context.get_device_access()


def _more_blocks(proxy: tango.DeviceProxy, count: int) -> None:
    target = proxy.blocksProduced + count
    wait_until(lambda: proxy.blocksProduced >= target, 30, what=f"{count} more blocks")


class Recorder:
    """`tangolab record` in its own process; its stderr lines gathered as they come."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen([*TANGOLAB, "record", *args, "--tango-host", "127.0.0.1:1"],
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=lambda: self.lines.extend(self.process.stderr), daemon=True)
        self._reader.start()

    def wait_recording(self) -> None:
        wait_until(lambda: any(line.startswith("recording ") for line in self.lines) or self.process.poll() is not None,
                   60, what="the recorder subscribed")
        assert self.process.poll() is None, self.lines

    def interrupt(self) -> str:
        self.process.send_signal(signal.SIGINT)
        stdout, _ = self.process.communicate(timeout=60)
        self._reader.join(10)
        assert self.process.returncode == 0, self.lines
        return stdout

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def test_ctrl_c_leaves_a_complete_file_with_the_save_windows_and_a_gap_where_the_source_was_lost(
    device, tmp_path: Path
) -> None:
    proxy, name = device
    out = tmp_path / "run.h5"
    recorder = Recorder(name, "--out", str(out), "--tsv")
    try:
        recorder.wait_recording()
        _more_blocks(proxy, 10)
        proxy.LoseSource(0.6)
        wait_until(lambda: proxy.state() == tango.DevState.FAULT, 10, what="FAULT")
        wait_until(lambda: proxy.state() == tango.DevState.ON, 30, what="ON again")
        _more_blocks(proxy, 20)
        assert not out.exists()  # only a complete file has the name
        summary = recorder.interrupt()
    finally:
        recorder.kill()
    assert "1 gap(s) written in /gaps" in summary
    assert not list(tmp_path.glob("*.part"))

    with h5py.File(out) as f:
        assert f.attrs["complete"]
        received, first, last = (int(f.attrs[k]) for k in ("blocks_received", "first_block", "last_block"))
        lost = int(f.attrs["blocks_dropped_by_device"] + f.attrs["blocks_lost_on_the_way"])
        assert last - first + 1 == received + lost  # the counters account for every block
        windows = sorted(name for name in f if name.startswith("window_"))
        assert len(windows) >= 2
        start = None  # the source's first sample time: every window's first_time minus its index
        recorded = []
        for window in windows:
            x = f[window]["x"][:]
            segments = f[window]["segments"][:]
            assert list(f[window]) == ["segments", "x", "y"] and f[window]["x"].attrs["unit"] == "V"
            assert (((x // SAVE_EVERY) % 2) == 0).all()  # saved only while the flag was up
            assert (f[window]["y"][:] == x + 1e12).all()
            for (index, first_time, period), end in zip(segments, [*segments["index"][1:], len(x)]):
                run = x[index:end]
                assert period == PERIOD and (np.diff(run) == 1).all()  # a segment is consecutive samples
                start = start or first_time - run[0] * PERIOD
                assert first_time == pytest.approx(start + run[0] * PERIOD, abs=PERIOD / 10)
            recorded.append(x)
            rows = np.loadtxt(tmp_path / f[window].attrs["tsv"], ndmin=2)  # the same samples in its TSV file
            assert rows[:, 1].tolist() == x.tolist()
        (gap,) = f["gaps"][:]
        assert gap["cause"].decode().startswith("Stream lost: LinkError: the synthetic source dropped the stream")
        missing_from = round((gap["time"] - start) / PERIOD)
        assert gap["samples"] >= BLOCK and (missing_from + gap["samples"]) % BLOCK == 0
        everything = np.concatenate(recorded)
        assert len(np.unique(everything)) == len(everything)  # nothing twice
        assert not ((everything >= missing_from) & (everything < missing_from + gap["samples"])).any()


def test_seconds_ends_a_recording_by_itself_and_what_cannot_be_recorded_is_refused(
    device, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    _, name = device
    out = tmp_path / "short.h5"
    assert main(["record", name, "--out", str(out), "--seconds", "0.5", "--tango-host", "127.0.0.1:1"]) == 0
    said = capsys.readouterr()
    assert said.out.startswith(f"{out}: blocks ") and said.err.startswith(f"recording {name} into {out}")
    with h5py.File(out) as f:
        assert f.attrs["complete"] and f.attrs["blocks_received"] >= 1
        assert f.attrs["device_blocks_produced"] > f.attrs["last_block"]
        assert dict(f["parameters"].attrs) == {"gain": 2.5, "gain.unit": "V/V"}  # the device's settings

    assert main(["record", name, "--out", str(out), "--tango-host", "127.0.0.1:1"]) == 2
    assert "exists: give another --out" in capsys.readouterr().err
    assert main(["record", name, "--out", str(tmp_path / "no" / "f.h5"), "--tango-host", "127.0.0.1:1"]) == 2
    assert "no folder" in capsys.readouterr().err

