"""A Taurus form built a row per turn of the event loop.

`TaurusForm.setModel` builds every row at once and rebuilds them all when one is added; a row
(label, read widget, write widget, unit: a `TaurusValue`) costs 10–40 ms of Python on these
machines, so a form of 15 attributes froze the window for 0.2–0.9 s. Here each `TaurusValue` is
made in a turn of its own (models already prepared off the GUI thread, see gui/models.py), so
the window keeps answering while a panel fills in.
"""

from __future__ import annotations

from taurus.external.qt import Qt


class GradualForm(Qt.QWidget):
    """Rows of TaurusValue in one grid, added (or removed) without freezing the window."""

    filled = Qt.pyqtSignal()

    def __init__(self, parent=None) -> None:
        from taurus.qt.qtgui.container import TaurusWidget

        super().__init__(parent)
        self.frame = TaurusWidget()
        Qt.QGridLayout(self.frame)
        layout = Qt.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.frame)
        layout.addStretch(1)
        self.rows: dict[str, object] = {}  # model (lower case) -> TaurusValue
        self._queue: list[str] = []
        self._adding = False

    def __iter__(self):
        return iter(list(self.rows.values()))

    def models(self) -> list[str]:
        return [row.getModelName() for row in self.rows.values()]

    def add_models(self, models: list[str]) -> None:
        self._queue.extend(m for m in models if m.lower() not in self.rows and m not in self._queue)
        if not self._adding:
            self._adding = True
            Qt.QTimer.singleShot(0, self._add_next)

    def set_models(self, models: list[str]) -> None:
        """Show exactly these models: rows of others are removed, new ones added."""
        wanted = {m.lower() for m in models}
        self._queue = [m for m in self._queue if m.lower() in wanted]
        for key in [key for key in self.rows if key not in wanted]:
            row = self.rows.pop(key)
            for widget in (row.labelWidget(), row.readWidget(), row.writeWidget(), row.unitsWidget(), row):
                if widget is not None:
                    widget.hide()
                    widget.deleteLater()
        self.add_models(models)

    def _add_next(self) -> None:
        from taurus.qt.qtgui.panel import TaurusValue

        if not self._queue:
            self._adding = False
            self.filled.emit()
            return
        model = self._queue.pop(0)
        row = TaurusValue()
        row.setMinimumHeight(20)
        row.setParent(self.frame)  # parent first: setModel then makes each sub-widget once
        row.setModel(model)
        self.rows[model.lower()] = row
        Qt.QTimer.singleShot(0, self._add_next)
