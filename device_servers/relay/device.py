"""`Relay`: publish a number from anywhere; variables created on first `Put`, autosaved in the Tango database.

A script with a value to share calls `Put(["oven_f1", "21.5"])`; the relay creates `oven_f1` as
an ordinary Tango attribute (float64, writable, change and archive events on every write), so
Jive, Taurus, the archiver and `subscribe_event` see it like any other. The name says the type
(see `names.py`). Units, format, description, min/max and alarm limits are set with the standard
attribute configuration, which Tango keeps in its database. Each variable's last value is kept
there too, as the attribute property `relay_value` (JSON text in chunks), saved by a thread of
its own a moment after a write so that writes never wait on the database. At start-up the relay
re-creates every variable that has a `relay_value` before it reports ON.
"""

from __future__ import annotations

import json
import threading

import tango
from tango import AttrWriteType, DevState, Except
from tango.server import Device, attribute, command, device_property

from ..core.errors import RejectedValue
from ..core.server import serve
from .names import RULE, Value, VariableSpec, parse_name

VALUE_PROPERTY = "relay_value"  # attribute property holding a variable's last value, as JSON text in chunks
CHUNK = 1000  # characters of JSON per property line (database columns are limited)
TANGO_TYPES = {"f": tango.CmdArgType.DevDouble, "i": tango.CmdArgType.DevLong64,
               "c": tango.CmdArgType.DevString, "b": tango.CmdArgType.DevBoolean}
NOT_SET = "Not specified"


class Relay(Device):
    """Variables created on their first Put, from the name rule <name>_<t><count>; kept across restarts."""

    MaxVariables = device_property(dtype=int, default_value=1000, doc="Most variables the relay holds at once")
    AutosavePeriod = device_property(
        dtype=float, default_value=0.5,
        doc="Seconds at least between two saves of changed values to the database (the first write after a "
        "quiet spell is saved at once)",
    )

    def init_device(self) -> None:
        super().init_device()
        self.set_state(DevState.INIT)
        self.set_status("restoring the variables from the database")
        self.specs: dict[str, VariableSpec] = {}  # by key (lower-case name)
        self.values: dict[str, Value] = {}
        self._dirty: set[str] = set()
        self._lock = threading.Lock()  # values and _dirty, between requests and the saver; never held over Tango calls
        self._save_lock = threading.Lock()  # one database write of values at a time (a Delete waits for it)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self.set_change_event("Variables", True, False)
        self.database = tango.Util.instance().get_database()
        failed = self._restore()
        self._saver = threading.Thread(target=self._save_loop, name="relay autosave", daemon=True)
        self._saver.start()
        if failed:
            self.set_state(DevState.ALARM)
            self.set_status("could not restore: " + "; ".join(failed))
        else:
            self.set_state(DevState.ON)
            self.set_status(f"{len(self.specs)} variables")

    def delete_device(self) -> None:
        self._stop.set()
        self._wake.set()
        self._saver.join(timeout=10)
        self._save_dirty()  # what the last moment wrote
        for spec in list(self.specs.values()):
            self.remove_attribute(spec.name, False, False)  # keep its configuration in the database
        self.specs.clear()

    # -- interface --------------------------------------------------------------------------

    @attribute(dtype=(str,), max_dim_x=100_000, doc="Names of the relay's variables; a change event when one comes or goes")
    def Variables(self) -> list[str]:
        return self._names()

    @command(
        dtype_in=(str,), doc_in='[name, value]: value as JSON text (3.5, [1,2,3], "text", true); creates the '
        "variable on its first Put. " + RULE,
    )
    def Put(self, arguments: list[str]) -> None:
        if len(arguments) != 2:
            raise_rejected(f"Put takes [name, value as JSON], got {len(arguments)} strings", "Put")
        name, text = arguments
        try:
            spec = parse_name(name)
            existing = self.specs.get(spec.key)
            if existing is not None and (existing.letter, existing.count, existing.ring) != (spec.letter, spec.count, spec.ring):
                raise RejectedValue(
                    f"{name!r} is the variable {existing.name} (Tango attribute names ignore case), which "
                    f"{existing.describe()[len(existing.name) + 1:]}"
                )
            if existing is None and len(self.specs) >= self.MaxVariables:
                raise RejectedValue(
                    f"the relay holds {len(self.specs)} variables, at most {self.MaxVariables} allowed "
                    f"(MaxVariables): Delete one first"
                )
            value = spec.from_json(text)
            if existing is not None:
                spec = existing  # OVEN_f1 writes oven_f1, as Tango takes attribute names
                spec.in_range(value, *self._range(existing))
        except RejectedValue as exc:
            raise_rejected(str(exc), "Put")
        if existing is None:
            self._create(spec, spec.written(spec.empty(), value) if spec.ring else value)
            self.push_change_event("Variables", self._names())
        else:
            self._store(existing, value)

    @command(dtype_in=str, doc_in="name of a variable to delete, with its configuration and saved value")
    def Delete(self, name: str) -> None:
        spec = self.specs.get(name.lower())
        if spec is None:
            raise_rejected(f"no variable {name!r}; the relay holds: {', '.join(self._names()) or 'none'}", "Delete")
        with self._lock:
            del self.specs[spec.key]
            self.values.pop(spec.key, None)
            self._dirty.discard(spec.key)
        self.remove_attribute(spec.name, False, True)  # and its configuration in the database
        with self._save_lock:  # not while the saver writes it back
            self._forget(spec.name)
        self.push_change_event("Variables", self._names())

    # -- variables --------------------------------------------------------------------------

    def _create(self, spec: VariableSpec, value: Value, saved: bool = False) -> None:
        """A new dynamic attribute; Tango applies the configuration its database holds for the name."""
        kind = TANGO_TYPES[spec.letter]
        if spec.is_array:
            attr = tango.SpectrumAttr(spec.name, kind, AttrWriteType.READ_WRITE, spec.count)
        else:
            attr = tango.Attr(spec.name, kind, AttrWriteType.READ_WRITE)
        defaults = tango.UserDefaultAttrProp()
        defaults.set_description(spec.describe())
        attr.set_default_properties(defaults)
        with self._lock:
            self.specs[spec.key] = spec
            self.values[spec.key] = value
            if not saved:
                self._dirty.add(spec.key)
        try:
            self.add_attribute(attr, self._read, self._write)
        except tango.DevFailed:
            with self._lock:
                del self.specs[spec.key], self.values[spec.key]
                self._dirty.discard(spec.key)
            raise
        self.set_change_event(spec.name, True, False)
        self.set_archive_event(spec.name, True, False)
        self._show_written(spec, value)
        if not saved:
            self._wake.set()
        self._push(spec, value)

    def _read(self, attr: tango.Attribute) -> None:
        attr.set_value(self.values[attr.get_name().lower()])

    def _write(self, attr: tango.WAttribute) -> None:
        """A client's write_attribute: Tango checked type and min/max; the count is the relay's to check."""
        spec = self.specs[attr.get_name().lower()]
        value = attr.get_write_value()
        try:
            if spec.letter == "c":
                spec.checked_text(value)
            elif spec.is_array:
                spec.check_length(len(value))
                value = value.tolist()
        except RejectedValue as exc:
            raise_rejected(str(exc), "write_attribute")
        self._store(spec, value)

    def _store(self, spec: VariableSpec, value: Value) -> None:
        """The new value, once Tango accepted it as the write value: a refused write changes nothing."""
        with self._lock:
            value = spec.written(self.values[spec.key], value)
        self._show_written(spec, value)
        with self._lock:
            self.values[spec.key] = value
            self._dirty.add(spec.key)
        self._wake.set()
        self._push(spec, value)

    def _show_written(self, spec: VariableSpec, value: Value) -> None:
        """A scalar's write value is its last value, however it came (a Put, a write, a restore), so a
        GUI's write field shows what the variable holds."""
        if not spec.is_array:
            self.get_device_attr().get_w_attr_by_name(spec.name).set_write_value(value)

    def _push(self, spec: VariableSpec, value: Value) -> None:
        """Change and archive events, from the request thread that wrote (no lock held); without a
        quality given, Tango sets ALARM/WARNING from the variable's alarm limits as a read would."""
        self.push_change_event(spec.name, value)
        self.push_archive_event(spec.name, value)

    def _range(self, spec: VariableSpec) -> tuple[float | None, float | None]:
        """The min/max a client configured, which a Put must respect as write_attribute does."""
        config = self.get_device_attr().get_attr_by_name(spec.name).get_properties()
        return _number(config.min_value), _number(config.max_value)

    def _names(self) -> list[str]:
        return sorted((spec.name for spec in self.specs.values()), key=str.lower)

    # -- autosave ---------------------------------------------------------------------------

    def _restore(self) -> list[str]:
        """Every variable the database holds a value for, re-created; returns what failed and why."""
        device = self.get_name()
        names = tango.StdStringVector()
        self.database.get_device_attribute_list(device, names)
        if not names:
            return []
        held = self.database.get_device_attribute_property(device, list(names))
        failed = []
        for name, properties in held.items():
            if VALUE_PROPERTY not in properties:
                continue
            try:
                spec = parse_name(name)
                saved = json.loads("".join(properties[VALUE_PROPERTY]))
                value = spec.checked(saved) if not spec.ring else (
                    spec.written(spec.empty(), spec.checked(saved)) if saved else spec.empty()
                )
                self._create(spec, value, saved=True)
            except (RejectedValue, ValueError, tango.DevFailed) as exc:
                reason = exc.args[0].desc if isinstance(exc, tango.DevFailed) else str(exc)
                failed.append(f"{name}: {reason}")
        self.push_change_event("Variables", self._names())
        return failed

    def _save_loop(self) -> None:
        database = tango.Database(self.database.get_db_host(), self.database.get_db_port())
        while not self._stop.is_set():
            self._wake.wait()
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self._save_dirty(database)
            except tango.DevFailed as exc:  # the database is away: keep the values, try again
                self.warn_stream(f"autosave failed, retrying: {exc.args[0].desc.strip()}")
                self._wake.set()
            self._stop.wait(self.AutosavePeriod)

    def _save_dirty(self, database: tango.Database | None = None) -> None:
        with self._save_lock:
            with self._lock:
                changed = {self.specs[key].name: self.values[key] for key in self._dirty}
                self._dirty.clear()
            if not changed:
                return
            try:
                (database or self.database).put_device_attribute_property(
                    self.get_name(), {name: {VALUE_PROPERTY: _chunks(value)} for name, value in changed.items()}
                )
            except tango.DevFailed:
                with self._lock:
                    self._dirty.update(name.lower() for name in changed if name.lower() in self.specs)
                raise

    def _forget(self, name: str) -> None:
        held = self.database.get_device_attribute_property(self.get_name(), [name]).get(name, {})
        if held:
            self.database.delete_device_attribute_property(self.get_name(), {name: list(held)})


def _chunks(value: Value) -> list[str]:
    text = json.dumps(value)
    return [text[start : start + CHUNK] for start in range(0, len(text), CHUNK)]


def _number(text: str) -> float | None:
    return None if text in (NOT_SET, "") else float(text)


def raise_rejected(message: str, origin: str) -> None:
    """A refusal in words every client reads: Tango carries a description as Latin-1 bytes, but pytango
    would send a str as UTF-8 (an "é" arrives as "Ã©"); what Latin-1 lacks is escaped."""
    Except.throw_exception("RelayRejected", message.encode("latin-1", "backslashreplace"), f"Relay.{origin}")


def main() -> None:
    serve(Relay)


if __name__ == "__main__":
    main()
