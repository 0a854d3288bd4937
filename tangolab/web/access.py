"""The lab as the web service reaches it: devices, their descriptions, reads, writes, commands,
the relay and the archive; every Tango error as an `ApiError` carrying the HTTP status a client
expects (404 unknown, 409 refused by the device or its state, 422 bad value, 503 device down).
A device that hangs costs a call at most `TIMEOUT_MS`: a page never waits longer."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import tango
from tango import AttrDataFormat, AttrWriteType
from tango import CmdArgType as T

from .. import history
from ..archive import ArchiveError
from ..commands import ARCHIVER, NOT_FOUND_REASONS, RELAY, UNREACHABLE_REASONS, USAGE_REASONS
from ..names import HIDDEN_DOMAINS
from ..spy import json_value, quality_name
from ..typed_values import BadValue, attribute_value, command_argument
from .live import plain

TIMEOUT_MS = 3000
REFUSED_REASONS = ("API_CommandNotAllowed", "API_AttrNotAllowed", "API_AttrNotWritable", "API_ReadOnlyMode")
DESCRIPTION_TTL = 30.0  # s a device's attribute and command lists are kept
QUALITY_NAMES = {0: "VALID", 1: "INVALID", 2: "ALARM", 3: "CHANGING", 4: "WARNING"}  # the archive's numbers


class ApiError(Exception):
    """What went wrong, for a person and a script: HTTP status, a reason word, and the description."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status, self.reason, self.message = status, reason, message

    @classmethod
    def of(cls, error: tango.DevFailed, what: str) -> ApiError:
        reasons = [e.reason for e in error.args]
        desc = next((e.desc for e in error.args if e.reason != "API_CommandFailed"), error.args[0].desc)
        text = f"{what}: {' '.join(str(desc).split())}"
        if any(r in UNREACHABLE_REASONS for r in reasons):
            return cls(503, reasons[0], f"{what}: does not answer ({reasons[0]}); is its server running?")
        if any(r in NOT_FOUND_REASONS for r in reasons):
            return cls(404, reasons[0], text)
        if any(r in USAGE_REASONS for r in reasons):
            return cls(422, reasons[0], text)
        return cls(409, reasons[0], text)  # the device refused: its state, or its own rule


@dataclass(frozen=True)
class AttributeInfo:
    name: str
    label: str
    kind: str  # scalar, spectrum, image
    dtype: str
    writable: bool
    unit: str
    format: str
    min_value: str
    max_value: str
    description: str
    enum_labels: tuple[str, ...]
    numeric: bool
    tango: tango.AttributeInfoEx

    def public(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "tango"} | {"enum_labels": list(self.enum_labels)}


@dataclass(frozen=True)
class CommandInfo:
    name: str
    in_type: str
    out_type: str
    in_description: str
    tango_in_type: T

    def public(self) -> dict:
        return {"name": self.name, "in_type": self.in_type, "out_type": self.out_type,
                "in_description": self.in_description}


NUMERIC = {T.DevShort, T.DevUShort, T.DevLong, T.DevULong, T.DevLong64, T.DevULong64, T.DevFloat, T.DevDouble,
           T.DevUChar}


def _limit(text: str) -> str:
    return "" if text in ("Not specified", "") else text


class LabAccess:
    """One lab's Tango database and devices, reached with bounded time-outs."""

    def __init__(self, tango_host: str, run_dir: Path) -> None:
        self.tango_host = tango_host
        self.run_dir = run_dir
        host, _, port = tango_host.rpartition(":")
        self.database = tango.Database(host, int(port))
        self._proxies: dict[str, tango.DeviceProxy] = {}
        self._described: dict[str, tuple[float, dict[str, AttributeInfo], dict[str, CommandInfo]]] = {}

    # -- the database ------------------------------------------------------------------------------

    def devices(self) -> list[dict]:
        """Every device of the lab (not Tango's own) with its class and server, by name."""
        rows = []
        try:
            names = self.database.command_inout("DbGetDeviceWideList", "*")
        except tango.DevFailed as error:
            raise ApiError.of(error, f"the Tango database {self.tango_host}") from None
        for name in sorted(names):
            if name.split("/")[0].lower() in HIDDEN_DOMAINS:
                continue
            info = self.database.get_device_info(name)
            rows.append({"device": name.lower(), "class": info.class_name, "server": info.ds_full_name,
                         "exported": bool(info.exported)})
        return rows

    def device(self, name: str) -> str:
        """The device's name as the database has it (lower case); 404 when it has none."""
        wanted = name.strip("/").lower()
        try:
            self.database.get_device_info(wanted)
        except tango.DevFailed:
            raise ApiError(404, "NoSuchDevice", f"no device {wanted!r} in the database of {self.tango_host}") from None
        return wanted

    def proxy(self, device: str) -> tango.DeviceProxy:
        proxy = self._proxies.get(device)
        if proxy is None:
            proxy = tango.DeviceProxy(f"tango://{self.tango_host}/{device}")
            proxy.set_timeout_millis(TIMEOUT_MS)
            self._proxies[device] = proxy
        return proxy

    # -- descriptions ------------------------------------------------------------------------------

    def describe(self, device: str) -> tuple[dict[str, AttributeInfo], dict[str, CommandInfo]]:
        """Its attributes and commands (kept a while: they change only with a restart)."""
        device = self.device(device)
        kept = self._described.get(device)
        if kept is not None and time.monotonic() - kept[0] < DESCRIPTION_TTL:
            return kept[1], kept[2]
        proxy = self.proxy(device)
        try:
            configs = proxy.attribute_list_query_ex()
            commands = proxy.command_list_query()
        except tango.DevFailed as error:
            raise ApiError.of(error, device) from None
        attributes = {}
        for c in configs:
            kind = {AttrDataFormat.SCALAR: "scalar", AttrDataFormat.SPECTRUM: "spectrum"}.get(c.data_format, "image")
            dtype = T.values[c.data_type] if isinstance(c.data_type, int) else c.data_type
            attributes[c.name.lower()] = AttributeInfo(
                name=c.name, label=c.label, kind=kind, dtype=str(dtype),
                writable=c.writable in (AttrWriteType.READ_WRITE, AttrWriteType.WRITE),
                unit="" if c.unit in ("", "No unit") else c.unit, format=c.format,
                min_value=_limit(c.min_value), max_value=_limit(c.max_value),
                description="" if c.description == "No description" else c.description,
                enum_labels=tuple(c.enum_labels) if dtype == T.DevEnum else (),
                numeric=dtype in NUMERIC and kind == "scalar", tango=c,
            )
        commands_info = {
            c.cmd_name.lower(): CommandInfo(c.cmd_name, str(c.in_type), str(c.out_type),
                                            "" if c.in_type_desc in ("Uninitialised", "") else c.in_type_desc, c.in_type)
            for c in commands if c.cmd_name not in ("Init",)
        }
        self._described[device] = (time.monotonic(), attributes, commands_info)
        return attributes, commands_info

    def attribute(self, device: str, name: str) -> AttributeInfo:
        attributes, _ = self.describe(device)
        try:
            return attributes[name.lower()]
        except KeyError:
            raise ApiError(404, "NoSuchAttribute", f"{device} has no attribute {name!r}; it has "
                           f"{', '.join(a.name for a in attributes.values())}") from None

    # -- reads, writes, commands -------------------------------------------------------------------

    def read(self, device: str, names: list[str]) -> list[dict]:
        """Readings with quality and time; a failing one carries its error."""
        infos = [self.attribute(device, name) for name in names]
        try:
            readings = self.proxy(device).read_attributes([info.name for info in infos])
        except tango.DevFailed as error:
            raise ApiError.of(error, device) from None
        return [reading_record(device, info, reading) for info, reading in zip(infos, readings)]

    def write(self, device: str, name: str, value: object) -> dict:
        """Write in the attribute's type and read it back; nothing is sent when the value is wrong."""
        info = self.attribute(device, name)
        full = f"{device}/{info.name}"
        if not info.writable:
            raise ApiError(409, "ReadOnly", f"{full} is read-only")
        text = value if isinstance(value, str) else json.dumps(value)
        try:
            typed = attribute_value(text, info.tango, full)
        except BadValue as error:
            raise ApiError(422, "BadValue", str(error)) from None
        proxy = self.proxy(device)
        try:
            proxy.write_attribute(info.name, typed)
        except tango.DevFailed as error:
            refusal = ApiError.of(error, f"{full} refused {text}")
            if "API_WAttrOutsideLimit" in str(error):
                refusal.message += f" (allowed: {info.min_value or '…'} … {info.max_value or '…'})"
            raise refusal from None
        return self.read(device, [info.name])[0]

    def call(self, device: str, command: str, argument: object = None) -> dict:
        """Run a command; a long operation's command returns at once and its device's State and
        progress tell the rest (`follow`)."""
        _, commands = self.describe(device)
        info = commands.get(command.lower())
        if info is None:
            raise ApiError(404, "NoSuchCommand", f"{device} has no command {command!r}; it has "
                           f"{', '.join(c.name for c in commands.values())}")
        text = None if argument is None else argument if isinstance(argument, str) else json.dumps(argument)
        if info.tango_in_type == T.DevVoid:
            text = None
        try:
            typed = command_argument(text, info.tango_in_type, f"{device} {info.name}")
        except BadValue as error:
            raise ApiError(422, "BadValue", str(error)) from None
        proxy = self.proxy(device)
        try:
            result = proxy.command_inout(info.name, typed) if typed is not None else proxy.command_inout(info.name)
        except tango.DevFailed as error:
            raise ApiError.of(error, f"{device} {info.name}") from None
        return {"device": device, "command": info.name, "result": json_value(result),
                "follow": f"/api/devices/{device}/attributes?names=State,Status"}

    def publish(self, name: str, value: object) -> dict:
        """A relay variable (HiPERCAM's publish), created on first put."""
        text = json.dumps(value)
        self.device(RELAY)
        try:
            self.proxy(RELAY).command_inout("Put", [name, text])
        except tango.DevFailed as error:
            refusal = ApiError.of(error, f"{RELAY} Put {name}")
            raise (ApiError(422, refusal.reason, refusal.message) if refusal.status == 409 else refusal) from None
        return {"device": RELAY, "name": name, "value": value}

    def message(self, level: str, source: str, text: str) -> None:
        """A message in the lab log (the archiver's)."""
        try:
            self.proxy(ARCHIVER).command_inout("Message", [level, source, text])
        except tango.DevFailed as error:
            raise ApiError.of(error, ARCHIVER) from None

    # -- the archive -------------------------------------------------------------------------------

    @property
    def archive(self) -> str:
        return str(self.run_dir / "archive.db")

    def history(self, attribute: str, since: str, until: str | None = None) -> dict:
        try:
            rows = history.values(attribute, since, until, store=self.archive)
        except (ArchiveError, ValueError, LookupError) as error:
            raise ApiError(404 if isinstance(error, LookupError) else 422, type(error).__name__, str(error)) from None
        values = [None if masked else json_value(value)
                  for value, masked in zip(rows["value"].data.tolist(), rows["value"].mask.tolist()
                                           if rows["value"].mask.shape else [False] * len(rows))]
        return {"attribute": attribute, "time": rows["time"].tolist(), "value": values,
                "quality": [QUALITY_NAMES.get(q, str(q)) for q in rows["quality"].tolist()]}

    def messages(self, source: str | None, level: str | None, since: str | None, until: str | None) -> list[dict]:
        try:
            found = history.messages(source or None, level or None, since or "1d", until or None, store=self.archive)
        except (ArchiveError, ValueError) as error:
            raise ApiError(422, type(error).__name__, str(error)) from None
        return [{"time": m.time, "level": m.level, "source": m.source, "text": m.text} for m in found]

    def state_at(self, when: str) -> dict:
        try:
            found = history.state_at(when, store=self.archive)
        except (ArchiveError, ValueError) as error:
            raise ApiError(422, type(error).__name__, str(error)) from None
        return {name: {"time": t, "value": json_value(v), "quality": QUALITY_NAMES.get(q, str(q))}
                for name, (t, v, q) in sorted(found.items())}


def reading_record(device: str, info: AttributeInfo, reading: tango.DeviceAttribute) -> dict:
    full = f"{device}/{info.name}"
    if reading.has_failed:
        errors = reading.get_err_stack()
        return {"attribute": full, "value": None, "quality": "INVALID", "time": time.time(), "unit": info.unit,
                "error": f"{errors[0].reason}: {' '.join(errors[0].desc.split())}" if errors else "failed"}
    return {"attribute": full, "value": plain(reading.value, info.enum_labels), "quality": quality_name(reading.quality),
            "time": reading.time.totime(), "unit": info.unit, "error": None}
