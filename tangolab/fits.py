"""FITS files of a camera's frames, each carrying the lab's state at the moment the shutter opened.

A camera device (or any writer) reads the lab's state with `lab_keywords` as the exposure starts
— a configured map of FITS keywords to attributes of any device,

    CCDTEMP = lab/tec/1/objectTemperature
    PRESSURE = lab/gauge/1/pressure

each value with its unit in the comment; a value that cannot be read (a device down, an INVALID
reading) is written as undefined with the reason in the comment, never as a stale number — and
writes the frame with `write_frame` as `run0001.fits`, `run0002.fits`, ... in a folder: after the
highest number there, never over an existing file, and complete or absent (written under a
temporary name, flushed, then linked to its final name).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tango
from astropy.io import fits

PREFIX = "run"
_NUMBERED = re.compile(rf"{PREFIX}(\d{{4,}})\.fits")
#: The suffix of a file being written; `.run-<pid>-<id>.fits.part` names its writer's process.
PART = ".fits.part"
_PART = re.compile(rf"\.{PREFIX}-(\d+)-[0-9a-f]+{re.escape(PART)}")
_KEYWORD = re.compile(r"[A-Z0-9_-]{1,8}")
#: Characters a FITS header card's comment may hold (printable ASCII).
_UNPRINTABLE = re.compile(r"[^\x20-\x7e]")


@dataclass(frozen=True)
class Keyword:
    """One header card: `value` None is written as undefined (the reason then in `comment`).
    A card's comment is cut at the card's 80 characters: `note`, when given and not all in the
    comment, is written whole as COMMENT cards (`NAME: note`)."""

    name: str
    value: Any
    comment: str = ""
    note: str = ""


def parse_sources(lines: Iterable[str]) -> dict[str, str]:
    """`KEYWORD = domain/family/member/attribute` lines as a dict; ValueError saying which line
    is wrong and what a line must be."""
    sources = {}
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        name, equals, attribute = (part.strip() for part in line.partition("="))
        name = name.upper()
        path = attribute.partition("#")[0].removeprefix("tango://")
        if not equals or not _KEYWORD.fullmatch(name) or path.count("/") != (4 if "://" in attribute else 3):
            raise ValueError(
                f"line {number} {line!r} is not KEYWORD = domain/family/member/attribute (a keyword of "
                "1-8 characters A-Z 0-9 _ -, e.g. CCDTEMP = lab/tec/1/objectTemperature)"
            )
        sources[name] = attribute
    return sources


def parse_keywords(lines: Iterable[str]) -> list[Keyword]:
    """`KEYWORD = value` lines (a script's own keywords: `OBJECT = dark`, `NFRAMES = 10`) as cards,
    numbers as numbers; ValueError saying which line is wrong."""
    cards = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        name, equals, text = (part.strip() for part in line.partition("="))
        name = name.upper()
        if not equals or not _KEYWORD.fullmatch(name) or not text or _UNPRINTABLE.search(text):
            raise ValueError(
                f"line {number} {line!r} is not KEYWORD = value (a keyword of 1-8 characters A-Z 0-9 _ -, "
                "a value of printable ASCII, e.g. OBJECT = dark)"
            )
        cards.append(Keyword(name, _typed(text), "set by a script"))
    return cards


def _typed(text: str) -> int | float | str:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def lab_keywords(sources: Mapping[str, str], timeout_ms: int = 1000) -> list[Keyword]:
    """The attributes of `sources` read now, as header cards with their units; those that cannot
    be read are undefined, with the reason."""
    proxies: dict[str, tango.DeviceProxy | Exception] = {}
    cards = []
    for name, source in sources.items():
        text, hash_, option = source.partition("#")  # a TRL's `#dbase=no` belongs to the device
        device, _, attribute = text.rpartition("/")
        device += hash_ + option
        try:
            proxy = proxies.get(device)
            if proxy is None:
                try:
                    proxy = proxies[device] = tango.DeviceProxy(device)
                    proxy.set_timeout_millis(timeout_ms)
                except tango.DevFailed as exc:
                    proxy = proxies[device] = exc
            if isinstance(proxy, Exception):
                raise proxy
            reading = proxy.read_attribute(attribute)
            unit = proxy.get_attribute_config(attribute).unit
        except tango.DevFailed as exc:
            reason = " ".join(exc.args[0].desc.split())
            cards.append(Keyword(name, None, f"unreadable: {reason}", f"{source} unreadable: {reason}"))
            continue
        if reading.quality == tango.AttrQuality.ATTR_INVALID or reading.value is None:
            cards.append(Keyword(name, None, "INVALID reading", f"{source} read INVALID"))
            continue
        value = reading.value
        value = value.item() if isinstance(value, np.generic) else value
        if not isinstance(value, (bool, int, float, str)):
            value = str(value)
        shown_unit = f"[{unit}] " if unit and unit != "No unit" else ""
        cards.append(Keyword(name, value, f"{shown_unit}{_short(source)}", f"{shown_unit}{source}"))
    return cards


def _short(source: str) -> str:
    """An attribute's name without the host and options of a TRL (the comment's room is short)."""
    path = source.partition("#")[0]
    return path.split("/", 3)[3] if path.startswith("tango://") else path


def _remove_orphans(folder: Path) -> None:
    """Delete the partial files of writers that died while writing (a server killed mid-frame)."""
    for path in folder.glob(f".{PREFIX}-*{PART}"):
        if (match := _PART.fullmatch(path.name)) and not _alive(int(match[1])):
            path.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def next_number(folder: Path) -> int:
    """One after the highest `runNNNN.fits` in `folder` (1 in an empty one)."""
    numbers = [int(match[1]) for path in folder.glob(f"{PREFIX}*.fits") if (match := _NUMBERED.fullmatch(path.name))]
    return max(numbers, default=0) + 1


def write_frame(folder: Path | str, image: np.ndarray, keywords: Sequence[Keyword]) -> Path:
    """Write `image` with `keywords` as the next `runNNNN.fits` of `folder` (made if missing);
    return its path. A file that exists is never replaced, and no half-written file ever bears
    a final name."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    _remove_orphans(folder)
    header = fits.Header()
    notes = []
    for card in keywords:
        comment = _UNPRINTABLE.sub("?", card.comment)
        value = fits.card.UNDEFINED if card.value is None else card.value
        room = 80 - max(len(fits.Card(card.name, value).image.rstrip()), 30) - len(" / ")  # values fill to 30
        header[card.name] = (value, comment[: max(room, 0)])
        if card.note and card.note != comment[: max(room, 0)]:
            notes.append(_UNPRINTABLE.sub("?", f"{card.name}: {card.note}"))
    for note in notes:
        header.add_comment(note)
    temporary = folder / f".{PREFIX}-{os.getpid()}-{id(image):x}{PART}"
    try:
        with open(temporary, "wb") as stream:
            fits.PrimaryHDU(image, header).writeto(stream)
            stream.flush()
            os.fsync(stream.fileno())
        number = next_number(folder)
        while True:
            path = folder / f"{PREFIX}{number:04d}.fits"
            try:
                os.link(temporary, path)  # fails if the name is taken: never overwrites
                return path
            except FileExistsError:
                number += 1
    finally:
        temporary.unlink(missing_ok=True)


def append_table(path: Path, name: str, columns: Mapping[str, Sequence[Any]]) -> None:
    """Append `columns` (equal lengths, numbers or strings each) as a binary table named `name` to
    the FITS file `path`. The file is rewritten under a temporary name and put in place whole:
    it holds the table or is as it was. ValueError saying what is wrong with the table."""
    if not _KEYWORD.fullmatch(name.upper()):
        raise ValueError(f"a table's name is 1-8 characters A-Z 0-9 _ -, not {name!r}")
    if not isinstance(columns, Mapping) or not columns:
        raise ValueError("a table needs at least one column: {\"COLUMN\": [values...]}")
    lengths = {len(values) if isinstance(values, Sequence) and not isinstance(values, str) else -1
               for values in columns.values()}
    if len(lengths) != 1 or -1 in lengths:
        raise ValueError("every column is a list, all of the same length")
    table = []
    for column, values in columns.items():
        array = np.asarray(values)
        if array.dtype.kind not in "biufU" or not _KEYWORD.fullmatch(str(column).upper()):
            raise ValueError(f"column {column!r}: a name of 1-8 characters A-Z 0-9 _ -, and numbers or strings")
        table.append(fits.Column(name=str(column).upper(), array=array,
                                 format=f"{max(array.dtype.itemsize // 4, 1)}A" if array.dtype.kind == "U"
                                 else {"b": "L", "i": "K", "u": "K", "f": "D"}[array.dtype.kind]))
    temporary = path.with_name(f".{PREFIX}-{os.getpid()}-{id(columns):x}{PART}")
    try:
        with fits.open(path, memmap=False) as hdus:
            hdus.append(fits.BinTableHDU.from_columns(table, name=name.upper()))
            with open(temporary, "wb") as stream:
                hdus.writeto(stream)
                stream.flush()
                os.fsync(stream.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
