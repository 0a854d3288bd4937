"""The tree on the left of the window: the lab's panels, then every device of the Tango database
grouped by its Tango class, each with a state LED. The lab file only gives the order (its
classes and devices first, as listed); a device added to the database later appears within
seconds. Clicking a device opens its panel.
"""

from __future__ import annotations

from taurus.external.qt import Qt

from .watch import Health, LabWatch

DEVICE_ROLE = Qt.Qt.UserRole
PANEL_ROLE = Qt.Qt.UserRole + 1
DOWN_COLOUR = "#3a3a3a"


def led(colour: str) -> Qt.QIcon:
    """A round LED of a colour, as Taurus's TaurusLed draws states."""
    pixmap = Qt.QPixmap(14, 14)
    pixmap.fill(Qt.Qt.transparent)
    painter = Qt.QPainter(pixmap)
    painter.setRenderHint(Qt.QPainter.Antialiasing)
    painter.setBrush(Qt.QColor(colour))
    painter.setPen(Qt.QPen(Qt.QColor("#222"), 1))
    painter.drawEllipse(1, 1, 12, 12)
    painter.end()
    return Qt.QIcon(pixmap)


def state_colour(health: Health | None) -> str:
    from taurus.core.util.colors import DEVICE_STATE_PALETTE

    if health is None:
        return "#" + DEVICE_STATE_PALETTE.hex("UNKNOWN")
    if not health.alive:
        return DOWN_COLOUR
    return "#" + DEVICE_STATE_PALETTE.hex(health.state if DEVICE_STATE_PALETTE.has(health.state) else "UNKNOWN")


class DeviceTree(Qt.QTreeWidget):
    open_device = Qt.pyqtSignal(str)
    open_panel = Qt.pyqtSignal(str)

    def __init__(self, watch: LabWatch, lab_order: list[tuple[str, str]], panels: list[str], parent=None) -> None:
        """`lab_order`: (device, class) of the lab file, in its order; `panels`: the dedicated panels."""
        super().__init__(parent)
        self.watch = watch
        self.lab_order = [(device.lower(), tango_class) for device, tango_class in lab_order]
        self.setHeaderLabels(["device", "state"])
        self.setColumnWidth(0, 230)
        self.setMinimumWidth(300)
        self.devices: dict[str, Qt.QTreeWidgetItem] = {}
        self.groups: dict[str, Qt.QTreeWidgetItem] = {}
        self._icons: dict[str, Qt.QIcon] = {}
        group = Qt.QTreeWidgetItem(["Panels"])
        self.addTopLevelItem(group)
        for name in panels:
            item = Qt.QTreeWidgetItem([name])
            item.setData(0, PANEL_ROLE, name)
            group.addChild(item)
        group.setExpanded(True)
        self.itemClicked.connect(self._clicked)
        self.itemActivated.connect(self._clicked)
        watch.listed.connect(self.show_devices)
        watch.health.connect(self.show_health)
        # until the database has been listed, show the lab file's devices
        self.show_devices({device: tango_class for device, tango_class in self.lab_order})

    def _icon(self, colour: str) -> Qt.QIcon:
        if colour not in self._icons:
            self._icons[colour] = led(colour)
        return self._icons[colour]

    def _clicked(self, item: Qt.QTreeWidgetItem, _column: int = 0) -> None:
        if device := item.data(0, DEVICE_ROLE):
            self.open_device.emit(device)
        elif panel := item.data(0, PANEL_ROLE):
            self.open_panel.emit(panel)

    def show_devices(self, devices: dict[str, str]) -> None:
        """Place every device under its class, lab-file order first, then alphabetical."""
        rank = {device: index for index, (device, _) in enumerate(self.lab_order)}
        class_rank: dict[str, int] = {}
        for device, tango_class in self.lab_order:
            class_rank.setdefault(tango_class, len(class_rank))
        for device in sorted(devices, key=lambda d: (rank.get(d, len(rank)), d)):
            tango_class = devices[device]
            if device in self.devices:
                continue
            group = self.groups.get(tango_class)
            if group is None:
                group = Qt.QTreeWidgetItem([tango_class])
                group.setData(0, Qt.Qt.UserRole + 2, class_rank.get(tango_class, len(class_rank)))
                self.groups[tango_class] = group
                self._insert_group(group, tango_class, class_rank)
                group.setExpanded(True)
            item = Qt.QTreeWidgetItem([device, ""])
            item.setData(0, DEVICE_ROLE, device)
            item.setIcon(0, self._icon(state_colour(self.watch.healths.get(device))))
            group.addChild(item)
            self.devices[device] = item
            if device in self.watch.healths:
                self.show_health(device, self.watch.healths[device])

    def _insert_group(self, group: Qt.QTreeWidgetItem, tango_class: str, class_rank: dict[str, int]) -> None:
        key = (class_rank.get(tango_class, len(class_rank)), tango_class.lower())
        for index in range(1, self.topLevelItemCount()):  # 0 is "Panels"
            other = self.topLevelItem(index)
            name = other.text(0)
            if key < (class_rank.get(name, len(class_rank)), name.lower()):
                self.insertTopLevelItem(index, group)
                return
        self.addTopLevelItem(group)

    def show_health(self, device: str, health: Health) -> None:
        item = self.devices.get(device)
        if item is None:
            return
        item.setIcon(0, self._icon(state_colour(health)))
        item.setText(1, health.state if health.alive else "down")
        item.setToolTip(0, health.reason or health.state)
        item.setToolTip(1, health.reason or health.state)
