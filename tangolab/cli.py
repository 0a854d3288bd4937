"""`tangolab`: bring the lab up and down, show it, open its window, read its history, and read,
write, call, watch and spy on its devices from a shell."""

from __future__ import annotations

import argparse
import os
import select
import signal
import sys
from pathlib import Path
from typing import TextIO

import tango

from .alarms.command import add_alarms_command
from .commands import EXIT_CODES, add_commands
from .discovery import add_discover_command
from .history import add_history_command, run_history
from .lab_config import DEFAULT_CONFIG, WEB, LabConfig
from .launcher import Lab, LabError, LabUp, command_line
from .processes import DATABASE, lab_log, log_path, simulator_ports
from .web.command import add_web_command
from .web.settings import WebSettings

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)  # each stops a lab in the foreground, as Ctrl-C


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
    up.add_argument("--detach", action="store_true", help="return once the lab is up; stop it with `tangolab down`. "
                    "On a lab already up whose database, supervisor or watchdog died, `up` brings them back")
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
    add_web_command(commands)

    add_commands(commands)
    add_alarms_command(commands)

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
    for signum in STOP_SIGNALS:
        if signal.getsignal(signum) is not signal.SIG_IGN:  # ignored on purpose (nohup): it stays so
            signal.signal(signum, _interrupt)
    _say(f"starting the lab of {args.config} in {lab.run_dir} ...")
    try:
        try:
            lab.start()
        except LabUp:  # processes of a lab run there: bring back what of it died, or refuse if nothing did
            lab = Lab.attach(lab.run_dir)
            dead = lab.repair()
            _say(f"repaired the lab already up in {lab.run_dir}: {', '.join(dead)} had died and run again")
        lab.wait_settled()
        _print_table(lab)
        failed = _report_failed(lab)
        if args.detach:
            _say(f"detached: `{command_line('down', run_dir=lab.run_dir)}` stops it, "
                 f"`{command_line('status', run_dir=lab.run_dir)}` shows it")
            return 1 if failed else 0
        _say(f"Ctrl-C stops the lab; what the supervisor does is in {lab_log(lab.run_dir)}:")
        _follow(lab_log(lab.run_dir))  # returns when nobody reads the output any more
    except KeyboardInterrupt:  # from now on the stop signals are ignored: nothing interrupts the stop
        pass
    _say("stopping the lab ...")
    lab.stop()
    return 0


def _follow(path: Path) -> None:
    """Print the lab log as it grows until the output is closed: the reader of the pipe gone (`| tee`
    ended by Ctrl-C), or the terminal gone (its SIGHUP ends this sooner)."""
    output = select.poll()
    output.register(sys.stdout.fileno(), 0)  # only POLLERR, POLLHUP, POLLNVAL: no reader any more
    with open(path) as log:
        log.seek(0, os.SEEK_END)
        while all(_say(line, end="") for line in log) and not output.poll(500):
            pass
    _silence(sys.stdout)
    _ignore(STOP_SIGNALS)  # as after Ctrl-C: nothing interrupts the stop


def _say(text: str, end: str = "\n", stream: TextIO | None = None) -> bool:
    """Print a line; False when nobody reads it any more (then the stream is silenced, so that the
    lab is still stopped in order and Python's flush at exit stays quiet)."""
    stream = stream or sys.stdout
    try:
        print(text, end=end, file=stream, flush=True)
        return True
    except OSError:  # BrokenPipeError; EIO from a terminal that hung up
        _silence(stream)
        return False


def _silence(stream: TextIO) -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, stream.fileno())
    os.close(devnull)


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
        _say(f"\nthe supervisor {lab.supervisor_name} does not answer ({' '.join(exc.args[0].desc.split())}); "
             f"its watchdog restarts it within seconds, `{command_line('up', '--detach', run_dir=lab.run_dir)}` "
             "brings back what of the lab died")
        return 1
    _say("")
    _print_columns(("program", "level", "phase", "pid", "uptime", "restarts", "ports"), [
        (p["name"], str(p["level"]), p["phase"], str(p["pid"] or "-"), f"{p['uptime']:.0f} s", str(p["restarts"]),
         _ports(lab, p["name"]) if p["phase"] == "running" else "")
        for p in programs
    ])
    return 1 if _report_failed(lab) else 0


def _ports(lab: Lab, program: str) -> str:
    """Where a program listens: the database's port, a simulator's port and fault-injection port."""
    if program == DATABASE:
        return str(lab.port)
    if program == WEB and (web := WebSettings.of(lab.config, lab.run_dir, lab.tango_host)) is not None:
        return web.address
    if program.startswith("simulator/") and (announced := simulator_ports(log_path(lab.run_dir, program))):
        return f"{announced[1]}, control {announced[2]}"
    return ""


def _report_failed(lab: Lab) -> bool:
    """Tell what the supervisor gave up on, with where to look; True if anything failed."""
    failed = sorted(lab.failed())
    for name in failed:
        _say(f"{name} FAILED (crash loop): `{command_line('call', lab.supervisor_name, 'Log', name)}` shows why; "
             "the rest of the lab is up", stream=sys.stderr)
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
    """The devices, and below them why those that do not answer do not (in full: not in a cell)."""
    columns = ("device", "class", "state", "url")
    rows = lab.table()
    _print_columns(columns, [tuple(row[c] for c in columns) for row in rows])
    if errors := [f"{row['device']}: {row['error']}" for row in rows if row["error"]]:
        _say("\n" + "\n".join(errors))
    _say(f"\nexport TANGO_HOST={lab.tango_host}")
    if (web := WebSettings.of(lab.config, lab.run_dir, lab.tango_host)) is not None:
        _say(f"web monitor: {web.address}")


def _print_columns(columns: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    """A table: upper-case headings, each column as wide as its widest cell."""
    widths = [max(len(c), *(len(row[i]) for row in rows)) for i, c in enumerate(columns)]
    for row in (tuple(c.upper() for c in columns), *rows):
        _say("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())


def _interrupt(signum: int, frame: object) -> None:
    """Ctrl-C, SIGTERM, SIGHUP (the terminal closed): stop the lab, once."""
    _ignore(STOP_SIGNALS)
    raise KeyboardInterrupt


def _ignore(signals: tuple[signal.Signals, ...]) -> None:
    for signum in signals:
        signal.signal(signum, signal.SIG_IGN)


if __name__ == "__main__":
    sys.exit(main())
