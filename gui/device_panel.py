"""A device's panel, made from what the device declares: a Taurus form of its attributes (writable
ones editable within their limits, with units and quality colours) and a button per command.

The panel is built only once the device answers (a Taurus form opened while its server is down
stays empty for good), from models prepared off the GUI thread. While the device is down or not
answering, the panel is greyed and disabled under a banner saying why and since when; when it
answers again the values are read at once and the panel comes back by itself.
"""

from __future__ import annotations

import time

from taurus.external.qt import Qt

from .form import GradualForm
from .models import CommandButton, Keeper
from .watch import Background, DeviceInfo, Health, LabWatch

HIDDEN_ATTRIBUTES = {"state", "status"}
HIDDEN_COMMANDS = {"state", "status"}
GREY = Qt.QColor(140, 140, 140)


def state_style(state: str) -> str:
    """The style sheet Taurus's state palette gives a state (ON green, FAULT red, MOVING blue...)."""
    from taurus.core.util.colors import DEVICE_STATE_PALETTE

    name = state if DEVICE_STATE_PALETTE.has(state) else "UNKNOWN"
    return f"background: #{DEVICE_STATE_PALETTE.hex(name)}; color: #{DEVICE_STATE_PALETTE.hex(name, fg=True)}"


def grey(widget: Qt.QWidget, down: bool) -> None:
    """Grey a widget and everything in it (whatever colours Taurus painted) and disable it; or undo."""
    if down:
        effect = Qt.QGraphicsColorizeEffect(widget)
        effect.setColor(GREY)
        effect.setStrength(1.0)
        widget.setGraphicsEffect(effect)
    else:
        widget.setGraphicsEffect(None)
    widget.setEnabled(not down)


def down_text(device: str, health: Health) -> str:
    since = time.strftime("%H:%M:%S", time.localtime(health.since))
    return f"{device} is down since {since}: {health.reason}"


class DevicePanel(Qt.QWidget):
    """One device: header (name, class, state), banner when down, form and commands, message line."""

    def __init__(self, device: str, watch: LabWatch, background: Background, parent=None) -> None:
        super().__init__(parent)
        self.device, self.watch, self.background = device, watch, background
        self.full = watch.full(device)
        self.keeper = Keeper(background, self)
        self.keeper.failed.connect(lambda text: self.say(text, False))
        self.keeper.succeeded.connect(lambda text: self.say(text, True))
        self.form = None
        self.commands: dict[str, CommandButton] = {}
        self.built = False
        self._building = False
        self.health: Health | None = None

        layout = Qt.QVBoxLayout(self)
        header = Qt.QHBoxLayout()
        self.title = Qt.QLabel(f"<b>{device}</b>")
        self.state = Qt.QLabel("…")
        self.state.setMinimumWidth(90)
        self.state.setAlignment(Qt.Qt.AlignCenter)
        header.addWidget(self.title)
        header.addStretch(1)
        header.addWidget(self.state)
        layout.addLayout(header)
        self.banner = Qt.QLabel()
        self.banner.setWordWrap(True)
        self.banner.setStyleSheet("background: #555; color: white; padding: 6px; font-weight: bold")
        self.banner.hide()
        layout.addWidget(self.banner)
        self.body = Qt.QWidget()
        self.body_layout = Qt.QVBoxLayout(self.body)
        self.body_layout.setContentsMargins(0, 0, 0, 0)
        self.waiting = Qt.QLabel(f"waiting for {device} to answer…")
        self.body_layout.addWidget(self.waiting)
        scroll = Qt.QScrollArea()
        scroll.setWidget(self.body)
        scroll.setWidgetResizable(True)
        layout.addWidget(scroll, 1)
        self.message = Qt.QLabel()
        self.message.setWordWrap(True)
        layout.addWidget(self.message)

        watch.health.connect(self._on_health)
        watch.described.connect(self._on_described)
        watch.watch(device)
        if device in watch.healths:
            self._on_health(device, watch.healths[device])

    # -- what the watch says --------------------------------------------------------------------

    def _on_health(self, device: str, health: Health) -> None:
        if device != self.device:
            return
        was_alive = self.health is not None and self.health.alive
        self.health = health
        self.state.setText(health.state if health.alive else "DOWN")
        self.state.setStyleSheet(state_style(health.state if health.alive else "UNKNOWN"))
        self.state.setToolTip(health.reason)
        if health.alive:
            self.banner.hide()
            grey(self.body, False)
            info = self.watch.infos.get(device)
            if not self.built and info is not None:
                self._build(info)
            elif self.built and not was_alive:
                self.keeper.revive()
        else:
            self.banner.setText(down_text(device, health))
            self.banner.show()
            grey(self.body, True)

    def _on_described(self, device: str, info: DeviceInfo) -> None:
        if device == self.device and not self.built and self.health is not None and self.health.alive:
            self._build(info)

    # -- building -------------------------------------------------------------------------------

    def _build(self, info: DeviceInfo) -> None:
        if self._building:
            return
        self._building = True
        names = ["State", *(name for name in info.attribute_names if name.lower() not in HIDDEN_ATTRIBUTES)]
        models = [f"{self.full}/{name}" for name in [*names, "Status"]]
        self.keeper.prepare_then(models, lambda ready: self._fill(info, ready))

    def _fill(self, info: DeviceInfo, ready: list[str]) -> None:
        from taurus.qt.qtgui.display import TaurusLabel

        if self.built or self.form is not None:
            return
        if not ready:  # it went down meanwhile: build when it answers again
            self._building = False
            return
        status_model = f"{self.full}/Status"
        self.status = TaurusLabel()
        self.status.setBgRole("none")
        self.status.setWordWrap(True)
        self.status.setAlignment(Qt.Qt.AlignLeft | Qt.Qt.AlignVCenter)
        if status_model in ready:
            self.status.setModel(status_model)
        self.form = form = GradualForm()
        form.filled.connect(self._filled)
        form.add_models([model for model in ready if model != status_model])
        commands = Qt.QGroupBox("Commands")
        grid = Qt.QGridLayout(commands)
        row = 0
        for command in info.commands:
            if command.cmd_name.lower() in HIDDEN_COMMANDS:
                continue
            button = CommandButton(self.full, command, self.background)
            button.result.connect(self.say)
            grid.addWidget(button, row // 2, 2 * (row % 2))
            if button.argument is not None:
                grid.addWidget(button.argument, row // 2, 2 * (row % 2) + 1)
            self.commands[command.cmd_name] = button
            row += 1
        grid.setColumnStretch(1, 1)
        grid.setColumnStretch(3, 1)
        self.waiting.hide()
        self.body_layout.addWidget(self.status)
        self.body_layout.addWidget(form)
        if self.commands:
            self.body_layout.addWidget(commands)
        self.body_layout.addStretch(1)
        if self.health is not None and not self.health.alive:
            grey(self.body, True)

    def _filled(self) -> None:
        self._building = False
        self.built = True

    def say(self, text: str, ok: bool = True) -> None:
        """A result line under the panel: a write or command done, or why it was refused."""
        stamp = time.strftime("%H:%M:%S")
        self.message.setText(f"{stamp}  {text}")
        self.message.setStyleSheet("" if ok else "color: #c00; font-weight: bold")

    def value_widget(self, attribute: str):
        """The form's row (TaurusValue) of an attribute, for tests and scripts."""
        for item in self.form or ():
            if item.getModelName().lower().endswith(f"/{attribute.lower()}"):
                return item
        raise KeyError(f"{attribute} is not on the panel of {self.device}")
