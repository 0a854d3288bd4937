"""A Sardana motor controller for tangolab's stages: each axis is one stage device.

Sardana's generic Tango controllers move a motor by writing an attribute and then compare the
position read back with the target: Stop and Abort never reach the stage, a move that ends a
step short of the target stays MOVING for ever, and the device's refusals stay in the Pool's
log. This controller lets the device say it instead:

- `StateOne` is the device's State and Status, with its `Limit_switches` as Sardana's bits
  (a long operation that is not motion, RUNNING, is a motor still busy: Moving);
- `StartOne` writes `Position`: a refusal reaches the client in the device's words (with the
  range the device's `Position` allows when Tango refused it for its min/max);
- `StopOne` and `AbortOne` run the device's `Stop` (decelerate) and `Abort` (at once);
- Velocity, Acceleration and Deceleration are the device's `Velocity` and `Acceleration` (Sardana's
  acceleration is a time: velocity / acceleration); the device converts units with its own
  `Step_per_unit`, so the motor's stays 1.

Create it on a Pool whose `PoolPath` holds this folder (`tangolab.sardana.POOL_PATH`):

    Pool.CreateController(["Motor", "tangolab_motor_ctrl.py", "TangolabMotorController", "stages",
                           "Devices", "lab/stage/1, lab/stage/2"])
    Pool.CreateElement(["Motor", "stages", "1", "stage_1"])     # axis 1: lab/stage/1
"""

from __future__ import annotations

import re
from typing import ClassVar

import tango
from sardana import State
from sardana.pool.controller import Description, MotorController, Type

#: Seconds a call to a stage may take before the controller says it does not answer.
TIMEOUT_S = 3.0
#: Sardana's bits for the stage's Limit_switches (home, upper, lower).
SWITCH_BITS = (MotorController.HomeLimitSwitch, MotorController.UpperLimitSwitch, MotorController.LowerLimitSwitch)


class TangolabMotorController(MotorController):
    """tangolab stages (Sardana's motor names on a Tango device) as Sardana motors, one per axis."""

    gender = "Motor"
    model = "tangolab stage"
    organization = "tangolab"
    MaxDevice = 64

    ctrl_properties: ClassVar[dict] = {
        "Devices": {
            Type: str,
            Description: "The stage devices, axis 1 first, separated by commas or spaces (lab/stage/1, lab/slide/1)",
        },
    }

    def __init__(self, inst, props, *args, **kwargs):
        super().__init__(inst, props, *args, **kwargs)
        self.devices = [name for name in re.split(r"[,\s]+", self.Devices or "") if name]
        self.proxies: dict[int, tango.DeviceProxy] = {}

    # -- axes -----------------------------------------------------------------------------------

    def AddDevice(self, axis: int) -> None:
        if not 1 <= axis <= len(self.devices):
            raise ValueError(f"axis {axis} has no stage: the controller's Devices are {self.devices} (axis 1 first)")
        proxy = tango.DeviceProxy(self.devices[axis - 1])
        proxy.set_timeout_millis(int(TIMEOUT_S * 1000))
        self.proxies[axis] = proxy

    def DeleteDevice(self, axis: int) -> None:
        self.proxies.pop(axis, None)

    # -- state and position ---------------------------------------------------------------------

    def StateOne(self, axis: int) -> tuple[State, str, int]:
        proxy = self.proxies[axis]
        try:
            state, status, switches = proxy.read_attributes(["State", "Status", "Limit_switches"])
        except tango.DevFailed as failure:
            return State.Fault, f"{proxy.dev_name()} does not answer: {_words(failure)}", MotorController.NoLimitSwitch
        bits = sum(bit for bit, on in zip(SWITCH_BITS, switches.value if switches.value is not None else ()) if on)
        return _sardana_state(state.value), f"{proxy.dev_name()}: {status.value}", bits

    def ReadOne(self, axis: int) -> float:
        return self.proxies[axis].read_attribute("Position").value

    # -- motion ---------------------------------------------------------------------------------

    def StartOne(self, axis: int, position: float) -> None:
        proxy = self.proxies[axis]
        try:
            proxy.write_attribute("Position", float(position))
        except tango.DevFailed as failure:
            raise RuntimeError(_refusal(proxy, position, failure)) from None

    def StopOne(self, axis: int) -> None:
        self.proxies[axis].command_inout("Stop")

    def AbortOne(self, axis: int) -> None:
        self.proxies[axis].command_inout("Abort")

    def DefinePosition(self, axis: int, position: float) -> None:
        raise NotImplementedError(f"{self.devices[axis - 1]} knows where it is: run its Home instead of defining a position")

    # -- parameters -----------------------------------------------------------------------------

    def GetAxisPar(self, axis: int, name: str) -> float:
        proxy, name = self.proxies[axis], name.lower()
        if name == "velocity":
            return proxy.read_attribute("Velocity").value
        if name in ("acceleration", "deceleration"):  # Sardana's is the time to reach the velocity
            velocity, acceleration = (reading.value for reading in proxy.read_attributes(["Velocity", "Acceleration"]))
            return velocity / acceleration if acceleration else 0.0
        if name == "base_rate":
            return 0.0
        if name == "step_per_unit":
            return 1.0
        raise ValueError(f"{proxy.dev_name()} has no parameter {name!r}")

    def SetAxisPar(self, axis: int, name: str, value: float) -> None:
        proxy, name = self.proxies[axis], name.lower()
        if name == "velocity":  # the device keeps its acceleration: Sardana's time follows
            proxy.write_attribute("Velocity", float(value))
        elif name in ("acceleration", "deceleration"):
            if not value > 0:
                raise ValueError(f"an acceleration time must be more than 0 s, not {value!r}")
            proxy.write_attribute("Acceleration", proxy.read_attribute("Velocity").value / float(value))
        elif name == "step_per_unit" and value != 1:
            raise ValueError(f"{proxy.dev_name()} converts its units itself (its Step_per_unit property): "
                             "keep the motor's step_per_unit 1")


def _sardana_state(state: tango.DevState) -> State:
    """The device's state as Sardana's: RUNNING (a long operation) keeps the motor Moving."""
    name = "MOVING" if state == tango.DevState.RUNNING else str(state)
    return getattr(State, name.capitalize(), State.Unknown)


def _refusal(proxy: tango.DeviceProxy, position: float, failure: tango.DevFailed) -> str:
    """The device's refusal of a move, in its words; with the range when Tango refused a value
    beyond the attribute's min/max (its words do not state it)."""
    words = f"{proxy.dev_name()} refused Position = {position:g}: {_words(failure)}"
    if failure.args[0].reason == "API_WAttrOutsideLimit":
        config = proxy.get_attribute_config("Position")
        words += f"; allowed {float(config.min_value):g} to {float(config.max_value):g} {config.unit}"
    return words


def _words(failure: tango.DevFailed) -> str:
    return failure.args[0].desc.strip()
