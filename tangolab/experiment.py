"""tangolab devices as bluesky devices, through ophyd-async's Tango support, in one line each.

    from bluesky import RunEngine
    import bluesky.plans as bp
    from tangolab.experiment import tango_device

    RE = RunEngine()
    cryo = tango_device("cryocon")                  # lab/cryocon/1, connected, named "cryocon_1"
    stage = tango_device("lab/stage/1")
    RE(bp.scan([cryo], cryo.setpoint1, 100, 120, 5))
    RE(bp.scan([cryo], stage, 0, 5, 6))

The device is made from its Tango interface, the way a person reads it in Jive: every attribute
and command becomes a signal or command of the same name (`cryo.setpoint1`, `stage.Home`). What
the device polls, its read-only numbers (temperatures, pressures, currents), are the hinted
readings of `read()`, with their units and precision. Its set-points (writable numbers) are
read too, not hinted, so a scan that moves one (`cryo.setpoint1`, a settable signal) records the
value the device holds at each point; its other read-only values (an enum status, a limit
switch) are read but not hinted. Modes (writable enums and booleans) are its configuration. A stage
(`Position`, `Limit_switches`, `Homed`: the Sardana vocabulary of `device_servers.core.stage`)
is itself the movable: `set` writes `Position` and waits until the state leaves MOVING, and
fails unless it is ON again. Signals follow the change events tangolab's devices push
(`support_events=True`); only a move also reads State every 0.25 s until it ends.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from functools import cached_property

import tango
from bluesky.run_engine import call_in_bluesky_event_loop, get_bluesky_event_loop
from ophyd_async.core import (
    DEFAULT_TIMEOUT,
    Device,
    MovableLogic,
    SignalR,
    SignalRW,
    StandardMovable,
    StandardReadable,
    TimeoutCalculator,
    TriggerableCommand,
    wait_for_value,
)
from ophyd_async.core import StandardReadableFormat as Format
from ophyd_async.tango.core import DevStateEnum, TangoConverter, TangoDevice, TangoSignalBackend

from .names import Names
from .scripting import OPERATION_ATTRIBUTES

#: What makes a device a stage: the attributes `device_servers.core.stage.Stage` gives every stage.
STAGE_ATTRIBUTES = frozenset({"Position", "Limit_switches", "Homed"})
#: Seconds a stage move may take beyond distance / velocity before `set` gives up.
MOVE_MARGIN_S = 30.0
STATE_READ_PERIOD_S = 0.25  # a move also reads State this often, in case its end's event was lost
#: Tango's own attributes and a long operation's (device_servers/core/operations.py): the device's
#: state and what it is doing are signals of their own, not readings.
STATE_ATTRIBUTES = frozenset({"State", "Status", *OPERATION_ATTRIBUTES})

_NUMBERS = {
    tango.CmdArgType.DevDouble, tango.CmdArgType.DevFloat, tango.CmdArgType.DevShort,
    tango.CmdArgType.DevLong, tango.CmdArgType.DevLong64, tango.CmdArgType.DevUShort,
    tango.CmdArgType.DevULong, tango.CmdArgType.DevULong64, tango.CmdArgType.DevUChar,
}
_WRITABLE = {tango.AttrWriteType.READ_WRITE, tango.AttrWriteType.READ_WITH_WRITE}


@dataclass(frozen=True)
class Interface:
    """How the attributes of one Tango device sort into bluesky's verbs."""

    hinted: tuple[str, ...]  # read-only numbers: what the device polls and pushes
    read: tuple[str, ...]  # set-points, and read-only enums, booleans, spectra: read fresh, not hinted
    configuration: tuple[str, ...]  # modes (writable enums, booleans, strings); a stage's velocity
    is_stage: bool

    @classmethod
    def of(cls, configs: list[tango.AttributeInfoEx]) -> Interface:
        """Sort attributes by their configuration as Tango reports it."""
        hinted, read, configuration = [], [], []
        names = {c.name for c in configs}
        is_stage = STAGE_ATTRIBUTES <= names
        for config in configs:
            if config.name in STATE_ATTRIBUTES or (is_stage and config.name == "Position"):
                continue
            if config.writable in _WRITABLE:
                if config.data_format != tango.AttrDataFormat.SCALAR:
                    continue
                # a set-point is data (a scan moves it, so bluesky reads it with the device that owns
                # it), a mode is configuration; a stage's velocity and acceleration are configuration
                if config.data_type in _NUMBERS and not is_stage:
                    read.append(config.name)
                else:
                    configuration.append(config.name)
            elif config.writable == tango.AttrWriteType.READ:
                if config.data_format == tango.AttrDataFormat.SCALAR and config.data_type in _NUMBERS:
                    hinted.append(config.name)
                elif config.data_format in (tango.AttrDataFormat.SCALAR, tango.AttrDataFormat.SPECTRUM):
                    read.append(config.name)
        return cls(tuple(hinted), tuple(read), tuple(configuration), is_stage)


class TangolabDevice(TangoDevice, StandardReadable):
    """Any tangolab device: every attribute and command a child; readings and configuration sorted
    by `Interface` once connected."""

    def __init__(self, trl: str, interface: Interface, name: str = "") -> None:
        self._interface = interface
        self._sorted = False
        super().__init__(trl, support_events=True, name=name)

    async def connect(self, mock: bool = False, timeout: float = DEFAULT_TIMEOUT, force_reconnect: bool = False):
        """Connect every child, then declare what `read()`, `hints` and the configuration hold."""
        await super().connect(mock=mock, timeout=timeout, force_reconnect=force_reconnect)
        if not self._sorted:  # children exist only once connected (they come from the device)
            self._sorted = True
            self._declare_readables()

    def _declare_readables(self) -> None:
        children = dict(self.children())
        for name in (*self._interface.hinted, *self._interface.read, *self._interface.configuration):
            if name in children:
                read_invalid_as_nan(children[name])
        self.add_readables([children[n] for n in self._interface.hinted if n in children], Format.HINTED_SIGNAL)
        self.add_readables([children[n] for n in self._interface.read if n in children], Format.UNCACHED_SIGNAL)
        self.add_readables(
            [children[n] for n in self._interface.configuration if n in children], Format.CONFIG_SIGNAL
        )


class InvalidAsNaN(TangoConverter):
    """A number Tango reads as INVALID (a missing sensor) has no value: NaN, which documents
    and plots take, where ophyd-async would pass None and fail to describe the signal."""

    def __init__(self, converter: TangoConverter):
        self._converter = converter

    def write_value(self, value: object) -> object:
        return self._converter.write_value(value)

    def value(self, value: object) -> object:
        return math.nan if value is None else self._converter.value(value)


def read_invalid_as_nan(signal: Device) -> None:
    """Give a connected float signal the `InvalidAsNaN` converter (ophyd-async 0.21 has no option for it)."""
    backend = getattr(getattr(signal, "_connector", None), "backend", None)
    if isinstance(backend, TangoSignalBackend) and backend.datatype is float:
        proxy = backend.proxies.get(backend.read_trl)
        if proxy is not None and hasattr(proxy, "set_converter"):
            proxy.set_converter(InvalidAsNaN(getattr(proxy, "_converter", TangoConverter())))


async def _until_still(state: SignalR[DevStateEnum], timeout: float) -> None:
    """Until the stage's State is no longer MOVING: from its change events, and from a fresh read
    every STATE_READ_PERIOD_S. The end of a short move can be pushed while the State subscription
    is still on its way to the server, and that event is lost (ZMQ's late joiner)."""

    async def read_until_still() -> None:
        while await state.get_value(cached=False) == DevStateEnum.MOVING:
            await asyncio.sleep(STATE_READ_PERIOD_S)

    watchers = {
        asyncio.ensure_future(wait_for_value(state, lambda value: value != DevStateEnum.MOVING, timeout=None)),
        asyncio.ensure_future(read_until_still()),
    }
    try:
        done, _ = await asyncio.wait(watchers, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for watcher in watchers:
            watcher.cancel()
    if not done:
        raise TimeoutError(f"{state.source} still MOVING after {timeout:g} s")
    for watcher in done:
        watcher.result()  # a failed read says why


@dataclass
class StageMoveLogic(MovableLogic[float]):
    """Write `Position`, then wait for the stage to leave MOVING; anything but ON at the end fails."""

    state: SignalR[DevStateEnum]
    status: SignalR[str]
    velocity: SignalRW[float] | None
    stop_: TriggerableCommand | None

    async def stop(self) -> None:
        if self.stop_ is not None:
            await self.stop_.trigger()

    async def calculate_timeout(self, old_position: float, new_position: float) -> float:
        """Distance over velocity, plus a margin for acceleration, settling and a loaded machine."""
        speed = abs(await self.velocity.get_value()) if self.velocity is not None else 0.0
        travel = abs(new_position - old_position) / speed if speed > 0 else 0.0
        return 1.5 * travel + MOVE_MARGIN_S

    async def move(self, new_position: float, timeout: TimeoutCalculator) -> None:
        # The stage is MOVING from the moment it accepts the write (see core/stage.py), so the
        # state read after the write is MOVING, or already ON after a move of nothing.
        await self.setpoint.set(new_position, timeout=timeout())
        await _until_still(self.state, timeout())
        state = await self.state.get_value(cached=False)
        if state != DevStateEnum.ON:
            status = (await self.status.get_value(cached=False)).strip()
            raise RuntimeError(f"{self.setpoint.source}: the move to {new_position} ended in {state.value}: {status}")


class TangolabStage(TangolabDevice, StandardMovable[float]):
    """A tangolab stage: a movable whose reading is `Position` (named as the device itself)."""

    Position: SignalRW[float]
    State: SignalR[DevStateEnum]
    Status: SignalR[str]

    @cached_property
    def movable_logic(self) -> StageMoveLogic:
        return StageMoveLogic(
            setpoint=self.Position,
            readback=self.Position,
            state=self.State,
            status=self.Status,
            velocity=getattr(self, "Velocity", None),
            stop_=getattr(self, "Stop", None),
        )

    def _declare_readables(self) -> None:
        # fresh reads: the position the stage settled at, not the last event of the move
        read_invalid_as_nan(self.Position)
        self.add_readables([self.Position], Format.HINTED_UNCACHED_SIGNAL)
        super()._declare_readables()
        # `getattr` above ran before connecting; the logic needs the children that exist now
        self.movable_logic.velocity = getattr(self, "Velocity", None)
        self.movable_logic.stop_ = getattr(self, "Stop", None)


def default_name(device: str) -> str:
    """`lab/cryocon/1` → `cryocon_1`: the prefix of the data keys in documents (`cryocon_1-temperatureA`)."""
    parts = device.split("#")[0].rstrip("/").split("/")
    return "_".join(parts[-2:]).replace("-", "_").replace(".", "_")


def tango_device(
    device: str, name: str = "", *, connect: bool = True, timeout: float = 30.0, names: Names | None = None
) -> TangolabDevice:
    """The ophyd-async device for a tangolab device, full or short name (`cryocon`, `lab/stage/1`).

    Connected in bluesky's event loop, so create the `RunEngine` first; inside an asyncio
    program, or in `init_devices()`, pass `connect=False` and connect it there
    (`await device.connect()`). A stage (`Position`, `Limit_switches`, `Homed`) comes back as a
    movable, anything else as a readable whose writable attributes are settable signals.
    """
    full = (names or Names()).device(device)
    proxy = tango.DeviceProxy(full)
    interface = Interface.of(list(proxy.attribute_list_query_ex()))
    kind = TangolabStage if interface.is_stage else TangolabDevice
    result = kind(full, interface, name=name or default_name(full))
    if connect:
        loop = get_bluesky_event_loop()
        if loop is None or not loop.is_running():
            raise RuntimeError(
                "no bluesky event loop yet: create the RunEngine first (RE = RunEngine()), "
                "or pass connect=False and connect the device yourself"
            )
        if _running_loop() is loop:
            raise RuntimeError("inside the bluesky event loop: pass connect=False and `await device.connect()`")
        call_in_bluesky_event_loop(result.connect(timeout=timeout))
    return result


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
