"""Fixtures shared by the test suites: a whole lab, started by the same launcher as `tangolab up`."""

from __future__ import annotations

import copy
import multiprocessing
import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tangolab.lab_config import LabConfig, free_port
from tangolab.launcher import Lab

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# omniORB's idle-connection scan, also what a server waits on as it shuts down (5 s by default).
# DeviceTestContext sets 1 s for its servers, but a forked server keeps the ORB settings of this
# process, fixed when its first proxy was made: set them before that (a server stop 5.4 -> 1.4 s).
os.environ.setdefault("ORBscanGranularity", "1")
# A DeviceTestContext(process=True) server starts as a new interpreter (with this process's
# environment as it is then), not forked from this one: a fork copies the locks other threads hold
# (omniORB's, the Tango client's, logging's), and a forked server once hung at its shutdown for
# good; one forked after this process's ORB started does not listen on the port it is given.
multiprocessing.set_start_method("spawn", force=True)
#: xdist workers per core for `-n auto`. Most tests wait, but a lab they wait on polls its instruments
#: (an idle demo lab keeps 0.4 of a core busy, the whole lab file's some fifty processes more): on
#: 2 cores, 3 workers starting labs at once starved each other into time-outs (lab start-ups of
#: 50-150 s); earlier, with a smaller lab, 3 workers took 9:19 and 4 workers 10:03 to 13:13.
WORKERS_PER_CORE = 1.0
_exit_status = 0


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """The worker count of `-n auto` (pyproject's addopts); PYTEST_XDIST_AUTO_NUM_WORKERS overrides it."""
    if fixed := os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return int(fixed)
    return max(2, round(WORKERS_PER_CORE * len(os.sched_getaffinity(0))))


def _sigint_ignored() -> bool:
    """Whether this process ignores SIGINT at the kernel (what its children inherit; Python's own
    signal.getsignal does not see a disposition that C code set)."""
    ignored = int(Path("/proc/self/status").read_text().split("SigIgn:")[1].split()[0], 16)
    return bool(ignored & (1 << (signal.SIGINT - 1)))


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """A test that sends Ctrl-C to a command it started (`tangolab spy`) needs this process not to
    ignore SIGINT: an ignored signal stays ignored in children, so the command never stops (seen
    under xdist, where a worker had run other modules first; the cause is not known yet)."""
    if _sigint_ignored():
        sys.stderr.write(f"\nSIGINT was ignored in this process before {item.nodeid}: handled again\n")
        signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    global _exit_status
    _exit_status = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """Leave at once once pytest has said everything: cppTango's exit handler (leavefunc) can
    deadlock with a worker thread whose garbage collection unsubscribes a Tango event (seen after
    the GUI tests: hung for good at 0 % CPU, all tests passed). Under xdist each worker leaves so
    too, its results already sent to the controller (at its session's finish); the controller's
    status is the whole run's."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(_exit_status)


@contextmanager
def run_lab(config: LabConfig, folder: Path, **options: bool) -> Iterator[Lab]:
    """Start `config` in `folder` on a free TANGO_HOST port (`options` as Lab takes them, e.g.
    use_starter); afterwards stop every process by PID."""
    lab = Lab(config, folder, f"127.0.0.1:{free_port()}", **options)
    lab.start(timeout=120)
    try:
        yield lab
    finally:
        lab.stop()
    assert not lab.leftovers(), "the lab left processes behind"


#: Servers of the demo lab that the shared `lab` fixture leaves out, with the simulators only they use:
#: each is started by tests of its own, and the whole lab file (some fifty processes) started by three
#: workers at once on two cores took minutes to come up. The GUI's tests run the whole lab file.
OWN_TESTS = {
    "StandaStage": ("standa",), "FunctionGenerator": ("afg31000",), "OwonSupply": ("owon",),
    "EnvironmentBox": ("arduino",), "GpsReceiver": ("gps",), "ForceSpectrometer": ("epz",),
    "Monochromator": ("monochromator",), "CcdController": ("archon",), "NgcCamera": ("ngc",),
    "Telescope": ("telescope",), "AlarmHandler": (), "HostMonitor": (), "Rack": (),
}


def shared_lab(config: LabConfig | None = None) -> LabConfig:
    """The demo lab without the servers of OWN_TESTS and the web monitor: what they archive, plot,
    level and simulate goes with them."""
    config = config or LabConfig.load()
    data = copy.deepcopy(config.data)
    gone = set()
    for executable in OWN_TESTS:
        for classes in data["servers"].pop(executable, {}).values():
            for devices in classes.values():
                gone |= {device.lower() for device in devices}

    def kept(names: list[str]) -> list[str]:
        return [name for name in names if name.lower().rpartition("/")[0] not in gone]

    for classes in data["servers"].get("Archiver", {}).values():
        for devices in classes.values():
            for spec in devices.values():
                properties = spec.get("properties", {})
                if "ArchivedAttributes" in properties:
                    properties["ArchivedAttributes"] = kept(properties["ArchivedAttributes"])
    ours = data.get("tangolab", {})
    unused = {name for simulators in OWN_TESTS.values() for name in simulators}
    ours["simulators"] = {name: spec for name, spec in ours.get("simulators", {}).items() if name not in unused}
    ours["levels"] = {server: level for server, level in ours.get("levels", {}).items()
                      if server.partition("/")[0] not in OWN_TESTS}
    trends = ours.get("gui", {}).get("trends", {})
    for title, names in list(trends.items()):
        trends[title] = kept(names)
        if not trends[title]:
            del trends[title]
    ours.pop("alarms", None)
    ours.pop("web", None)
    return LabConfig(data, config.path)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """The demo lab as `shared_lab` trims it, on free ports, in a folder of its own."""
    with run_lab(shared_lab().with_free_ports(), tmp_path_factory.mktemp("lab")) as lab:
        yield lab


@pytest.fixture(scope="module")
def whole_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """The whole demo lab of the lab file on free ports, in a folder of its own."""
    with run_lab(LabConfig.load().with_free_ports(), tmp_path_factory.mktemp("lab")) as lab:
        yield lab
