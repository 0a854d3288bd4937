"""Text instruments (SCPI and its relatives): each quantity declared on one line, the queries of a
poll joined into one message whose answers are counted, every setting written then read back.

    class Supply(TextInstrument):
        channels = {"output": (1, 2)}
        voltage = Quantity("V{output}?", "V{output} {:.3f}", answer="V{output} {}", limits=Limits(0, 35, "V"))
        on = Quantity("OP{output}?", "OP{output} {:d}", flag)

    supply.read(supply.voltage(1), supply.on(1))    # one message `V1?;OP1?` -> [12.0, True]
    supply.write(supply.voltage(1), 12.0)           # `V1 12.000;V1?` -> 12.0, the value read back

A device attribute writes a quantity with `writes=(Supply.voltage.set, 1)`.

What fails says how (core/errors.py): a value outside the limits or a channel the instrument lacks
is a `RejectedValue`, and nothing is sent; the instrument's own refusal (a NAK in place of an
answer, an error its error query reports, a read-back that is not the value written) is an
`InstrumentError` in its words, and the link stays up; a reply that is no reply of the protocol
(not text, an answer that does not parse, a wrong number of answers) is a `GarbledReply`, and
the link reconnects.

The parsers of answers and `Headers` (which command of the manual a header spells) live in
`core.spelling`, which protocol modules and simulators share without the driver side.
"""

from __future__ import annotations

import math
import string
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, ClassVar

from .errors import GarbledReply, InstrumentError, RejectedValue, shown
from .limits import Limits
from .spelling import flag, integer, number, on_off, parsed, scpi_error, word

__all__ = [
    "Quantity", "TextInstrument", "flag", "integer", "number", "on_off", "parsed", "scpi_error",
    "text", "word",
]

if TYPE_CHECKING:
    from .link import Link

def text(value: float) -> str:
    """A number as sent when the command does not say: up to six decimals, no trailing zeros."""
    return f"{value:.6f}".rstrip("0").rstrip(".")


#: What a quantity accepts: a range, a set of words, or either as a function of the instrument
#: and the channels (`lambda psu, output: psu.model.voltage`).
Accepts = Limits | Collection[str] | Callable[..., Limits | Collection[str]]


# -- quantities -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Quantity:
    """One quantity of a text instrument, on one line.

    `query` asks for it and `setting` sets it: templates whose named fields are channels
    (`LOOP {loop}:SETP?`) and whose `{}` is the value (`{:.3f}` with a format); a mapping
    value -> command for a quantity set by several commands (`{True: "CONT", False: "STOP"}`).
    `answer` frames the value in the reply (`V{output} {}`, `{}K`); `parse` reads it (a number
    unless `limits` are words); `limits` is what a setting accepts, checked before sending.
    `fields` is how many answer separators the answer itself holds, plus one.
    """

    query: str | None
    setting: str | Mapping[Any, str] | None = None
    parse: Callable[[str], Any] | None = None
    limits: Accepts | None = None
    answer: str = "{}"
    fields: int = 1
    name: str = field(default="", compare=False)

    def __set_name__(self, owner: type, name: str) -> None:
        object.__setattr__(self, "name", name)

    def __call__(self, *channels: Any, **named: Any) -> Request:
        """This quantity on a channel: `setpoint(1)` or `setpoint(loop=1)`."""
        names = self.channel_names()
        if len(channels) > len(names):
            raise TypeError(f"{self.name} has channels {names}, not {len(channels)}")
        return Request(self, {**dict(zip(names, channels)), **named})

    def channel_names(self) -> tuple[str, ...]:
        """The channel fields of the templates, in order (`("loop",)`)."""
        templates = [self.query or "", *(self.setting.values() if isinstance(self.setting, Mapping)
                                         else [self.setting or ""])]
        found: dict[str, None] = {}
        for template in templates:
            found.update((name, None) for _, name, _, _ in string.Formatter().parse(template) if name)
        return tuple(found)

    @property
    def set(self) -> Callable[..., Any]:
        """The operation a device attribute `writes=`: `set(instrument, *channels, value)` writes
        the value and returns it as read back."""
        quantity = self

        def write(instrument: TextInstrument, *arguments: Any) -> Any:
            *channels, value = arguments
            return instrument.write(quantity(*channels), value)

        write.__name__ = f"set_{self.name}"
        return write

    @property
    def label(self) -> str:
        return self.name.replace("_", " ")


@dataclass(frozen=True)
class Request:
    """A quantity on its channels: what one query or one setting of a message is."""

    quantity: Quantity
    where: Mapping[str, Any]

    @property
    def query(self) -> str:
        if self.quantity.query is None:
            raise TypeError(f"{self.quantity.name} cannot be read")
        return self.quantity.query.format(**self.where)

    def command(self, value: Any) -> str:
        """The setting that writes `value` (already checked)."""
        setting = self.quantity.setting
        if setting is None:
            raise TypeError(f"{self.quantity.name} cannot be set")
        if isinstance(setting, Mapping):
            return setting[value].format(**self.where)
        spec = next((spec for literal, name, spec, _ in string.Formatter().parse(setting) if name == ""), "")
        shown_value = text(value) if isinstance(value, float) and not spec else value
        return setting.format(shown_value, **self.where)

    @property
    def what(self) -> str:
        where = ", ".join(f"{name} {value}" for name, value in self.where.items())
        return f"{self.quantity.label}{f' ({where})' if where else ''}"

    def value(self, answer: str, message: str, accepts: Limits | Collection[str] | None = None) -> Any:
        """The value in one answer (words among `accepts` unless the quantity says how to parse
        it); GarbledReply for an answer the protocol does not allow."""
        parse = self.quantity.parse or (word(accepts) if accepts is not None and not isinstance(accepts, Limits)
                                        else number)
        return parsed(lambda text: parse(self._unframed(text)), answer, f"{self.what} (to {shown(message)})")

    def agrees(self, read_back: Any, sent: Any, answer: str, command: str) -> bool:
        """Whether the read-back is the value sent, to the digits both carry."""
        if not isinstance(sent, float) or isinstance(read_back, bool):
            return read_back == sent
        sent_text = command.rsplit(" ", 1)[-1]
        return math.isclose(read_back, sent, abs_tol=_resolution(self._unframed(answer)) / 2
                            + _resolution(sent_text) / 2 + 1e-12)

    def _unframed(self, answer: str) -> str:
        before, _, after = self.quantity.answer.format("\0", **self.where).partition("\0")
        core = answer.strip()
        if not (core.upper().startswith(before.upper()) and core.upper().endswith(after.upper())):
            raise ValueError(f"expected {self.quantity.answer.format('<value>', **self.where)!r}")
        return core[len(before): len(core) - len(after)]


def _resolution(figure: str) -> float:
    """The weight of the last digit written: `13.20` -> 0.01, `2.000000E-07` -> 1e-13."""
    try:
        exponent = Decimal(figure.strip()).as_tuple().exponent
    except InvalidOperation:
        return 0.0
    return 10.0 ** exponent if isinstance(exponent, int) else 0.0


# -- the instrument ---------------------------------------------------------------------------


class TextInstrument:
    """An instrument that talks in lines of text over a `Link`; a subclass declares its
    `Quantity`s and says how its messages are joined and how it reports a refusal."""

    #: Names the instrument in errors.
    model: ClassVar[str] = "instrument"
    #: Joins the commands of one message; None: one command a line (the instrument cannot join).
    separator: ClassVar[str | None] = ";"
    #: Joins the answers in a reply.
    answer_separator: ClassVar[str] = ";"
    #: SCPI's short paths: a command in the same node as the one before it omits the node
    #: (`LOOP 1:SETP?;TYPE?`), any other starts from the root (`;:CONT?`).
    relative_paths: ClassVar[bool] = False
    #: What the instrument answers in place of a command it refuses (the Cryo-Con's `NAK`).
    refusal: ClassVar[str | None] = None
    #: What tells whether the instrument took a setting, asked after it; `instrument_error` reads it.
    error_query: ClassVar[Quantity | None] = None
    #: Channel name -> the channels the instrument has (an instance may set its own).
    channels: Mapping[str, Collection[Any]] = {}

    def __init__(self, link: Link) -> None:
        self.link = link

    def connect(self) -> None:
        """Open the link (from a script; a device opens its own)."""
        self.link.open()

    def close(self) -> None:
        self.link.close()

    def instrument_error(self, error: Any) -> str | None:
        """The instrument's words for the error `error_query` read; None when there is none."""
        return None

    # -- operations -----------------------------------------------------------------------------

    def read(self, *requests: Request | Quantity, after: Sequence[str] = ()) -> list[Any]:
        """The values of `requests`, asked in one message (after the commands `after`)."""
        asked = [self._checked(request) for request in requests]
        message = [(command, 0) for command in after] + [(r.query, r.quantity.fields) for r in asked]
        answers, sent = self.exchange(message)
        return [request.value(answer, sent, self._limits(request)) for request, answer in zip(asked, answers)]

    def write(self, request: Request | Quantity, value: Any) -> Any:
        """Set one quantity and return it as read back (see `write_all`)."""
        return self.write_all([(request, value)])[0]

    def write_all(self, settings: Iterable[tuple[Request | Quantity, Any]]) -> list[Any]:
        """Set quantities in one message, each followed by its query (and the error query):
        the values read back, or `InstrumentError` when the instrument refused or kept another
        value. Values are checked against the limits before anything is sent."""
        checked = [(request, self._accepted(request, value))
                   for request, value in ((self._checked(r), v) for r, v in settings)]
        commands = [request.command(value) for request, value in checked]
        answers, sent = self.exchange([(command, 0) for command in commands]
                                      + [(request.query, request.quantity.fields) for request, _ in checked]
                                      + self._error_check())
        self._raise_instrument_error(answers[len(checked):], commands)
        read_back = []
        for (request, value), command, answer in zip(checked, commands, answers):
            got = request.value(answer, sent, self._limits(request))
            if not request.agrees(got, value, answer, command):
                raise InstrumentError(f"the {self.model} did not take {command!r}: it reads back {shown(answer.strip())}")
            read_back.append(got)
        return read_back

    def send(self, *commands: str) -> None:
        """Send commands that answer nothing, checked with the error query when there is one."""
        answers, _ = self.exchange([(command, 0) for command in commands] + self._error_check())
        self._raise_instrument_error(answers, commands)

    def ask(self, *queries: str) -> list[str]:
        """The answers to plain queries, one message, counted."""
        return self.exchange([(query, 1) for query in queries])[0]

    def exchange(self, commands: Sequence[tuple[str, int]]) -> tuple[list[str], str]:
        """Send `commands` (text, how many answer fields each gives: 0 for none) as one message
        and return each answer (its fields joined again) with the message as sent."""
        if self.separator is None:
            return self._one_by_one(commands)
        message = self._join([command for command, _ in commands])
        reply = self._transaction(message, reply=True)
        fields = [part.strip() for part in reply.split(self.answer_separator)]
        expected = sum(count for _, count in commands)
        if len(fields) == expected + 1 and not fields[-1]:
            fields.pop()  # a reply may end with the separator
        if self.refusal is not None and self.refusal in fields:
            raise InstrumentError(f"the {self.model} refused {shown(message, 80)}: it answered {shown(reply, 80)}")
        if len(fields) != expected:
            raise GarbledReply(f"{len(fields)} answers to {shown(message, 80)} where {expected} belong: {shown(reply)}")
        answers = []
        for _, count in commands:
            if count:
                answers.append(self.answer_separator.join(fields[:count]))
                del fields[:count]
        return answers, message

    # -- internals --------------------------------------------------------------------------------

    def _checked(self, request: Request | Quantity) -> Request:
        request = request() if isinstance(request, Quantity) else request
        for name, value in request.where.items():
            allowed = self.channels.get(name)
            if allowed is not None and value not in allowed:
                raise RejectedValue(f"{name} {value!r} does not exist: {name}s are {', '.join(map(str, allowed))}")
        return request

    def _limits(self, request: Request) -> Limits | Collection[str] | None:
        limits = request.quantity.limits
        return limits(self, **request.where) if callable(limits) and not isinstance(limits, Limits) else limits

    def _accepted(self, request: Request, value: Any) -> Any:
        limits = self._limits(request)
        if isinstance(limits, Limits):
            return limits.check(request.what, value)
        if limits is not None:
            choice = str(value).strip().upper() if isinstance(value, str) else None
            if choice not in limits:
                raise RejectedValue(f"{request.what} {value!r} is not one of {', '.join(limits)}")
            return choice
        setting = request.quantity.setting
        if isinstance(setting, Mapping) and value not in setting:
            raise RejectedValue(f"{request.what} {value!r} is not one of {', '.join(map(str, setting))}")
        return value

    def _error_check(self) -> list[tuple[str, int]]:
        return [(self.error_query().query, self.error_query.fields)] if self.error_query else []

    def _raise_instrument_error(self, answers: Sequence[str], commands: Sequence[str]) -> None:
        if not self.error_query:
            return
        sent = "; ".join(commands)
        if words := self.instrument_error(self.error_query().value(answers[-1], sent)):
            raise InstrumentError(f"the {self.model} refused {shown(sent, 80)}: {words}")

    def _join(self, commands: Sequence[str]) -> str:
        if not self.relative_paths:
            return self.separator.join(commands)
        parts: list[str] = []
        node = ""
        for command in commands:
            path, _, leaf = command.rpartition(":")
            if parts and path == node:
                parts.append(leaf)
            else:
                parts.append(f":{command}" if parts and not command.startswith(":") else command)
            node = path
        return self.separator.join(parts)

    def _one_by_one(self, commands: Sequence[tuple[str, int]]) -> tuple[list[str], str]:
        answers = []
        with self.link.lock:
            for command, count in commands:
                reply = self._transaction(command, reply=count > 0)
                if count:
                    answers.append(reply.strip())
        return answers, " ".join(command for command, _ in commands)

    def _transaction(self, message: str, *, reply: bool) -> str:
        payload = self.link.transaction(message.encode("ascii") + self.link.write_terminator, reply=reply)
        if payload is None:
            return ""
        try:
            return payload.decode("ascii")
        except UnicodeDecodeError:
            raise GarbledReply(f"the reply to {shown(message, 60)} is not text: {shown(payload)}") from None
