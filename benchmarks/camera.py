"""Frame transfer of the Archon camera, and how soon Abort ends an exposure, in one run.

    python benchmarks/camera.py [--frames 10] [--aborts 5]

Serves the Archon simulator (its own process) and a `CcdController` (its own process), then
measures, alternating so that the machine's slow moments hit all alike:

- the raw socket rate: FETCH of a whole frame straight from the simulator (MB/s);
- the simulator-to-device rate: the device's own `transferRate` of each frame (chunks of blocks,
  the link given up between them);
- the device-to-client rate: one read of `image` (MB/s);
- Abort to the end of the exposure (State back to ON, outcome "aborted"), during the exposure
  and during a slow readout (target: under 0.2 s).
"""

from __future__ import annotations

import argparse
import re
import socket
import statistics
import subprocess
import sys
import time

import tango
from tango.test_context import DeviceTestContext

from device_servers.archon.device import CcdController
from device_servers.archon.protocol import BLOCK_FRAME_BYTES, BUFFER_BASE, blocks_for, fetch, keys, request
from tangolab.scripting import wait_until

ANNOUNCED = re.compile(r"listening on ([\d.]+):(\d+) control [\d.]+:(\d+)")


class Conversation:
    """A raw client of the simulator (the baseline)."""

    def __init__(self, port: int) -> None:
        self.socket = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.reference = 0
        self.pending = b""

    def receive(self, size: int | None = None) -> bytes:
        while (len(self.pending) < size) if size else (b"\n" not in self.pending):
            chunk = self.socket.recv(1 << 20)
            if not chunk:
                raise ConnectionError("the simulator closed the connection")
            self.pending += chunk
        end = size if size else self.pending.index(b"\n") + 1
        data, self.pending = self.pending[:end], self.pending[end:]
        return data

    def ask(self, command: str) -> str:
        self.reference = (self.reference + 1) % 256
        self.socket.sendall(request(self.reference, command))
        return self.receive().decode()[3:].strip()

    def fetch_frame(self, blocks: int) -> float:
        """Seconds to FETCH `blocks` blocks of buffer 1 at once."""
        self.reference = (self.reference + 1) % 256
        start = time.perf_counter()
        self.socket.sendall(request(self.reference, fetch(BUFFER_BASE[1], blocks)))
        self.receive(blocks * BLOCK_FRAME_BYTES)
        return time.perf_counter() - start


def serve_simulator() -> tuple[subprocess.Popen, int]:
    process = subprocess.Popen(
        [sys.executable, "-m", "simulators", "archon", "--port", "0", "--seed", "1"],
        stdout=subprocess.PIPE, text=True,
    )
    line = process.stdout.readline()
    match = ANNOUNCED.search(line)
    if match is None:
        process.kill()
        raise SystemExit(f"the simulator did not start: {line!r}")
    return process, int(match[2])


def lines_read(raw: Conversation) -> int:
    """Lines of the frame being read out so far."""
    frame = keys(raw.ask("FRAME"))
    return int(frame[f"BUF{frame['WBUF']}LINES"])


def until_on(proxy: tango.DeviceProxy) -> None:
    wait_until(lambda: proxy.state() == tango.DevState.ON, 60, interval=0.002, what="ON")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=10, help="frames of each transfer (default %(default)s)")
    parser.add_argument("--aborts", type=int, default=5, help="aborts of each kind (default %(default)s)")
    parser.add_argument("--side", type=int, default=2048,
                        help="frame side, pixels (default %(default)s: 8 MB, a few chunks of the device's fetch)")
    args = parser.parse_args()
    simulator, port = serve_simulator()
    try:
        raw = Conversation(port)
        raw.ask("POWERON")
        raw.ask(f"WCONFIG0001LINECOUNT={args.side}")
        raw.ask(f"WCONFIG0002PIXELCOUNT={args.side}")
        raw.ask("APPLYALL")
        raw.ask("WCONFIG0006PARAMETER1=PixelNS=1")  # readout at once: only transfers are timed
        raw.ask("LOADPARAMS")
        properties = {"Url": f"socket://127.0.0.1:{port}", "PollPeriod": 0.5, "Timeout": 5.0}
        with DeviceTestContext(CcdController, properties=properties, process=True, timeout=60) as camera:
            wait_until(lambda: camera.state() == tango.DevState.ON, 60, what="camera ON")
            camera.exposureTime = 0.0
            rates: dict[str, list[float]] = {"raw socket": [], "simulator to device": [], "device to client": []}
            for _ in range(args.frames):
                camera.Expose()
                until_on(camera)
                start = time.perf_counter()
                image = camera.read_attribute("image", extract_as=tango.ExtractAs.Numpy).value
                rates["device to client"].append(image.nbytes / 1e6 / (time.perf_counter() - start))
                rates["simulator to device"].append(camera.transferRate)
                height, width = image.shape
                frame = keys(raw.ask("FRAME"))
                assert frame["BUF1COMPLETE"] == "1", "buffer 1 holds no frame"
                rates["raw socket"].append(image.nbytes / 1e6 / raw.fetch_frame(blocks_for(width, height)))
            print(f"frame: {height} x {width} pixels, {image.nbytes / 1e6:.2f} MB")
            bare = statistics.median(rates["raw socket"])
            for name, values in rates.items():
                median = statistics.median(values)
                print(f"{name:22s} {median:8.1f} MB/s   ({median / bare:.2f} of the raw socket)")

            aborts: dict[str, list[float]] = {"during the exposure": [], "during the readout": []}
            for _ in range(args.aborts):
                camera.exposureTime = 30.0
                camera.Expose()
                wait_until(lambda: camera.progress > 0.5, 30, interval=0.01, what="exposing")
                start = time.perf_counter()
                camera.Abort()
                until_on(camera)
                aborts["during the exposure"].append(time.perf_counter() - start)
                raw.ask("WCONFIG0006PARAMETER1=PixelNS=50000")  # a readout of minutes
                raw.ask("LOADPARAMS")
                camera.exposureTime = 0.0
                camera.Expose()
                wait_until(lambda: lines_read(raw) > 10, 30, interval=0.01, what="reading out")
                start = time.perf_counter()
                camera.Abort()
                until_on(camera)
                aborts["during the readout"].append(time.perf_counter() - start)
                assert camera.outcome == "aborted", camera.outcome
                raw.ask("WCONFIG0006PARAMETER1=PixelNS=1")
                raw.ask("LOADPARAMS")
            for name, values in aborts.items():
                print(f"Abort {name:20s} median {statistics.median(values) * 1000:6.1f} ms, "
                      f"worst {max(values) * 1000:6.1f} ms (target < 200 ms)")
    finally:
        simulator.terminate()
        simulator.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
