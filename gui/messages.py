"""Lab messages: what the archiver stored (the last day, from the archive) and then, live, each
new one as the archiver pushes it (the change event of its `lastMessage`), filterable by level
and by source."""

from __future__ import annotations

import re
import time

from taurus.external.qt import Qt

from .panels import DevicesPanel, archive_for
from .watch import DeviceInfo

LEVELS = ("DEBUG", "INFO", "MESSAGE", "WARNING", "ERROR", "SUCCESS")
LEVEL_COLOURS = {"WARNING": "#fd0", "ERROR": "#e22", "SUCCESS": "#9e9"}
HISTORY = "1d"  # how far back the panel starts
MOST_ROWS = 5000
ALL_LEVELS, ALL_SOURCES = "all levels", "all sources"
#: lastMessage as the archiver pushes it: "2024-05-01 12:00:00 WARNING lab/x/1: text"
PUSHED = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) (\w+) (.*?): (.*)$", re.DOTALL)


def stamp(when: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(when))


class MessagesPanel(DevicesPanel):
    """A table of lab messages, newest last, with a level and a source filter."""

    new_message = Qt.pyqtSignal(str)

    def __init__(self, window, parent=None) -> None:
        super().__init__(window, parent)
        self.seen: set[tuple[str, str, str, str]] = set()
        self.level = Qt.QComboBox()
        self.level.addItems([ALL_LEVELS, *LEVELS])
        self.source = Qt.QComboBox()
        self.source.setEditable(True)
        self.source.addItem(ALL_SOURCES)
        self.source.setMinimumWidth(220)
        self.level.currentTextChanged.connect(self.refilter)
        self.source.currentTextChanged.connect(self.refilter)
        self.table = Qt.QTableWidget(0, 4)
        self.table.setHorizontalHeaderLabels(["time", "level", "source", "text"])
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setEditTriggers(Qt.QAbstractItemView.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.setColumnWidth(0, 170)
        self.table.setColumnWidth(1, 90)
        self.table.setColumnWidth(2, 160)
        bar = Qt.QHBoxLayout()
        for widget in (Qt.QLabel("level"), self.level, Qt.QLabel("source"), self.source):
            bar.addWidget(widget)
        bar.addStretch(1)
        layout = Qt.QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.message)
        self.new_message.connect(self._pushed, Qt.Qt.QueuedConnection)
        self.background.run(self._history, self._show_history)

    def _history(self) -> list:
        from tangolab import history

        archive = archive_for(self.window_.tango_host)
        if archive is None:
            return []
        return history.messages(since=HISTORY, store=archive)[-MOST_ROWS:]

    def _show_history(self, found, error) -> None:
        if error is not None:
            self.say(f"no history of messages: {error}", False)
        for message in found or ():
            self.add_row(stamp(message.time), message.level, message.source, message.text)
        self.start()

    # -- live ---------------------------------------------------------------------------------

    def wants(self, info: DeviceInfo) -> bool:
        return info.attribute("lastMessage") is not None

    def models(self, info: DeviceInfo) -> list[str]:
        return [f"{self.full(info.name)}/lastMessage"]

    def add(self, info: DeviceInfo) -> list[Qt.QWidget]:
        self.keeper.attributes[self.models(info)[0].lower()].addListener(self)
        return []

    def eventReceived(self, src, evt_type, evt_value) -> None:
        text = getattr(evt_value, "rvalue", None)
        if text:
            self.new_message.emit(str(text))

    def _pushed(self, text: str) -> None:
        if match := PUSHED.match(text):
            self.add_row(*match.groups())

    # -- table --------------------------------------------------------------------------------

    def add_row(self, when: str, level: str, source: str, text: str) -> None:
        key = (when, level, source, text)
        if key in self.seen:
            return
        self.seen.add(key)
        if self.source.findText(source) < 0:
            self.source.addItem(source)
        if self.table.rowCount() >= MOST_ROWS:
            self.table.removeRow(0)
        row = self.table.rowCount()
        self.table.insertRow(row)
        for column, value in enumerate(key):
            item = Qt.QTableWidgetItem(value)
            if level in LEVEL_COLOURS:
                item.setBackground(Qt.QColor(LEVEL_COLOURS[level]))
            self.table.setItem(row, column, item)
        self.table.setRowHidden(row, not self._shown(level, source))
        self.table.scrollToBottom()

    def _shown(self, level: str, source: str) -> bool:
        wanted_level, wanted_source = self.level.currentText(), self.source.currentText().strip()
        return (wanted_level == ALL_LEVELS or level == wanted_level) and (
            wanted_source in ("", ALL_SOURCES) or wanted_source.lower() in source.lower()
        )

    def refilter(self, *_args) -> None:
        for row in range(self.table.rowCount()):
            self.table.setRowHidden(row, not self._shown(self.table.item(row, 1).text(), self.table.item(row, 2).text()))

    def rows(self) -> list[tuple[str, str, str, str]]:
        """The rows shown, for tests."""
        return [tuple(self.table.item(row, column).text() for column in range(4))
                for row in range(self.table.rowCount()) if not self.table.isRowHidden(row)]
