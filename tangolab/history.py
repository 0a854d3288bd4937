"""What the lab's archive holds, for scripts and for `tangolab history`.

    from tangolab import history
    h = history.values("lab/cryocon/1/temperatureA", since="1h")
    plot(h["time"], h["value"])

Times are given as epoch seconds, datetimes (naive ones are local time), ISO strings
("2024-05-01 12:00"), "now", or durations back from now: "90s", "30m", "1h", "2d", "1w".
The archive is the `store` argument (a Store, a path or a URL), else $TANGOLAB_ARCHIVE, else
var/archive.db in the current folder, the lab's run folder, where the archiver writes it.
Attribute names may leave out the tango://host:port/ prefix (then they mean the lab's), or name
the host by any of its aliases (localhost, its name, an address), or be short as `tangolab get`
takes them (`cryocon/temperatureA`: the one archived device that matches). Archives are only
read: one on read-only media, or another user's, reads as it is.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import re
import sys
import time as _time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import numpy as np

from .archive import QUALITIES, ArchiveError, Message, Store, open_store
from .names import Names

DEFAULT_ARCHIVE = "var/archive.db"
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"(\d+(?:\.\d*)?)\s*([smhdw])")


def archive_url() -> str:
    """The archive to read when none is given: $TANGOLAB_ARCHIVE or var/archive.db."""
    return os.environ.get("TANGOLAB_ARCHIVE", DEFAULT_ARCHIVE)


def parse_time(when: float | str | datetime, now: float | None = None) -> float:
    """Epoch seconds of a time given in any of the forms the module docstring lists."""
    if isinstance(when, datetime):
        return when.timestamp()
    if not isinstance(when, str):
        return float(when)
    now = _time.time() if now is None else now
    text = when.strip().lower()
    if text == "now":
        return now
    if match := _DURATION.fullmatch(text):
        return now - float(match[1]) * _UNITS[match[2]]
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(when.strip()).timestamp()
    except ValueError:
        raise ValueError(
            f"{when!r} is not a time: give e.g. 1h, 30m, 2d, now, 2024-05-01 12:00 or epoch"
        ) from None


@contextmanager
def _opened(store: Store | str | Path | None) -> Iterator[Store]:
    """The store given, or one opened (and closed after use) from a path or URL."""
    if isinstance(store, Store):
        yield store
        return
    with open_store(store or archive_url(), create=False, read_only=True) as opened:
        yield opened


def values(
    attribute: str,
    since: float | str | datetime,
    until: float | str | datetime | None = None,
    store: Store | str | Path | None = None,
) -> np.ndarray:
    """An attribute's archived values as a masked structured array with fields time, value, quality.

    time is float64 epoch seconds; quality is int16 (0 VALID, 1 INVALID, 2 ALARM, 3 CHANGING,
    4 WARNING). value is in the attribute's Tango type: float64, float32, int16, uint64, ...,
    bool, or objects (str, DevState, an enum's label, 1-D arrays for spectra); it is masked
    where there was no value (the read failed), so h["value"].mean() skips those and a real NaN
    stays a value. h.tolist() gives None for them.
    """
    now = _time.time()
    until = None if until is None else parse_time(until, now)
    with _opened(store) as opened:
        times, found, quality = opened.values(_archived(opened, attribute), parse_time(since, now), until)
    result = np.ma.empty(len(times), [("time", np.float64), ("value", found.dtype), ("quality", np.int16)])
    result["time"], result["value"], result["quality"] = times, found, quality
    return result


def _archived(store: Store, attribute: str) -> str:
    """The attribute a name means: a short one (`cryocon/temperatureA`) resolved among the archived
    devices by the rule `tangolab get` applies to the database's; a full one is the store's to find."""
    if attribute.startswith("tango://") or attribute.strip("/").count("/") >= 3:
        return attribute
    devices = {att.name.removeprefix("tango://").partition("/")[2].rpartition("/")[0] for att in store.attributes()}
    where = f"the archive {store.shown}: `tangolab call archiver AttributeList` lists what it archives"
    device, name = Names(devices=devices, where=where).attribute(attribute)
    return f"{device}/{name}"


def state_at(time: float | str | datetime, store: Store | str | Path | None = None) -> dict[str, tuple]:
    """The last archived (time, value, quality) of every attribute at a time, by attribute name."""
    with _opened(store) as opened:
        return opened.state_at(parse_time(time))


def messages(
    source: str | None = None,
    level: str | None = None,
    since: float | str | datetime | None = None,
    until: float | str | datetime | None = None,
    store: Store | str | Path | None = None,
) -> list[Message]:
    """Lab messages in time order, of one source and one level if given."""
    now = _time.time()
    start, end = (None if t is None else parse_time(t, now) for t in (since, until))
    with _opened(store) as opened:
        return opened.messages(source, level, start, end)


def _plain(value: object) -> object:
    """A value as JSON has it: a state by its name, a spectrum as a list, NaN and infinities as text."""
    if hasattr(value, "name") and isinstance(value, int):  # DevState (an int too)
        return str(value)
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value).replace("inf", "Infinity").replace("nan", "NaN")
    return value


def _text(value: object) -> str:
    """A value as one table or CSV cell: empty where there is none, JSON for a spectrum."""
    value = _plain(value)
    if value is None:
        return ""
    if isinstance(value, list):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.15g}"
    return str(value)


def add_history_command(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add `history ATTR --since 1h [--until T] [--csv] [--archive URL]` to a CLI's subcommands."""
    parser = subparsers.add_parser(
        "history", help="print an attribute's archived values", description=__doc__.split("\n\n")[0]
    )
    _arguments(parser)
    return parser


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("attribute", help="e.g. lab/cryocon/1/temperatureA, cryocon/temperatureA")
    parser.add_argument("--since", default="1h", help="start: 1h, 30m, 2d, an ISO time or epoch seconds (1h)")
    parser.add_argument("--until", help="end, in the same forms (now)")
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--csv", action="store_true", help="print CSV: time (ISO 8601), value, quality")
    output.add_argument(
        "--json", action="store_true", help="print JSON lines: {time (ISO 8601), epoch, value, quality}"
    )
    parser.add_argument("--archive", help=f"archive path or URL (${{TANGOLAB_ARCHIVE}} or {DEFAULT_ARCHIVE})")
    parser.set_defaults(func=run_history)


def run_history(args: argparse.Namespace) -> int:
    """Print the values an argparse namespace of `history` asks for; the exit status.

    What cannot be read is said in one line (exit status 2); output closed early by its reader
    (`| head`) ends the command quietly, with status 141 as a shell gives a process SIGPIPE ends.
    """
    try:
        rows = values(args.attribute, args.since, args.until, args.archive)
    except ArchiveError as error:
        return _fail(str(error))
    except (LookupError, ValueError) as error:  # not archived, an ambiguous or unknown short name
        return _fail(error.args[0] if error.args else str(error))
    except OSError as error:  # a file or a network that refuses: its own words
        return _fail(f"cannot read {args.archive or archive_url()}: {error.strerror or error}")
    try:
        _print(rows, args)
        sys.stdout.flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)  # so that Python's own flush at exit is quiet too
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    return 0


def _fail(message: str) -> int:
    print(f"tangolab history: {message}", file=sys.stderr)
    return 2


def _print(rows: np.ma.MaskedArray, args: argparse.Namespace) -> None:
    out = sys.stdout
    if args.csv:
        writer = csv.writer(out)
        writer.writerow(["time", "value", "quality"])
        for t, value, quality in rows.tolist():
            stamp = datetime.fromtimestamp(t).astimezone().isoformat(timespec="microseconds")
            writer.writerow([stamp, _text(value), QUALITIES[quality]])
        return
    if getattr(args, "json", False):
        for t, value, quality in rows.tolist():
            stamp = datetime.fromtimestamp(t).astimezone().isoformat(timespec="microseconds")
            record = {"time": stamp, "epoch": t, "value": _plain(value), "quality": QUALITIES[quality]}
            out.write(json.dumps(record) + "\n")
        return
    out.write(f"{'time':<23}  {'quality':<8}  value\n")
    for t, value, quality in rows.tolist():
        stamp = datetime.fromtimestamp(t).isoformat(sep=" ", timespec="milliseconds")
        out.write(f"{stamp:<23}  {QUALITIES[quality]:<8}  {_text(value)}\n")


def history_main(argv: list[str] | None = None) -> int:
    """`tangolab history` on its own: parse argv and print."""
    parser = argparse.ArgumentParser(prog="tangolab history", description=__doc__.split("\n\n")[0])
    _arguments(parser)
    return run_history(parser.parse_args(argv))
