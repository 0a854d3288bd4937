"""What the lab's archive holds, for scripts and for `tangolab history`.

    from tangolab import history
    h = history.values("lab/cryocon/1/temperatureA", since="1h")
    plot(h["time"], h["value"])

Times are given as epoch seconds, datetimes (naive ones are local time), ISO strings
("2024-05-01 12:00"), "now", or durations back from now: "90s", "30m", "1h", "2d", "1w".
The archive is the `store` argument (a Store, a path or a URL), else $TANGOLAB_ARCHIVE, else
var/archive.db in the current folder, the lab's run folder, where the archiver writes it.
Attribute names may leave out the tango://host:port/ prefix.
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

from .archive_store import QUALITIES, Message, Store, open_store

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
    with open_store(store or archive_url(), create=False) as opened:
        yield opened


def values(
    attribute: str,
    since: float | str | datetime,
    until: float | str | datetime | None = None,
    store: Store | str | Path | None = None,
) -> np.ndarray:
    """An attribute's archived values as a structured array with fields time, value, quality.

    time is float64 epoch seconds; quality is int16 (0 VALID, 1 INVALID, 2 ALARM, 3 CHANGING,
    4 WARNING). value is float64 for numbers (NaN where the read failed), else an object array of
    strings or of 1-D arrays for spectra (None where the read failed).
    """
    now = _time.time()
    until = None if until is None else parse_time(until, now)
    with _opened(store) as opened:
        times, found, quality = opened.values(attribute, parse_time(since, now), until)
    value_type = np.float64 if found.dtype == np.float64 else object
    result = np.empty(len(times), [("time", np.float64), ("value", value_type), ("quality", np.int16)])
    result["time"], result["value"], result["quality"] = times, found, quality
    return result


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


def _text(value: object) -> str:
    """A value as one table or CSV cell: empty where the read failed, JSON for a spectrum."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, np.ndarray):
        return json.dumps(value.tolist())
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
    parser.add_argument("attribute", help="e.g. lab/cryocon/1/temperatureA")
    parser.add_argument("--since", default="1h", help="start: 1h, 30m, 2d, an ISO time or epoch seconds (1h)")
    parser.add_argument("--until", help="end, in the same forms (now)")
    parser.add_argument("--csv", action="store_true", help="print CSV: time (ISO 8601), value, quality")
    parser.add_argument("--archive", help=f"archive path or URL (${{TANGOLAB_ARCHIVE}} or {DEFAULT_ARCHIVE})")
    parser.set_defaults(func=run_history)


def run_history(args: argparse.Namespace) -> int:
    """Print the values an argparse namespace of `history` asks for; the exit status."""
    try:
        rows = values(args.attribute, args.since, args.until, args.archive)
    except (KeyError, ValueError, FileNotFoundError) as error:
        print(f"tangolab history: {error.args[0] if error.args else error}", file=sys.stderr)
        return 2
    out = sys.stdout
    if args.csv:
        writer = csv.writer(out)
        writer.writerow(["time", "value", "quality"])
        for t, value, quality in rows.tolist():
            stamp = datetime.fromtimestamp(t).astimezone().isoformat(timespec="microseconds")
            writer.writerow([stamp, _text(value), QUALITIES[quality]])
        return 0
    out.write(f"{'time':<23}  {'quality':<8}  value\n")
    for t, value, quality in rows.tolist():
        stamp = datetime.fromtimestamp(t).isoformat(sep=" ", timespec="milliseconds")
        out.write(f"{stamp:<23}  {QUALITIES[quality]:<8}  {_text(value)}\n")
    return 0


def history_main(argv: list[str] | None = None) -> int:
    """`tangolab history` on its own: parse argv and print."""
    parser = argparse.ArgumentParser(prog="tangolab history", description=__doc__.split("\n\n")[0])
    _arguments(parser)
    return run_history(parser.parse_args(argv))
