"""The Alarms panel: every alarm of the lab's handler, active ones first, coloured by severity, and
acknowledge / shelve / unshelve with a reason.

The table follows the handler's `alarmTable` (JSON, with change events); the buttons call the
handler's commands off the GUI thread and say what it answered.
"""

from __future__ import annotations

import getpass
import json
import socket
import time

from taurus.external.qt import Qt

from .panels import DevicesPanel
from .watch import DeviceInfo

COLUMNS = ("state", "severity", "alarm", "since", "message", "values")
#: Active alarms in the severity's colour (the look's ALARM red and WARNING yellow); an alarm that
#: cannot be evaluated in orange; the others plain
SEVERITY_COLOURS = {"critical": ("#a00", "#fff"), "alarm": ("#e22", "#fff"), "warning": ("#fd0", "#000"),
                    "info": ("#8cf", "#000")}
ERROR_COLOURS = ("#f90", "#000")
ACTIVE = ("UNACK", "ACKED")
SHELVE_CHOICES = {"15 min": 900, "1 h": 3600, "8 h": 28_800, "1 day": 86_400}


class AlarmsPanel(DevicesPanel):
    """The alarms of the lab's AlarmHandler (the first the watch finds)."""

    table_changed = Qt.pyqtSignal(str)

    def __init__(self, window, parent=None) -> None:
        super().__init__(window, parent)
        self.handler: str | None = None
        self.rows: list[dict] = []
        self.summary = Qt.QLabel("no alarm handler yet")
        self.table = Qt.QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setEditTriggers(Qt.QAbstractItemView.NoEditTriggers)
        self.table.setSelectionBehavior(Qt.QAbstractItemView.SelectRows)
        self.table.verticalHeader().hide()
        for column, width in enumerate((70, 80, 160, 175, 360)):
            self.table.setColumnWidth(column, width)
        self.reason = Qt.QLineEdit()
        self.reason.setPlaceholderText("why (goes to the lab log with your name)")
        self.shelve_for = Qt.QComboBox()
        self.shelve_for.addItems(list(SHELVE_CHOICES))
        bar = Qt.QHBoxLayout()
        self.buttons = {}
        for label, action in (("Acknowledge", self.acknowledge), ("Shelve for", self.shelve),
                              ("Unshelve", self.unshelve)):
            self.buttons[label] = button = Qt.QPushButton(label)
            button.clicked.connect(action)
            bar.addWidget(button)
            if label == "Shelve for":
                bar.addWidget(self.shelve_for)
        bar.addWidget(self.reason, 1)
        layout = Qt.QVBoxLayout(self)
        layout.addWidget(self.summary)
        layout.addWidget(self.table, 1)
        layout.addLayout(bar)
        layout.addWidget(self.message)
        self.table_changed.connect(self.show_table, Qt.Qt.QueuedConnection)
        self.start()

    # -- the handler --------------------------------------------------------------------------

    def wants(self, info: DeviceInfo) -> bool:
        return self.handler is None and info.attribute("alarmTable") is not None

    def models(self, info: DeviceInfo) -> list[str]:
        return [f"{self.full(info.name)}/alarmTable"]

    def add(self, info: DeviceInfo) -> list[Qt.QWidget]:
        self.handler = self.full(info.name)
        self.keeper.attributes[self.models(info)[0].lower()].addListener(self)
        return [self.table, *self.buttons.values()]

    def eventReceived(self, src, evt_type, evt_value) -> None:
        text = getattr(evt_value, "rvalue", None)
        if text:
            self.table_changed.emit(str(text))

    # -- the table ----------------------------------------------------------------------------

    def show_table(self, text: str) -> None:
        selected = self.selected()
        self.rows = json.loads(text)
        self.table.setRowCount(len(self.rows))
        for row, alarm in enumerate(self.rows):
            since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(alarm["since"]))
            if alarm["state"] == "SHLVD" and alarm.get("shelved_until"):
                since += time.strftime(" → %H:%M", time.localtime(alarm["shelved_until"]))
            colours = (SEVERITY_COLOURS[alarm["severity"]] if alarm["state"] in ACTIVE
                       else ERROR_COLOURS if alarm["state"] == "ERROR" else None)
            values = (alarm["state"], alarm["severity"], alarm["name"], since, alarm["message"], alarm["values"])
            for column, value in enumerate(values):
                item = Qt.QTableWidgetItem(value)
                if colours is not None:
                    item.setBackground(Qt.QColor(colours[0]))
                    item.setForeground(Qt.QColor(colours[1]))
                self.table.setItem(row, column, item)
            if alarm["name"] == selected:
                self.table.selectRow(row)
        active = sum(alarm["state"] in ACTIVE for alarm in self.rows)
        unacknowledged = sum(alarm["state"] in ("UNACK", "RTNUN") for alarm in self.rows)
        self.summary.setText(f"{self.handler}: {len(self.rows)} alarms, {active} active, "
                             f"{unacknowledged} unacknowledged")

    def selected(self) -> str | None:
        rows = self.table.selectionModel().selectedRows()
        return self.table.item(rows[0].row(), 2).text() if rows and self.table.item(rows[0].row(), 2) else None

    # -- acting on an alarm -------------------------------------------------------------------

    def acknowledge(self) -> None:
        self._ask("Acknowledge")

    def shelve(self) -> None:
        self._ask("Shelve", str(SHELVE_CHOICES[self.shelve_for.currentText()]))

    def unshelve(self) -> None:
        self._ask("Unshelve")

    def _ask(self, command: str, *extra: str) -> None:
        rule = self.selected()
        if self.handler is None or rule is None:
            self.say(f"{command}: select an alarm first", False)
            return
        user, why = f"{getpass.getuser()}@{socket.gethostname()}", self.reason.text().strip()

        def job() -> str:
            import tango

            proxy = tango.DeviceProxy(self.handler)
            proxy.set_timeout_millis(5000)
            proxy.command_inout(command, [rule, *extra, user, why])
            return proxy.read_attribute("alarmTable").value  # not only its event: the subscription may be new

        def done(text: str | None, error) -> None:
            if error is None:
                self.say(f"{command} {rule}: done")
                self.reason.clear()
                self.show_table(text)
            else:
                self.say(f"{command} {rule} refused: {error.args[0].desc.strip() if error.args else error}", False)

        self.background.run(job, done)
