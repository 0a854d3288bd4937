"""How Taurus widgets look and behave in tangolab's window, set once before any widget exists.

Three things Taurus 5.4 does that the lab cannot use as they are:
- WARNING and ALARM qualities are painted in the same dark orange: WARNING becomes yellow with
  black text, ALARM red with white text (the CCD heads' health uses the same colours);
- floats are shown with the precision of their Tango format but always as fixed point, so a
  pressure of 2e-6 mbar with format `%.2e` reads 0.00: a format in e or g notation is kept;
- a write widget keeps what it first showed, so a write value the device changes later (another
  client, a script, the device's own start-up) reads as the user's pending edit: a write widget
  follows the device's write value unless the user is editing it;
- taurus_pyqtgraph's TaurusTrend.setModel with several attributes raises AttributeError when a
  curve has no value yet (TaurusTrendSet._update reads buffers made by the first event): a curve
  without values is left undrawn; and a scalar's curve is named `temperatureA[0]`: the `[0]` goes.
"""

from __future__ import annotations

from enum import Enum

#: Quality colours: (name, red, green, blue, text colour: 0 black, 1 white) as Taurus keeps them.
QUALITY_COLOURS = {
    "ATTR_WARNING": ("Yellow", 255, 221, 0, 0),
    "ATTR_ALARM": ("Red", 226, 34, 34, 1),
}
_UNSET = object()
_applied = False


def lab_formatter(dtype=None, basecomponent=None, **kwargs) -> str:
    """Taurus's default format, except that a Tango format in e or g notation is honoured."""
    from taurus.qt.qtgui.base.taurusbase import defaultFormatter

    model = getattr(basecomponent, "modelObj", None)
    spec = getattr(model, "format_spec", "") or ""
    if dtype is not None and spec[-1:] in ("e", "E", "g", "G") and not issubclass(dtype, Enum):
        from taurus.core.units import Quantity

        return f"{{:~{spec}}}" if dtype is Quantity else f"{{:{spec}}}"
    return defaultFormatter(dtype=dtype, basecomponent=basecomponent, **kwargs)


def apply() -> None:
    """Patch colours, format and write-value following into Taurus, once per process."""
    global _applied
    if _applied:
        return
    _applied = True
    import taurus.tauruscustomsettings as settings
    from taurus.core.taurusbasetypes import TaurusEventType
    from taurus.core.util import colors
    from taurus.qt.qtgui.base.taurusbase import TaurusBaseWritableWidget

    colors.ATTRIBUTE_QUALITY_DATA.update(QUALITY_COLOURS)  # the palettes hold this very dict
    settings.DEFAULT_FORMATTER = lab_formatter
    original = TaurusBaseWritableWidget.handleEvent

    def follow_write_value(self, evt_src, evt_type, evt_value):
        if evt_type in (TaurusEventType.Change, TaurusEventType.Periodic):
            written = getattr(evt_value, "wvalue", None)
            if written is not None and not _same(written, getattr(self, "_lab_wvalue", _UNSET)):
                self._lab_wvalue = written
                if not self.hasFocus():  # what the user is typing stays
                    self.setValue(written)
        original(self, evt_src, evt_type, evt_value)

    TaurusBaseWritableWidget.handleEvent = follow_write_value

    from taurus_pyqtgraph.taurustrendset import TaurusTrendSet

    original_update = TaurusTrendSet._update

    def update_once_filled(self):
        if self._xBuffer is not None and self._yBuffer is not None:  # no value yet: nothing to draw
            original_update(self)

    TaurusTrendSet._update = update_once_filled
    original_view = TaurusTrendSet._updateViewBox

    def scalar_curves_without_index(self, viewbox):
        for curve in self._curves if len(self._curves) == 1 else ():
            if (name := curve.opts.get("name") or "").endswith("[0]"):
                curve.opts["name"] = name[:-3]  # before the curve joins the plot and its legend
        original_view(self, viewbox)

    TaurusTrendSet._updateViewBox = scalar_curves_without_index


def _same(a: object, b: object) -> bool:
    try:
        return bool(a == b)
    except (ValueError, TypeError):  # arrays, quantities of other dimensions
        return False
