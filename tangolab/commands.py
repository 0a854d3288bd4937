"""`tangolab get/set/call/put/devices/watch/spy/record/message`: the lab from a shell, on any TANGO_HOST.

Attribute and device names are full (`lab/cryocon/1/temperatureA`) or short where only one
device matches (`cryocon/temperatureA`, `tec/1/objectTemperature`). Values are written in the
attribute's or the command's type: numbers, true/false, an enum by label or index, a state by
name, spectra and arrays as JSON (`[1, 2, 3]`).
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import pathlib
import socket
import sys
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TextIO

import tango
from tango import CmdArgType as T

from .names import Ambiguous, BadName, Names, NotFound, trl
from .scripting import OperationError
from .scripting import run as run_operation
from .spy import DEFAULT_QUEUE, Spy, json_value, quality_name, stamp
from .typed_values import BadValue, attribute_value, command_argument

OK, TANGO_ERROR, USAGE, NOT_FOUND, UNREACHABLE = 0, 1, 2, 3, 4
INTERRUPTED = 130  # as a shell reports a command ended by Ctrl-C
EXIT_CODES = f"""exit status:
  {OK}  done
  {TANGO_ERROR}  the device refused or failed, or a long operation did not end done (the reason is printed)
  {USAGE}  bad arguments: a value not of the attribute's type, an ambiguous short name
  {NOT_FOUND}  no such device, attribute or command in the database
  {UNREACHABLE}  the database or a device does not answer (not running, timed out)
  {INTERRUPTED}  `call` interrupted by Ctrl-C during a long operation (Stop was sent)
"""
RELAY = "lab/relay/1"
ARCHIVER = "lab/archiver/1"
UNREACHABLE_REASONS = (
    "API_DeviceNotExported", "API_CantConnectToDevice", "API_DeviceTimedOut", "API_CorbaException",
    "API_CommunicationFailed", "API_ServerNotRunning", "API_CantConnectToDatabase", "API_DeviceNotDefined",
    "API_ConnectionFailed", "API_EventTimeout",
)
# Tango's reasons, and those of tangolab's devices (the archiver's AttributeAdd/AttributeRemove, the supervisor's)
NOT_FOUND_REASONS = ("API_AttrNotFound", "API_CommandNotFound", "DB_DeviceNotDefined", "API_AttributeNotFound",
                     "NoSuchDevice", "NoSuchAttribute", "NotArchived", "UnknownProgram", "NoSuchRule")
USAGE_REASONS = ("API_IncompatibleArgumentType", "API_IncompatibleCmdArgumentType", "BadMessage",
                 "API_WAttrOutsideLimit", "BadAttributeName", "BadAlarmRequest")


class CommandError(Exception):
    """What went wrong, in one line that says what to do, and the exit status."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add the verbs to a CLI's subcommands, each with `--tango-host` and `--json`."""
    def verb(name: str, run: Callable[[argparse.Namespace], int], text: str) -> argparse.ArgumentParser:
        parser = subparsers.add_parser(
            name, help=text, description=f"{text}.\n\n{__doc__.split(chr(10) * 2)[1]}", epilog=EXIT_CODES,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        parser.add_argument(
            "--tango-host", help="HOST:PORT of the Tango database (default: $TANGO_HOST, else the lab of --run-dir)"
        )
        parser.add_argument("--json", action="store_true", help="one JSON object a line, for scripts")
        parser.set_defaults(run=lambda args: _run(run, args))
        return parser

    get = verb("get", _get, "read attributes")
    get.add_argument("attributes", nargs="+", metavar="ATTR", help="e.g. lab/cryocon/1/temperatureA, cryocon/temperatureA")
    set_ = verb("set", _set, "write an attribute, in its type, and read it back")
    set_.add_argument("attribute", metavar="ATTR")
    set_.add_argument("value", metavar="VALUE", help="a number, true/false, an enum label or index, JSON for spectra")
    call = verb("call", _call, "run a device's command and print what it returns; a long operation it starts "
                "(a move, a pull) shows its progress and is waited for, and Ctrl-C stops it")
    call.add_argument("device", metavar="DEVICE")
    call.add_argument("command_name", metavar="COMMAND")
    call.add_argument("argument", nargs="?", metavar="ARG", help="in the command's type; arrays as JSON")
    put = verb("put", _put, f"publish a value under a name on the relay ({RELAY}), creating it on first put")
    put.add_argument("name", metavar="NAME", help="<name>_<type><count>, e.g. beam_f1, label_c32 (see the relay)")
    put.add_argument("value", metavar="VALUE", help="JSON (3.5, true, [1, 2], \"text\"); other text is a string")
    put.add_argument("--relay", default=RELAY, help="the relay device (default: %(default)s)")
    devices = verb("devices", _devices, "list the database's devices with class, server and state")
    devices.add_argument("pattern", nargs="?", default="*", metavar="PATTERN", help="a glob or short name (all)")
    watch = verb("watch", _watch, "print attributes' values as they change, until Ctrl-C")
    watch.add_argument("attributes", nargs="+", metavar="ATTR")
    watch.add_argument("--period", type=float, default=1.0, help="read those without events every (1) s")
    spy = verb("spy", _spy, "print every event of the lab's attributes as JSON lines, losses included, until Ctrl-C")
    spy.add_argument("pattern", nargs="?", default="*", metavar="PATTERN",
                     help="devices (lab/tec/*, tec), optionally /ATTRIBUTE-GLOB (default: the whole lab)")
    spy.add_argument("--queue-size", type=int, default=DEFAULT_QUEUE, help="events kept per attribute (%(default)s)")
    record = verb("record", _record, "record a streaming device's blocks into an HDF5 file until Ctrl-C or --seconds")
    record.add_argument("device", metavar="DEVICE", help="a device that streams blocks (its attribute `block`)")
    record.add_argument("--out", required=True, type=pathlib.Path, metavar="FILE", help="the HDF5 file to write, e.g. run.h5")
    record.add_argument("--seconds", type=float, help="stop after this many seconds of blocks (default: at Ctrl-C)")
    record.add_argument("--tsv", action="store_true",
                        help="also write numbered TSV files beside it (FILE_0001.tsv ...), one per save window")
    message = verb("message", _message, f"write a message to the lab log ({ARCHIVER})")
    message.add_argument("level", metavar="LEVEL", help="debug, info, message, warning, error or success")
    message.add_argument("text", nargs="+", metavar="TEXT")
    message.add_argument("--source", default=f"{getpass.getuser()}@{socket.gethostname()}",
                         help="who says it (default: %(default)s)")
    message.add_argument("--archiver", default=ARCHIVER, help="the archiver device (default: %(default)s)")


def _run(run: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Run one verb: errors as one line on stderr and their status; Ctrl-C ends quietly."""
    try:
        _use_tango_host(args)
        args.names = Names()
        return run(args)
    except CommandError as error:
        return _fail(args, str(error), error.status)
    except BadValue as error:
        return _fail(args, str(error), USAGE)
    except UnicodeError as error:
        if "Latin-1" not in str(error):
            raise
        return _fail(args, f"Tango carries Latin-1 text only: {error}", USAGE)  # pytango's words; nothing was sent
    except Ambiguous as error:
        return _fail(args, str(error), USAGE)
    except (NotFound, BadName) as error:
        return _fail(args, str(error), NOT_FOUND)
    except tango.DevFailed as error:
        return _fail(args, *_explained(error))
    except KeyboardInterrupt:
        return OK
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)  # so that Python's own flush at exit is quiet too
        os.dup2(devnull, sys.stdout.fileno())
        return 141


def _fail(args: argparse.Namespace, message: str, status: int) -> int:
    print(f"tangolab {args.command}: {message}", file=sys.stderr)
    return status


def _use_tango_host(args: argparse.Namespace) -> None:
    """--tango-host, else $TANGO_HOST, else the lab up in --run-dir; never /etc/tangorc's default."""
    host = args.tango_host or os.environ.get("TANGO_HOST")
    if not host:
        from .launcher import Lab, LabError  # only for its state file

        try:
            host = Lab.attach(args.run_dir).tango_host
        except LabError:
            raise CommandError(
                "no TANGO_HOST: give --tango-host HOST:PORT or export TANGO_HOST (the lab's, e.g. localhost:10000)",
                USAGE,
            ) from None
    os.environ["TANGO_HOST"] = host


def _explained(error: tango.DevFailed, what: str = "") -> tuple[str, int]:
    """A DevFailed as one line and its exit status."""
    reasons = [e.reason for e in error.args]
    text = f"{what}: " if what else ""
    if any(r in UNREACHABLE_REASONS for r in reasons):
        if "API_CantConnectToDatabase" in reasons or "API_DeviceNotDefined" in reasons and "Database" in str(error):
            host = os.environ.get("TANGO_HOST")
            return f"the Tango database at {host} does not answer: is the lab up and TANGO_HOST right?", UNREACHABLE
        said = ": " + error.args[0].desc.strip().splitlines()[0] if error.args[0].desc.strip() else ""
        hint = "is its server running? `tangolab devices` shows the states"
        return f"{text}does not answer ({reasons[0]}{said}): {hint}", UNREACHABLE
    if any(r in NOT_FOUND_REASONS for r in reasons):
        return f"{text}{' '.join(error.args[0].desc.split())}", NOT_FOUND
    # the device's own words: its last error is where it failed first, its first the outermost
    desc = next((e.desc for e in error.args if e.reason not in ("API_CommandFailed",)), error.args[0].desc)
    return f"{text}{' '.join(desc.split())}", USAGE if any(r in USAGE_REASONS for r in reasons) else TANGO_ERROR


def _out(args: argparse.Namespace, human: str, record: dict) -> None:
    sys.stdout.write((json.dumps(record) if args.json else human) + "\n")
    sys.stdout.flush()


# -- values ------------------------------------------------------------------------------------

def shown(value: object, labels: Iterable[str] = ()) -> str:
    """A value as a person reads it: spectra as JSON, booleans as true/false."""
    plain = json_value(value, tuple(labels))
    if isinstance(plain, (list, dict)):
        return json.dumps(plain)
    if isinstance(plain, bool):
        return "true" if plain else "false"
    return str(plain)


def _labels(info: tango.AttributeInfoEx) -> tuple[str, ...]:
    return tuple(info.enum_labels) if info.data_type == T.DevEnum else ()


def _reading(args: argparse.Namespace, full: str, reading: tango.DeviceAttribute, info: tango.AttributeInfoEx) -> None:
    unit = "" if info.unit in ("", "No unit") else info.unit
    quality = quality_name(reading.quality)
    value = shown(reading.value, _labels(info))
    if isinstance(reading.value, float) and info.format.startswith("%") and info.format[-1] in "efg":
        value = (info.format % reading.value).strip()  # as the device's format shows it
    human = f"{full}  {value}{f' {unit}' if unit else ''}{'' if quality == 'VALID' else f'  [{quality}]'}"
    _out(args, human, {"attribute": full, "value": json_value(reading.value, _labels(info)), "unit": unit,
                       "quality": quality, "time": stamp(reading.time.totime())})


# -- verbs -------------------------------------------------------------------------------------

def _attribute(args: argparse.Namespace, name: str) -> tuple[tango.DeviceProxy, str, tango.AttributeInfoEx, str]:
    """Proxy, attribute, its configuration and its full name; errors say which name is wrong."""
    device, attribute = args.names.attribute(name)
    proxy = tango.DeviceProxy(trl(device))
    try:
        info = proxy.get_attribute_config_ex(attribute)[0]
    except tango.DevFailed as error:
        message, status = _explained(error, f"{device}/{attribute}")
        if status == NOT_FOUND or "API_AttrNotFound" in str(error):
            try:
                known = ", ".join(proxy.get_attribute_list())
            except tango.DevFailed:
                known = ""
            message = f"{device} has no attribute {attribute!r}" + (f"; it has {known}" if known else "")
            status = NOT_FOUND
        raise CommandError(message, status) from None
    return proxy, info.name, info, f"{device}/{info.name}"


def _get(args: argparse.Namespace) -> int:
    status = OK
    for name in args.attributes:
        try:
            proxy, attribute, info, full = _attribute(args, name)
            _reading(args, full, proxy.read_attribute(attribute), info)
        except CommandError as error:
            status = status or error.status
            _fail(args, str(error), error.status)
        except tango.DevFailed as error:
            message, code = _explained(error, name)
            status = status or code
            _fail(args, message, code)
    return status


def _set(args: argparse.Namespace) -> int:
    proxy, attribute, info, full = _attribute(args, args.attribute)
    if info.writable == tango.AttrWriteType.READ:
        raise CommandError(f"{full} is read-only; `tangolab get {full}` reads it", USAGE)
    value = attribute_value(args.value, info, full)
    try:
        proxy.write_attribute(attribute, value)
    except tango.DevFailed as error:
        message, status = _explained(error, f"{full} refused {args.value}")
        if "API_WAttrOutsideLimit" in str(error):
            message += f" (allowed: {info.min_value} … {info.max_value})"
        raise CommandError(message, status) from None
    _reading(args, full, proxy.read_attribute(attribute), info)
    return OK


def _call(args: argparse.Namespace) -> int:
    device = args.names.device(args.device)
    proxy = tango.DeviceProxy(trl(device))
    try:
        info = proxy.command_query(args.command_name)
    except tango.DevFailed as error:
        message, status = _explained(error, f"{device}")
        if status in (NOT_FOUND, TANGO_ERROR):
            commands = ", ".join(c.cmd_name for c in proxy.command_list_query())
            raise CommandError(f"{device} has no command {args.command_name!r}; it has {commands}", NOT_FOUND) from None
        raise CommandError(message, status) from None
    argument = command_argument(args.argument, info.in_type, f"{device} {info.cmd_name}")
    bar = ProgressBar(sys.stderr)
    try:
        result = run_operation(proxy, info.cmd_name, argument, on_progress=bar.show)
    except tango.DevFailed as error:
        raise CommandError(*_explained(error, f"{device} {info.cmd_name}")) from None
    except OperationError as error:
        raise CommandError(str(error), TANGO_ERROR) from None
    except KeyboardInterrupt as interrupt:  # during a long operation run_operation sent Stop, and says so
        raise CommandError(f"interrupted{': ' if str(interrupt) else ''}{interrupt}", INTERRUPTED) from None
    finally:
        bar.close()
    human = "done" if result is None else shown(result)
    _out(args, human, {"device": device, "command": info.cmd_name, "result": json_value(result)})
    return OK


class ProgressBar:
    """A long operation's progress as one line that rewrites itself, on a terminal only (a log
    or a pipe gets the result alone)."""

    WIDTH = 30

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.shown = False
        self.tty = stream.isatty()

    def show(self, operation: str, percent: float, seconds_left: float) -> None:
        if not self.tty:
            return
        filled = round(self.WIDTH * percent / 100)
        bar = "#" * filled + "-" * (self.WIDTH - filled)
        self.stream.write(f"\r{operation} [{bar}] {percent:5.1f} %  {seconds_left:6.1f} s left\x1b[K")
        self.stream.flush()
        self.shown = True

    def close(self) -> None:
        if self.shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


def _put(args: argparse.Namespace) -> int:
    try:
        json.loads(args.value)
        text = args.value
    except json.JSONDecodeError:
        text = json.dumps(args.value)  # plain words are a string
    if args.relay.lower() not in (d.lower() for d in args.names.devices):
        raise CommandError(
            f"no relay device {args.relay} in the database of {os.environ['TANGO_HOST']}: add the Relay to the lab "
            "or name yours with --relay", NOT_FOUND,
        )
    try:
        tango.DeviceProxy(trl(args.relay)).command_inout("Put", [args.name, text])
    except tango.DevFailed as error:
        message, status = _explained(error, f"{args.relay} Put {args.name}")
        raise CommandError(message, USAGE if status == TANGO_ERROR else status) from None
    _out(args, f"{args.relay}/{args.name} = {text}", {"device": args.relay, "name": args.name, "value": json.loads(text)})
    return OK


def _devices(args: argparse.Namespace) -> int:
    found = args.names.matching(args.pattern)
    if not found:
        raise CommandError(f"no device matches {args.pattern!r}; `tangolab devices` lists them all", NOT_FOUND)

    def row(device: str) -> dict:
        info = args.names.database.get_device_info(device)
        state = "not running"
        if info.exported:
            try:
                proxy = tango.DeviceProxy(trl(device))
                proxy.set_timeout_millis(2000)
                state = str(proxy.state())
            except tango.DevFailed as error:
                state = f"unreachable ({error.args[0].reason})"
        return {"device": device, "class": info.class_name, "server": info.ds_full_name, "state": state}

    with ThreadPoolExecutor(max_workers=8) as pool:
        rows = list(pool.map(row, found))
    if args.json:
        for record in rows:
            _out(args, "", record)
        return OK
    columns = ("device", "class", "server", "state")
    widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in columns}
    print("  ".join(c.upper().ljust(widths[c]) for c in columns).rstrip())
    for record in rows:
        print("  ".join(record[c].ljust(widths[c]) for c in columns).rstrip())
    return OK


def _watch(args: argparse.Namespace) -> int:
    attributes = [_attribute(args, name) for name in args.attributes]  # every name checked before watching
    spies, polled = [], []
    next_read = 0.0
    try:
        for proxy, attribute, info, full in attributes:
            spy = Spy(pattern=attribute, devices=[full.rpartition("/")[0]], queue_size=DEFAULT_QUEUE)
            spies.append(spy)
            for record in spy.start():
                if record["kind"] == "unwatched":
                    polled.append((proxy, attribute, info, full))
                else:
                    _watch_line(args, record)
        while True:
            batch = [record for spy in spies for record in spy.poll()]
            for record in sorted(batch, key=lambda r: r.get("time", "")):
                _watch_line(args, record)
            if polled and time.monotonic() >= next_read:
                next_read = time.monotonic() + args.period
                for proxy, attribute, info, full in polled:
                    try:
                        _reading(args, full, proxy.read_attribute(attribute), info)
                    except tango.DevFailed as error:
                        _fail(args, _explained(error, full)[0], UNREACHABLE)
            if not batch:
                time.sleep(0.05)
    finally:
        for spy in spies:
            spy.stop()


def _watch_line(args: argparse.Namespace, record: dict) -> None:
    """A spy record as a watch line."""
    if args.json:
        _out(args, "", record)
        return
    when = record.get("time", "")[11:23]
    name = f"{record['device']}/{record.get('attribute', '')}"
    if record["kind"] == "event":
        value = record["value"]
        text = json.dumps(value) if isinstance(value, list) else shown(value)
        quality = "" if record["quality"] == "VALID" else f"  [{record['quality']}]"
        _out(args, f"{when}  {name}  {text}{quality}", record)
    elif record["kind"] == "lost":
        _out(args, f"{when}  {name}  LOST EVENTS: {record['lost']}", record)
    else:
        _out(args, f"{when}  {name}  {record.get('error') or record.get('reason') or record['kind']}", record)


def _spy(args: argparse.Namespace) -> int:
    if args.queue_size < 1:
        raise CommandError(f"--queue-size must be at least 1, got {args.queue_size}", USAGE)
    spy = Spy(pattern=args.pattern, queue_size=args.queue_size, names=args.names)
    try:
        batch = spy.start()
        while True:  # one write and flush per batch: a line per event, without a system call per line
            if batch:
                sys.stdout.write("".join(json.dumps(record) + "\n" for record in batch))
                sys.stdout.flush()
            else:
                time.sleep(0.02)
            batch = spy.poll()
    except LookupError as error:
        raise CommandError(str(error), NOT_FOUND) from None
    finally:
        spy.stop()
    return OK


def _message(args: argparse.Namespace) -> int:
    archiver = args.names.device(args.archiver)
    text = " ".join(args.text)
    try:
        tango.DeviceProxy(trl(archiver)).command_inout("Message", [args.level, args.source, text])
    except tango.DevFailed as error:
        raise CommandError(*_explained(error, archiver)) from None
    _out(args, f"{args.level.lower()} from {args.source} logged by {archiver}",
         {"archiver": archiver, "level": args.level.lower(), "source": args.source, "text": text})
    return OK



def _record(args: argparse.Namespace) -> int:
    from . import record  # h5py only for this verb

    if args.out.exists():
        raise CommandError(f"{args.out} exists: give another --out, or remove it first", USAGE)
    if not args.out.resolve().parent.is_dir():
        raise CommandError(f"no folder {args.out.parent} for {args.out}", USAGE)
    if args.seconds is not None and args.seconds <= 0:
        raise CommandError(f"--seconds must be above 0, got {args.seconds:g}", USAGE)
    device = args.names.device(args.device)
    proxy = tango.DeviceProxy(trl(device))
    if "block" not in (name.lower() for name in proxy.get_attribute_list()):
        raise CommandError(f"{device} streams no blocks (it has no attribute `block`): only streaming devices "
                           "are recorded", NOT_FOUND)
    recording = record.run(trl(device), args.out, args.seconds, args.tsv)
    counts = recording.counts
    _out(args, record.summary(recording), {
        "file": str(args.out), "device": device, "first_block": counts.first_block, "last_block": counts.last_block,
        "blocks_received": counts.received, "blocks_dropped_by_device": counts.dropped_by_device,
        "blocks_lost_on_the_way": counts.lost_on_the_way, "gaps": counts.gaps, "samples": counts.samples,
    })
    return OK
