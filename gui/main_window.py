"""`tangolab gui`: one Taurus window for the whole lab.

On the left, every device of the Tango database grouped by class, with state LEDs (gui/device_tree.py);
on the right, tabs: the lab's dedicated panels (temperatures, stages, CCD heads, relay variables,
lab messages, the lab file's trends) and a panel per device opened from the tree
(gui/device_panel.py). Nothing reads, writes or runs a command on the GUI thread where it could
block (gui/models.py), and a device whose server dies or hangs is greyed with the reason within
a second or two (gui/watch.py). The open tabs, the current one and the window's layout are
remembered between runs (QSettings: $TANGOLAB_GUI_SETTINGS, else the user's Qt settings).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tangolab.lab_config import LabConfig


def build_window(config: LabConfig, tango_host: str, settings_path: str | Path | None = None):
    """The lab's main window (gui.window.MainWindow); needs a running QApplication (Taurus's)."""
    from .window import MainWindow

    return MainWindow(config, tango_host, settings_path)


def display_problem(environ: dict[str, str] | None = None) -> str | None:
    """Why Qt could not open a window here, in one line; None if it can."""
    environ = dict(os.environ if environ is None else environ)
    platform = environ.get("QT_QPA_PLATFORM", "")
    if platform and not platform.startswith("xcb"):
        return None  # offscreen, wayland, vnc...: the user chose
    if not sys.platform.startswith("linux"):
        return None
    if not environ.get("DISPLAY"):
        if environ.get("WAYLAND_DISPLAY"):
            return None
        return ("no display: DISPLAY is not set (run it on a desktop, through ssh -X, or under xvfb-run; "
                "QT_QPA_PLATFORM=offscreen renders without showing anything)")
    probe = subprocess.run(  # Qt aborts the whole process when its xcb plugin cannot start: ask a child
        [sys.executable, "-c", "from PyQt5.QtWidgets import QApplication; QApplication([])"],
        check=False, capture_output=True, text=True, timeout=30, env=environ,
    )
    if probe.returncode == 0:
        return None
    lines = [line.strip() for line in probe.stderr.splitlines() if line.strip()]
    hint = next((line for line in lines if "xcb" in line.lower() or "display" in line.lower()), lines[0] if lines else "")
    missing = "" if "could not connect" in hint.lower() else (
        " (Qt's xcb plugin needs libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0 "
        "libxcb-render-util0 libxcb-shape0 libxcb-xinerama0 libxcb-xkb1 libxkbcommon-x11-0: ./dev.sh installs them)")
    return f"cannot open the display {environ['DISPLAY']}: {hint}{missing}"


def run(config: LabConfig, tango_host: str | None = None, settings_path: str | Path | None = None) -> int:
    if problem := display_problem():
        print(f"tangolab gui: {problem}", file=sys.stderr)
        return 2
    import taurus

    # Taurus's start-up notes (no HDB++ archiving reader: the trends read the lab's archive; no
    # epics scheme; no manual browser) are not the user's business: the terminal shows errors only
    taurus.setLogLevel(taurus.Logger.Error)
    from taurus.qt.qtgui.application import TaurusApplication

    from gui.trend import responsive_interpreter

    tango_host = tango_host or os.environ.get("TANGO_HOST", "localhost:10000")
    app = TaurusApplication(sys.argv[:1], cmd_line_parser=None, app_name="tangolab")
    window = build_window(config, tango_host, settings_path)
    window.show()
    responsive_interpreter()  # a GUI taking events on other threads stalls on the GIL and on full collections
    status = app.exec_()
    # leave at once: cppTango's exit handler can deadlock with a worker thread whose garbage
    # collection unsubscribes an event, and the window's state is saved when it closes
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
