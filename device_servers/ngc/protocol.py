"""ESO NGC CCD controller: the commands its control server takes and the database it answers from.

On the controller's host, `ngcbCmd <command> <args>` sends a command to the NGC control server
and prints its answer; `dbRead "<alias>ngcircon_ircam1:<attribute>"` reads the server's online
database. tangolab's NGC link carries the same words as lines over TCP, one request a line:

    start | stop | abort | online | standby | off | reset | exit
    status [PAR]                       -> OK <state> | OK <value of PAR>
    setup PAR VALUE [PAR VALUE ...]    -> OK
    cldc 0 enable | cldc 0 disable     clock and bias voltages on / off
    seq 0 start | seq 0 stop           the sequencer (the CCD's clocking)
    seq trigger
    dbRead <attribute>                 -> OK <attribute> = <value>
    fetch FRAME OFFSET LENGTH          -> OK #<n><length><bytes>   (tangolab's frame transfer)

and every refusal is one line `NOK <reason>`. The controller writes its frames as files on its
own host; tangolab fetches each frame's pixels instead (little-endian uint16, row after row) in
pieces of at most `FETCH_MAX` bytes, an IEEE 488.2 definite-length block each, so that a status
poll or an abort passes between two pieces.

States (system.stateName): OFF (the server stopped: `exit`) -> LOADED (software loaded: `off`,
`reset`) -> STANDBY -> ONLINE; an exposure (`start`) needs ONLINE, the clocks enabled and the
sequencer running. A run is DET.NDIT frames of DET.SEQ1.DIT seconds, each read out at the
speed of DET.READ.CURNAME.
"""

from __future__ import annotations

from ..core.framing import BlockLines

#: Replies are lines, a fetch's pixels a definite-length block within its line.
REPLIES = BlockLines(b"\n", max_length=1 << 22)
#: The most bytes one fetch sends.
FETCH_MAX = 1 << 18
STATES = ("OFF", "LOADED", "STANDBY", "ONLINE")
#: Exposure states (exposure.expStatusName).
EXPOSURE_STATES = ("idle", "integrating", "reading", "success", "aborted", "failed")
#: Seconds to read one pixel at each read-out speed (DET.READ.CURNAME).
READ_MODES = {"slow": 4e-6, "fast": 1e-6}
#: The online database attributes an exposure is followed by, and those a poll reads.
EXPOSURE = ("system.subStateName", "exposure.expStatusName", "exposure.countDown", "exposure.frameCount")
DATABASE = ("system.stateName", "cldc_0.statusName", "seq_0.statusName", "exposure.runNo", *EXPOSURE)


def parameter_problem(name: str, value: str) -> str | None:
    """Why `value` is no value of the setup parameter `name` (None: it is one)."""
    rule = PARAMETERS.get(name)
    if rule is None:
        return f"unknown parameter {name} (known: {', '.join(PARAMETERS)})"
    kind, low, high = rule
    if kind is str:
        return None if value in READ_MODES else f"{name} must be one of {', '.join(READ_MODES)}, not {value!r}"
    try:
        number = kind(value)
    except ValueError:
        return f"{name} must be {'a whole number' if kind is int else 'a number'}, not {value!r}"
    if not low <= number <= high:
        return f"{name} must be {low:g} to {high:g}, not {value}"
    return None


#: Setup parameters: type and range (a read mode: one of READ_MODES).
PARAMETERS: dict[str, tuple[type, float, float]] = {
    "DET.SEQ1.DIT": (float, 0.0, 3600.0),
    "DET.NDIT": (int, 1, 9999),
    "DET.READ.CURNAME": (str, 0, 0),
    "DET.WIN1.NX": (int, 1, 8192),
    "DET.WIN1.NY": (int, 1, 8192),
    "DET.WIN1.OVSCX": (int, 0, 1024),
}


def request(command: str, *arguments: object) -> bytes:
    return " ".join([command, *(str(argument) for argument in arguments)]).encode("ascii") + b"\n"


def database_value(reply_text: str, attribute: str) -> str:
    """The value in `<attribute> = <value>`; ValueError when the reply names another."""
    name, equals, value = reply_text.partition("=")
    if not equals or name.strip() != attribute:
        raise ValueError(f"{reply_text!r} is no value of {attribute}")
    return value.strip()


#: The control server's commands (the first word of a request).
MESSAGES = {word: word for word in (
    "start", "stop", "abort", "online", "standby", "off", "reset", "exit", "status", "setup", "cldc", "seq",
    "dbRead", "fetch",
)}


def message_id(frame: bytes) -> str | None:
    """The command of a request line."""
    words = frame.split()
    word = words[0].decode("ascii") if words else ""
    return word if word in MESSAGES else None
