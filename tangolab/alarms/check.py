"""Rules checked before they run: read from a file with their line numbers, and refused when they
can never fire (a contradiction, a level outside the attribute's range, a constant false).

A rule can never fire when its expression is a comparison, or an `and` of comparisons, of
attributes with numbers that no value satisfies: `x > 5 and x < 3`, or `setpoint1 > 2000` where
the attribute's range (its `min_value`/`max_value`) ends at 1000. Anything subtler is left to
`tangolab alarms replay`, which runs the rules over the archived history.
"""

from __future__ import annotations

import ast
import json
import math
import operator
from dataclasses import dataclass
from pathlib import Path

from .rules import Rule, Unevaluable, expression_tree

FLIPPED = {ast.Lt: ast.Gt, ast.LtE: ast.GtE, ast.Gt: ast.Lt, ast.GtE: ast.LtE, ast.Eq: ast.Eq}


def rule_lines(path: Path) -> list[tuple[int, str]]:
    """(line number, text) of each rule of a file: a text file of rule lines, or a lab file (JSON)
    whose `tangolab.alarms.rules` holds them (numbered where each appears in the file)."""
    text = path.read_text()
    if path.suffix != ".json":
        return [(number, line) for number, line in enumerate(text.splitlines(), 1)
                if line.strip() and not line.lstrip().startswith("#")]
    rules = json.loads(text).get("tangolab", {}).get("alarms", {}).get("rules", [])
    lines, found, start = text.splitlines(), [], 0
    for rule in rules:
        quoted = json.dumps(rule)
        number = next((n for n in range(start, len(lines)) if quoted in lines[n]), None)
        if number is None:
            number = start - 1  # written another way (escapes): said at the last place known
        found.append((number + 1, rule))
        start = number + 1
    return found


@dataclass
class Interval:
    low: float = -math.inf
    high: float = math.inf
    low_open: bool = False
    high_open: bool = False

    def limit(self, op: type, level: float) -> None:
        """Narrow to the values x with `x op level`."""
        if op in (ast.Gt, ast.GtE, ast.Eq) and (level > self.low or level == self.low and op is ast.Gt):
            self.low, self.low_open = level, op is ast.Gt
        if op in (ast.Lt, ast.LtE, ast.Eq) and (level < self.high or level == self.high and op is ast.Lt):
            self.high, self.high_open = level, op is ast.Lt

    @property
    def empty(self) -> bool:
        return self.low > self.high or self.low == self.high and (self.low_open or self.high_open)


def never_fires(rule: Rule, ranges: dict[str, tuple[float, float]] | None = None) -> str | None:
    """Why the rule's condition can never be true, or None when it may be (as far as this can tell).

    `ranges`: attribute name -> (min_value, max_value) where the attribute declares them."""
    ranges = ranges or {}
    if not rule.sources:
        try:
            holds = bool(rule.condition(_NoSources(), 0.0))
        except Unevaluable as exc:
            return f"it reads no attribute and cannot be evaluated: {exc}"
        return None if holds else "it reads no attribute and is always false"
    sources: list[str] = []
    tree, placeholders = expression_tree(rule.expression, sources)
    body = tree.body
    terms = body.values if isinstance(body, ast.BoolOp) and isinstance(body.op, ast.And) else [body]
    intervals: dict[int, Interval] = {}
    for term in terms:
        bound = _bound(term, placeholders)
        if bound is None:
            continue
        index, op, level = bound
        if index not in intervals:
            low, high = ranges.get(sources[index], (-math.inf, math.inf))
            intervals[index] = Interval(low, high)
        intervals[index].limit(op, level)
        if intervals[index].empty:
            declared = ranges.get(sources[index])
            within = f" within its range {declared[0]:g} … {declared[1]:g}" if declared else ""
            return f"no value of {sources[index]}{within} satisfies {_shown(rule.expression)}"
    return None


def _bound(term: ast.AST, placeholders: dict[str, int]) -> tuple[int, type, float] | None:
    """(source index, comparison, number) of a term `attr OP number` or `number OP attr`."""
    if not (isinstance(term, ast.Compare) and len(term.ops) == 1 and type(term.ops[0]) in FLIPPED):
        return None
    left, right, op = term.left, term.comparators[0], type(term.ops[0])
    if isinstance(left, ast.Name) and left.id in placeholders and (number := _number(right)) is not None:
        return placeholders[left.id], op, number
    if isinstance(right, ast.Name) and right.id in placeholders and (number := _number(left)) is not None:
        return placeholders[right.id], FLIPPED[op], number
    return None


def _number(node: ast.AST) -> float | None:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        inner = _number(node.operand)
        return None if inner is None else operator.neg(inner)
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return float(node.value)
    return None


def _shown(expression: str) -> str:
    return expression if len(expression) <= 120 else expression[:117] + "..."


class _NoSources:
    def value(self, index: int) -> None:
        raise Unevaluable("no attribute")

    quality = frozen = value
