"""Every message of an instrument's protocol table is written out, as literal bytes, in its tests.

An instrument's protocol lives in `device_servers/<kind>/protocol.py` (or `<model>_protocol.py`
where one folder serves several models): tables and encoding only, no link and no Tango,
imported by both the driver and the simulator. It declares

    MESSAGES: Mapping[str, Hashable]              every message driver or simulator uses: name -> id
    def message_id(frame: bytes) -> Hashable | None   the id of one whole frame, None if it is none

and its tests (`tests/unit/test_<kind or model>*protocol*.py`) state frames as bytes literals,
`b"..."` or `bytes.fromhex("...")`, taken from the manual. Since driver and simulator share the
table, only those literals keep the table honest: this test fails when a message of the table
appears in no literal of its tests.
"""

from __future__ import annotations

import ast
import contextlib
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROTOCOLS = sorted(
    path for path in (ROOT / "device_servers").glob("*/*protocol.py")
    if path.name == "protocol.py" or path.name.endswith("_protocol.py")
)


def _name(path: Path) -> str:
    """What the protocol's test files are named after: the folder, or the model."""
    return path.parent.name if path.name == "protocol.py" else path.name.removesuffix("_protocol.py")


def literal_frames(test_file: Path) -> list[bytes]:
    """Every bytes literal of a test module: b"..." constants and bytes.fromhex("...") calls."""
    frames = []
    for node in ast.walk(ast.parse(test_file.read_text())):
        if isinstance(node, ast.Constant) and isinstance(node.value, bytes):
            frames.append(node.value)
        elif (
            isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "fromhex"
            and isinstance(node.func.value, ast.Name) and node.func.value.id == "bytes"
            and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
        ):
            frames.append(bytes.fromhex(node.args[0].value))
    return frames


@pytest.mark.parametrize("path", PROTOCOLS, ids=[str(p.relative_to(ROOT)) for p in PROTOCOLS])
def test_every_message_of_the_table_appears_as_literal_bytes_in_its_tests(path: Path) -> None:
    module = importlib.import_module(".".join(path.relative_to(ROOT).with_suffix("").parts))
    test_files = sorted((ROOT / "tests" / "unit").glob(f"test_{_name(path)}*protocol*.py"))
    assert test_files, f"{path.name} of {path.parent.name} has no test_{_name(path)}*protocol*.py"
    seen = set()
    for test_file in test_files:
        for frame in literal_frames(test_file):
            with contextlib.suppress(Exception):  # a literal that is no frame of this protocol
                seen.add(module.message_id(frame))
    missing = sorted(name for name, ident in module.MESSAGES.items() if ident not in seen)
    assert not missing, f"no literal frame in {[f.name for f in test_files]} for: {', '.join(missing)}"
