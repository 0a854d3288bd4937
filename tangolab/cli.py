"""`tangolab`: bring the lab up and down, show it, open its window, read its history, and read,
write, call, watch and spy on its devices from a shell."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time

import tango

from .commands import EXIT_CODES, add_commands
from .discovery import add_discover_command
from .history import add_history_command, run_history
from .lab_config import DEFAULT_CONFIG, LabConfig
from .launcher import Lab, LabError
from .processes import lab_log


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="tangolab", description=__doc__, epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)

    up = commands.add_parser("up", help="start the lab: database, simulators, device servers")
    up.add_argument("--config", default=str(DEFAULT_CONFIG), help="the lab's dsconfig JSON (default: %(default)s)")
    up.add_argument(
        "--tango-host",
        default=os.environ.get("TANGO_HOST", "localhost:10000"),
        help="HOST:PORT of the lab's Tango database (default: $TANGO_HOST or localhost:10000); "
        "use $(hostname):PORT to serve other machines",
    )
    up.add_argument("--detach", action="store_true", help="return once the lab is up; stop it with `tangolab down`")
    up.add_argument(
        "--starter", action="store_true",
        help="start the device servers through Tango's Starter (Debian's tango-starter), as a lab over "
        "several hosts runs; tangolab starts this host's Starter",
    )
    up.add_argument(
        "--reset", action="store_true",
        help="apply the whole lab file again, undoing changes made while the lab ran "
        "(archived attributes, attribute configuration, properties)",
    )
    up.set_defaults(run=_up)

    for name, run, text in (
        ("down", _down, "stop every process of a running lab (highest level first), found from its run folder "
         + "(--run-dir) or its --tango-host, even when its state file is gone"),
        ("status", _status, "show the devices and the programs of a running lab, found from its run folder "
         + "(--run-dir) or its --tango-host"),
    ):
        sub = commands.add_parser(name, help=text)
        sub.add_argument("--tango-host", default=None,
                         help="find the lab by the HOST:PORT of its database rather than by its run folder")
        sub.set_defaults(run=run)

    gui = commands.add_parser("gui", help="open the lab's Taurus window")
    gui.add_argument("--config", default=str(DEFAULT_CONFIG), help="the lab's dsconfig JSON (default: %(default)s)")
    gui.set_defaults(run=_gui)

    history = add_history_command(commands)
    history.set_defaults(run=_history)
    add_discover_command(commands)

    add_commands(commands)

    for sub in commands.choices.values():
        sub.add_argument("--run-dir", default="var", help="the lab's run folder: database, logs (default: %(default)s)")

    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except LabError as exc:
        print(f"tangolab: {exc}", file=sys.stderr)
        return 1


def _up(args: argparse.Namespace) -> int:
    lab = Lab(LabConfig.load(args.config), args.run_dir, args.tango_host, reset=args.reset, use_starter=args.starter)
    signal.signal(signal.SIGTERM, _interrupt)  # SIGTERM stops the lab in order, as Ctrl-C does
    print(f"starting the lab of {args.config} in {lab.run_dir} ...", flush=True)
    try:
        lab.start()
        lab.wait_settled()
        _print_table(lab)
        failed = _report_failed(lab)
        if args.detach:
            print("detached: `tangolab down` stops it, `tangolab status` shows it")
            return 1 if failed else 0
        print(f"Ctrl-C stops the lab; what the supervisor does is in {lab_log(lab.run_dir)}:", flush=True)
        with open(lab_log(lab.run_dir)) as log:
            log.seek(0, os.SEEK_END)
            while True:
                for line in log:
                    print(line, end="", flush=True)
                if not lab.supervisor_alive():  # who supervises the supervisor: this loop
                    print("the supervisor died: starting it again (it adopts the running programs)",
                          file=sys.stderr, flush=True)
                    lab.start_supervisor()
                time.sleep(0.5)
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("stopping the lab ...", flush=True)
        lab.stop()
    return 0


def _down(args: argparse.Namespace) -> int:
    lab = Lab.attach(args.run_dir, args.tango_host)
    lab.stop()  # raises, naming them, if processes of the lab survived
    print(f"stopped the lab of {lab.run_dir} (TANGO_HOST {lab.tango_host}); nothing of it runs")
    return 0


def _status(args: argparse.Namespace) -> int:
    lab = Lab.attach(args.run_dir, args.tango_host)
    _print_table(lab)
    try:
        programs = lab.programs()
    except tango.DevFailed as exc:
        print(f"\nthe supervisor {lab.supervisor_name} does not answer: {exc.args[0].desc.strip()}")
        return 1
    print()
    _print_columns(("program", "level", "phase", "pid", "uptime", "restarts"), [
        (p["name"], str(p["level"]), p["phase"], str(p["pid"] or "-"), f"{p['uptime']:.0f} s", str(p["restarts"]))
        for p in programs
    ])
    return 1 if _report_failed(lab) else 0


def _report_failed(lab: Lab) -> bool:
    """Tell what the supervisor gave up on, with where to look; True if anything failed."""
    failed = sorted(lab.failed())
    for name in failed:
        print(f"{name} FAILED (crash loop): `tangolab call {lab.supervisor_name} Log {name}` shows why; "
              f"the rest of the lab is up", file=sys.stderr)
    return bool(failed)


def _gui(args: argparse.Namespace) -> int:
    from gui.main_window import run

    try:  # the lab this run folder holds, else $TANGO_HOST
        tango_host = Lab.attach(args.run_dir).tango_host
    except LabError:
        tango_host = os.environ.get("TANGO_HOST", "localhost:10000")
    return run(LabConfig.load(args.config), tango_host)


def _history(args: argparse.Namespace) -> int:
    if args.archive is None and "TANGOLAB_ARCHIVE" not in os.environ:
        args.archive = os.path.join(args.run_dir, "archive.db")  # the archiver's default Store
    return run_history(args)


def _print_table(lab: Lab) -> None:
    columns = ("device", "class", "state", "url")
    _print_columns(columns, [tuple(row[c] for c in columns) for row in lab.table()])
    print(f"\nexport TANGO_HOST={lab.tango_host}", flush=True)


def _print_columns(columns: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    """A table: upper-case headings, each column as wide as its widest cell."""
    widths = [max(len(c), *(len(row[i]) for row in rows)) for i, c in enumerate(columns)]
    for row in (tuple(c.upper() for c in columns), *rows):
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)))


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
