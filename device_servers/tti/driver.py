"""Driver of an Aim-TTi (Thurlby Thandar) programmable power supply: MX100QP, PL-P series.

Pure Python over a `Link` (the LAN interface is a raw socket on TCP 9221):

    psu = AimTtiPsu(SerialLink("socket://psu:9221"), MODELS["MX100QP"])
    psu.connect()
    psu.write(psu.voltage_setpoint(1), 12.0)   # V1 12.000;V1?;EER? -> 12.0, as read back
    psu.set_output(1, True)                    # OP1 1, then its state and limit events
    psu.read_output(1)                         # OutputStatus(voltage=12.0, current=0.12, ...)

Every setting is read back and followed by `EER?`, so a value the supply did not take is an
`InstrumentError` in its words. The limit event status register reports a trip once: the driver
keeps the trips it has seen until `reset_trips` (TRIPRST) or until that output is switched on.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..core.errors import InstrumentError, shown
from ..core.link import Link
from ..core.scpi import Quantity, TextInstrument, flag, integer
from .protocol import CONSTANT_CURRENT, EXECUTION_ERRORS, MODELS, TRIPS, Model


@dataclass(frozen=True)
class OutputStatus:
    voltage_setpoint: float  # V
    current_limit: float  # A
    voltage: float  # V, read back at the output
    current: float  # A, read back at the output
    on: bool
    ovp: float  # V, over-voltage trip level
    ocp: float  # A, over-current trip level
    limit_events: int  # LSR bits seen since the last read
    trips: tuple[str, ...]  # protections tripped and not reset (names of TRIPS)

    @property
    def constant_current(self) -> bool:
        return bool(self.limit_events & CONSTANT_CURRENT)


class AimTtiPsu(TextInstrument):
    """One Aim-TTi power supply, one quantity a line; each setting is read back."""

    identity = Quantity("*IDN?", parse=str.strip)
    voltage_setpoint = Quantity("V{output}?", "V{output} {:.3f}", answer="V{output} {}",
                                limits=lambda psu, output: psu.model.voltage)
    current_limit = Quantity("I{output}?", "I{output} {:.3f}", answer="I{output} {}",
                             limits=lambda psu, output: psu.model.current)
    voltage = Quantity("V{output}O?", answer="{}V")
    current = Quantity("I{output}O?", answer="{}A")
    on = Quantity("OP{output}?", "OP{output} {:d}", flag)
    ovp = Quantity("OVP{output}?", "OVP{output} {:.3f}", answer="VP{output} {}", limits=lambda psu, output: psu.model.ovp)
    ocp = Quantity("OCP{output}?", "OCP{output} {:.3f}", answer="CP{output} {}", limits=lambda psu, output: psu.model.ocp)
    limit_events = Quantity("LSR{output}?", parse=integer)
    error_query = Quantity("EER?", parse=integer)
    query_error = Quantity("QER?", parse=integer)
    configuration = Quantity("CONFIG?", parse=integer)

    #: What `read_output` reads, in the order of OutputStatus.
    STATUS = (voltage_setpoint, current_limit, voltage, current, on, ovp, ocp, limit_events)

    def __init__(self, link: Link, model: Model = MODELS["MX100QP"], outputs: int | None = None) -> None:
        super().__init__(link)
        self.model = model
        self.outputs = tuple(range(1, (outputs or model.outputs) + 1))
        if len(self.outputs) > model.outputs:
            raise ValueError(f"the {model.name} has {model.outputs} output(s), not {len(self.outputs)}")
        self.channels = {"output": self.outputs}
        self._tripped: dict[int, int] = dict.fromkeys(self.outputs, 0)

    def instrument_error(self, error: int) -> str | None:
        return f"execution error {error} ({EXECUTION_ERRORS.get(error, 'unknown')})" if error else None

    def check_model(self) -> str:
        """The identity, if it names this driver's model; else InstrumentError (a wrong `Model`)."""
        (identity,) = self.read(self.identity)
        fields = [field.strip().upper() for field in identity.split(",")]
        if len(fields) < 2 or fields[1] != self.model.name.upper():
            raise InstrumentError(f"the instrument is {shown(identity)}, not an Aim-TTi {self.model.name}")
        return identity

    def read_output(self, output: int) -> OutputStatus:
        """Set-points, read-backs, on/off, protection levels and limit events of one output, in
        one message."""
        values = self.read(*(quantity(output) for quantity in self.STATUS))
        self._tripped[output] |= values[-1] & sum(TRIPS)
        return OutputStatus(*values, trips=self.trips(output))

    def trips(self, output: int) -> tuple[str, ...]:
        """The protections of `output` that tripped since the last reset, by name."""
        return tuple(name for bit, name in TRIPS.items() if self._tripped[output] & bit)

    def set_output(self, output: int, on: bool) -> bool:
        """Switch the output on or off; returns its state read back (off again if it trips at
        once). Switching on clears the trips kept for that output: the limit events from
        before are read and dropped first, those of the switching-on are kept."""
        switch = self.on(output)
        with self.link.lock:
            if on:
                self.read(self.limit_events(output))
            self.send(switch.command(bool(on)))
            state, events = self.read(switch, self.limit_events(output))
            if on:
                self._tripped[output] = 0
            self._tripped[output] |= events & sum(TRIPS)
        return state

    def reset_trips(self) -> None:
        """Clear every trip condition (TRIPRST); the outputs that tripped stay off. The limit
        events from before the reset are read and dropped."""
        with self.link.lock:
            self.read(*(self.limit_events(n) for n in self.outputs))
            self.send("TRIPRST")
            self._tripped = dict.fromkeys(self.outputs, 0)
