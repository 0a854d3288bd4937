"""Taurus models made ready off the GUI thread, writes and commands that never block it.

Taurus 5.4 reads an attribute synchronously when the first widget takes it as its model
(subscription, then a first read; `TangoAttribute.write` and `TaurusCommandButton` also run on the
calling thread): one slow or hung device freezes the whole window. Here the attribute objects are
created, subscribed and read once on a worker thread, held by a `Keeper` (Taurus keeps its
objects only weakly), and only then given to widgets, which find the value in the cache. Their
`write` is replaced on the instance by one that runs on a worker and reports a refusal through
`Keeper.failed` instead of a modal dialog.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable

import tango
from taurus.external.qt import Qt

from tangolab.typed_values import BadValue, command_argument

from .watch import Background, reason_of

REVIVE_SECONDS = 15.0  # after a server comes back, read its attributes for as long as the client
REVIVE_PERIOD = 1.0  # library may take to renew its event subscriptions (a keep-alive period + margin)


class Keeper(Qt.QObject):
    """Holds a panel's Taurus attributes, subscribed; a failed write comes back as `failed`."""

    failed = Qt.pyqtSignal(str)
    succeeded = Qt.pyqtSignal(str)

    def __init__(self, background: Background, parent=None) -> None:
        super().__init__(parent)
        self.background = background
        self.attributes: dict[str, object] = {}
        self._reviving = threading.Event()

    def eventReceived(self, src, evt_type, evt_value) -> None:
        """Events are the widgets' business; listening keeps the subscription and cache alive."""

    def prepare(self, models: Iterable[str]) -> list[str]:
        """Create, subscribe and read each model (call on a worker thread); returns those that failed."""
        import taurus

        failed = []
        for name in models:
            if name.lower() in self.attributes:
                continue
            try:
                attribute = taurus.Attribute(name)
                attribute.addListener(self)
                self._make_writes_asynchronous(attribute)
                self.attributes[name.lower()] = attribute
            except Exception:  # noqa: BLE001 - a model Taurus cannot make stays off the panel
                failed.append(name)
        return failed

    def prepare_then(self, models: list[str], then: Callable[[list[str]], None]) -> None:
        """Prepare on a worker, then `then(models that could be made)` on the GUI thread."""

        def done(failed, error) -> None:
            bad = set(failed or ()) if error is None else set(models)
            then([name for name in models if name not in bad])

        self.background.run(lambda: self.prepare(models), done)

    def revive(self) -> None:
        """The device answers again: read every attribute now and each second for a while, so
        widgets show live values before the client library renews its event subscriptions."""
        if self._reviving.is_set():
            return
        self._reviving.set()

        def reread() -> None:
            try:
                deadline = time.monotonic() + REVIVE_SECONDS
                while time.monotonic() < deadline:
                    for attribute in list(self.attributes.values()):
                        attribute.poll()  # reads, and sends listeners a value or an error event
                    time.sleep(REVIVE_PERIOD)
            finally:
                self._reviving.clear()

        self.background.run(reread)

    def _make_writes_asynchronous(self, attribute) -> None:
        original = type(attribute).write
        keeper = self

        def write(value, with_read=True):
            def job():
                return original(attribute, value, with_read)

            def done(_result, error) -> None:
                name = attribute.getSimpleName()
                if error is None:
                    keeper.succeeded.emit(f"{name} ← {value}")
                else:
                    why = reason_of(error) if isinstance(error, tango.DevFailed) else str(error)
                    keeper.failed.emit(f"{name}: {value} not written: {why}")

            keeper.background.run(job, done)

        attribute.write = write


class CommandButton(Qt.QPushButton):
    """A command of a device as a button (with an argument field when it takes one); it runs on a
    worker and says how it went in `result`."""

    result = Qt.pyqtSignal(str, bool)  # message, ok

    def __init__(self, full_device: str, info: tango.CommandInfo, background: Background, parent=None) -> None:
        super().__init__(info.cmd_name, parent)
        self.full_device, self.info, self.background = full_device, info, background
        self.argument: Qt.QLineEdit | None = None
        if info.in_type != tango.CmdArgType.DevVoid:
            self.argument = Qt.QLineEdit()
            self.argument.setPlaceholderText(f"{info.in_type.name}: {info.in_type_desc}".strip(": "))
            self.argument.returnPressed.connect(self.click)
        tip = [info.in_type_desc, info.out_type_desc]
        self.setToolTip("\n".join(t for t in tip if t and t != "Uninitialised"))
        self.clicked.connect(self.run)

    def run(self) -> None:
        name = self.info.cmd_name
        try:
            text = self.argument.text() if self.argument is not None else None
            argument = command_argument(text, self.info.in_type, name)
        except BadValue as error:
            self.result.emit(f"{name}: {error.args[0]}", False)
            return
        self.setEnabled(False)

        def job():
            proxy = tango.DeviceProxy(self.full_device)
            proxy.set_timeout_millis(10_000)
            if argument is None:
                return proxy.command_inout(name)
            return proxy.command_inout(name, argument)

        def done(value, error) -> None:
            self.setEnabled(True)
            if error is None:
                self.result.emit(f"{name}: done" + ("" if value is None else f" → {value}"), True)
            elif isinstance(error, tango.DevFailed):
                desc = error.args[0].desc.strip() if error.args else str(error)
                self.result.emit(f"{name} refused: {desc}", False)
            else:
                self.result.emit(f"{name} failed: {error}", False)

        self.background.run(job, done)
