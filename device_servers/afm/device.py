"""`ForceSpectrometer`: a single-molecule force spectrometer's epz board as a Tango device (`lab/afm/1`).

The board's settings are attributes with units and limits: the feedback's `setpoint` in pN and
its gains, the `samplePeriod`, the `save` flag of the data stream. Forces and lengths come from
the board's volts through the properties `Sensitivity` (nm of deflection per V), `Stiffness`
(pN/nm) and `PiezoSensitivity` (nm per DAC V): `deflection` (V), `force` (pN), `piezoPosition` (nm).

Long operations (device_servers/core/operations.py: RUNNING, progress, `Stop`, `Abort`, one at a
time): `Approach` moves towards the surface until `contactForce`; `Pull` retracts `pullDistance`
at `pullSpeed`, or until the tension passes `forceTrigger` or `timeTrigger` elapses (0: not
used); `ForceClamp(seconds)` holds the force at `setpoint` with the feedback; `Rest` turns the
feedback off and brings the piezo back to 0 V. The board's own triggers stop its ramp.

The stream (device_servers/core/stream.py): the board's binary blocks, channels deflection,
dac, height, sum (V) and the save flag; a stream that stops makes the device FAULT. The force
curve of the last `ViewSeconds` (`curveDistance` in nm, `curveForce` in pN) comes from the views,
with their events, for screens. An overloaded deflection input is ALARM with the reason.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from tango import AttrQuality, AttrWriteType, DevState, Except
from tango.server import attribute, command, device_property

from ..core.errors import for_tango
from ..core.hardware import polled, writable
from ..core.limits import Limits
from ..core.operations import LongOperationDevice, OperationFailed, Running
from ..core.server import serve
from ..core.stream import Channel, Streaming
from ..core.zmq_link import ZmqLink
from . import protocol
from .driver import DAC_RANGE, BlockSource, Calibration, EpzBoard

GAIN = Limits(0.0, 1.0)
CHANNEL_INDEX = {name: index for index, name in enumerate(protocol.CHANNELS)}
#: The most points of the force curve (ViewPixels at most)
MAX_CURVE = 100_000
#: How often a running operation asks the board how far its ramp got.
FOLLOW_S = 0.05


def _memorized(unit: str, low: float, high: float, doc: str) -> dict[str, Any]:
    return {"dtype": float, "access": AttrWriteType.READ_WRITE, "memorized": True, "hw_memorized": True,
            "unit": unit, "min_value": low, "max_value": high, "doc": doc}


class ForceSpectrometer(Streaming, LongOperationDevice):
    """The epz AD/DA board of a force spectrometer: settings, approach, pull, clamp, stream."""

    Url = device_property(dtype=str, mandatory=True,
                          doc="The board's broker: zmq://host[:publish port][/subscribe port[/file port]]")
    Board = device_property(dtype=str, default_value=protocol.DEVICE, doc="The board's epz device name")
    Sensitivity = device_property(dtype=float, default_value=50.0, doc="nm of cantilever deflection per V")
    Stiffness = device_property(dtype=float, default_value=50.0, doc="Cantilever stiffness, pN/nm (mN/m)")
    PiezoSensitivity = device_property(dtype=float, default_value=200.0, doc="nm the piezo moves per DAC V")

    channels = tuple(Channel(name, "V") for name in protocol.CHANNELS) + (Channel("save", ""),)

    setpoint = writable(dtype=float, unit="pN", format="%.1f", writes=EpzBoard.set_setpoint,
                        doc="The force the feedback holds (ForceClamp); limits: +-1 V of deflection")
    proportionalGain = writable(dtype=float, writes=(EpzBoard.setting, "PGAIN"), limits=GAIN, doc="Feedback P")
    integralGain = writable(dtype=float, writes=(EpzBoard.setting, "IGAIN"), limits=GAIN, doc="Feedback I")
    derivativeGain = writable(dtype=float, writes=(EpzBoard.setting, "DGAIN"), limits=GAIN, doc="Feedback D")
    samplePeriod = writable(dtype=int, unit="us", writes=(EpzBoard.setting, "TIM8PER"),
                            limits=Limits(1, 1_000_000, "us"), doc="Sample period of the stream (100: 10 kS/s)")
    save = writable(dtype=bool, writes=EpzBoard.set_save,
                    doc="The save flag of the data stream: up while the samples are to be saved")
    feedback = polled(dtype=bool, doc="The feedback holds the deflection at the set-point")
    deflection = polled(dtype=float, unit="V", format="%.4f", doc="Cantilever deflection, mean of the last block")
    force = polled(dtype=float, unit="pN", format="%.1f",
                   doc="Force on the cantilever (positive: pushed by the surface; negative: pulled)")
    piezoPosition = polled(dtype=float, unit="nm", format="%.1f", doc="Where the piezo is (0: DAC at 0 V)")
    overload = polled(dtype=bool, doc="The deflection input is saturated")

    # -- settings of the operations (kept by the device, memorized) ---------------------------

    @attribute(**_memorized("nm/s", 1.0, 20_000.0, "Piezo speed of Approach and Pull"))
    def pullSpeed(self) -> float:
        return self._settings["pullSpeed"]

    @pullSpeed.write
    def pullSpeed(self, value: float) -> None:
        self._settings["pullSpeed"] = value

    @attribute(**_memorized("nm", 1.0, 2000.0, "How far Pull retracts"))
    def pullDistance(self) -> float:
        return self._settings["pullDistance"]

    @pullDistance.write
    def pullDistance(self, value: float) -> None:
        self._settings["pullDistance"] = value

    @attribute(**_memorized("pN", 1.0, 10_000.0, "The force at which Approach stops: contact"))
    def contactForce(self) -> float:
        return self._settings["contactForce"]

    @contactForce.write
    def contactForce(self, value: float) -> None:
        self._settings["contactForce"] = value

    @attribute(**_memorized("pN", 0.0, 10_000.0, "Pull stops when the tension passes it (0: not used)"))
    def forceTrigger(self) -> float:
        return self._settings["forceTrigger"]

    @forceTrigger.write
    def forceTrigger(self, value: float) -> None:
        self._settings["forceTrigger"] = value

    @attribute(**_memorized("s", 0.0, 1000.0, "Pull stops after this long (0: not used)"))
    def timeTrigger(self) -> float:
        return self._settings["timeTrigger"]

    @timeTrigger.write
    def timeTrigger(self, value: float) -> None:
        self._settings["timeTrigger"] = value

    # -- the force curve ------------------------------------------------------------------------

    @attribute(dtype=(float,), max_dim_x=MAX_CURVE, unit="nm", format="%.1f",
               doc="The force curve of the last ViewSeconds: distance from where the piezo was nearest the "
               "surface, one point per view pixel (with curveForce)")
    def curveDistance(self) -> np.ndarray:
        return self._force_curve()[0]

    @attribute(dtype=(float,), max_dim_x=MAX_CURVE, unit="pN", format="%.1f",
               doc="The force curve of the last ViewSeconds: the force at each point of curveDistance")
    def curveForce(self) -> np.ndarray:
        return self._force_curve()[1]

    # -- the device -----------------------------------------------------------------------------

    def init_device(self) -> None:
        self._settings = {"pullSpeed": 500.0, "pullDistance": 400.0, "contactForce": 300.0,
                          "forceTrigger": 0.0, "timeTrigger": 0.0}
        super().init_device()
        for name in ("curveDistance", "curveForce"):
            self.set_change_event(name, True, False)

    def create_driver(self, link: ZmqLink) -> EpzBoard:
        self.calibration = Calibration(self.Sensitivity, self.Stiffness, self.PiezoSensitivity)
        return EpzBoard(link, self.Board, self.calibration)

    def create_source(self) -> BlockSource:
        return BlockSource(self.link, self.Board)

    def on_connect(self) -> None:
        self.driver.hello(timeout=3 * self.Timeout)

    def poll(self) -> dict[str, Any]:
        board, cal = self.driver, self.calibration
        last = self._source.last
        deflection = None if last is None else float(last[0])
        height = board.dac() if last is None else float(last[2])
        return {
            "setpoint": cal.force(board.get("SETPOINT")[0]),
            "proportionalGain": board.get("PGAIN")[0],
            "integralGain": board.get("IGAIN")[0],
            "derivativeGain": board.get("DGAIN")[0],
            "samplePeriod": int(board.get("TIM8PER")[0]),
            "save": bool(board.get("SAVE")[0]),
            "feedback": board.get("MODSAFE")[0] == 2,
            "deflection": deflection,
            "force": None if deflection is None else cal.force(deflection),
            "piezoPosition": height * cal.piezo,
            "overload": self._source.overload,
        }

    def operating_state(self, values: dict[str, Any]) -> tuple[DevState, str]:
        state, status = super().operating_state(values)
        if state == DevState.FAULT:
            return state, status
        if values.get("overload"):
            limit = self.calibration.force(protocol.SETTINGS["FTRIG"].ranges[0][1])
            return DevState.ALARM, (f"Overload: the deflection input is saturated (beyond +-{limit:.0f} pN); "
                                    "retract (Rest) or lower the force")
        return DevState.ON, f"Board {self.Board} at {self.Url}"

    def halt(self, immediate: bool) -> None:
        self.call_driver(self.driver.halt)

    def _push_views(self) -> None:
        super()._push_views()
        distance, force = self._force_curve()
        now = time.time()
        self.push_change_event("curveDistance", distance, now, AttrQuality.ATTR_VALID)
        self.push_change_event("curveForce", force, now, AttrQuality.ATTR_VALID)

    def _force_curve(self) -> tuple[np.ndarray, np.ndarray]:
        """The middle of each view pixel of deflection and height, in pN and nm."""
        view, cal = self._view, self.calibration
        deflection, height = (CHANNEL_INDEX[name] for name in ("deflection", "height"))
        mins, maxs = view.mins, view.maxs  # the stream thread replaces them, never changes them
        count = min(mins.shape[1], maxs.shape[1])
        if not count:
            return np.empty(0), np.empty(0)
        middles = (mins[:, -count:] + maxs[:, -count:]) / 2
        heights = middles[height]
        return (heights.max() - heights) * cal.piezo, cal.force(middles[deflection])

    # -- long operations ------------------------------------------------------------------------

    @command
    def Approach(self) -> None:
        """Move towards the surface until the force reaches `contactForce`."""
        speed = self._settings["pullSpeed"] / self.calibration.piezo
        self.run_operation("Approach", self._approach, expected=(DAC_RANGE[1] - DAC_RANGE[0]) / speed)

    @command
    def Pull(self) -> None:
        """Retract `pullDistance` at `pullSpeed`, or until `forceTrigger` or `timeTrigger`."""
        settings = self._settings
        expected = settings["pullDistance"] / settings["pullSpeed"]
        if settings["timeTrigger"]:
            expected = min(expected, settings["timeTrigger"])
        self.run_operation("Pull", self._pull, expected=expected)

    @command(dtype_in=float, doc_in="Seconds to hold the force at the set-point")
    def ForceClamp(self, seconds: float) -> None:
        """Hold the force at `setpoint` with the feedback for `seconds`, then hold the piezo."""
        if not 0 < seconds <= 3600:
            self._refuse("ForceClamp", f"the clamp lasts 0 to 3600 s, not {seconds:g}")
        self.run_operation("ForceClamp", lambda running: self._clamp(running, seconds), expected=seconds)

    @command
    def Rest(self) -> None:
        """Feedback off, and the piezo back to 0 V (the original's rest state)."""
        speed = self._settings["pullSpeed"] / self.calibration.piezo
        self.run_operation("Rest", self._rest, expected=(DAC_RANGE[1] - DAC_RANGE[0]) / speed)

    def _approach(self, running: Running) -> None:
        cal, board = self.calibration, self.driver
        contact = cal.volts(self._settings["contactForce"])
        start = board.dac()
        board.ramp(DAC_RANGE[1], self._settings["pullSpeed"] / cal.piezo, force=(contact, False))
        self._follow(running, start, DAC_RANGE[1])
        if not running.stopping and board.dac() >= DAC_RANGE[1]:
            raise OperationFailed(f"no surface within the piezo's range ({DAC_RANGE[1] * cal.piezo:.0f} nm)")

    def _pull(self, running: Running) -> None:
        cal, board, settings = self.calibration, self.driver, self._settings
        start = board.dac()
        target = max(DAC_RANGE[0], start - settings["pullDistance"] / cal.piezo)
        tension = settings["forceTrigger"]
        board.ramp(target, settings["pullSpeed"] / cal.piezo,
                   force=(-cal.volts(tension), True) if tension else None,
                   seconds=settings["timeTrigger"] or None)
        self._follow(running, start, target)

    def _clamp(self, running: Running, seconds: float) -> None:
        self.driver.feedback(True)
        try:
            while running.sleep(FOLLOW_S) and running.elapsed < seconds:
                running.report(100 * running.elapsed / seconds, seconds - running.elapsed)
        finally:
            self.driver.feedback(False)

    def _rest(self, running: Running) -> None:
        start = self.driver.dac()
        self.driver.rest()
        self._follow(running, start, 0.0)

    def _follow(self, running: Running, start: float, target: float) -> None:
        """Report how far the board's ramp got until it ends (target or trigger) or Stop."""
        span = abs(target - start) or 1.0
        while running.sleep(FOLLOW_S):
            if not self.driver.ramping():
                return
            running.report(100 * abs(self.driver.dac() - start) / span)
        self.driver.halt()

    def _refuse(self, what: str, reason: str) -> None:
        Except.throw_exception("ValueRejected", for_tango(f"{what} refused: {reason}"), f"{self.get_name()} {what}")


def main() -> None:
    serve(ForceSpectrometer)


if __name__ == "__main__":
    main()
