"""The Honeywell Minitrend recorder's Modbus TCP register map (QX / GR): what the pens are where.

Imported by the driver (driver.py) and the simulator (simulators/minitrend.py); no I/O here.

    input registers 0x18C0 + 2i   pen i's value, IEEE 754 float32, high word first (l/min here)
    input registers 0x1980 + i    pen i's six alarms, bits 0 to 5 of a uint16

A request is the MBAP header (transaction id, protocol 0, length, unit) and the PDU: function
4 (read input registers), first register, count: `0001 0000 0006 01 04 18C0 0002` reads pen 0.
"""

from __future__ import annotations

import struct
from collections.abc import Hashable

#: The recorder's Modbus TCP port and unit.
TCP_PORT = 502
UNIT = 1
READ_INPUT_REGISTERS = 4
PEN_VALUES = 0x18C0
PEN_ALARMS = 0x1980
#: Pens the register map holds (as the original systems read it).
PENS = range(16)
#: The six alarms of a pen, as bits of its alarm register.
ALARM_BITS = 0x3F

#: The requests the driver sends: (function, first register of the block read).
MESSAGES = {
    "READ_PEN_VALUES": (READ_INPUT_REGISTERS, PEN_VALUES),
    "READ_PEN_ALARMS": (READ_INPUT_REGISTERS, PEN_ALARMS),
}


def message_id(frame: bytes) -> Hashable | None:
    """(function, block) of a Modbus TCP request that reads pen values or alarms, else None."""
    if len(frame) != 12:
        return None
    function, address, count = struct.unpack(">BHH", frame[7:12])
    for base, size in ((PEN_VALUES, 2 * len(PENS)), (PEN_ALARMS, len(PENS))):
        if base <= address and address + count <= base + size:
            return function, base
    return None
