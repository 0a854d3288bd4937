"""Alarm rules as text, one a line, parsed into whitelisted Python closures (never `eval`).

    cryostat_warm: lab/cryocon/1/temperatureA > 250 for 10 s; severity=alarm; deadband=2; message=cryostat warming
    vacuum_lost: lab/gauge/1/pressure > 1e-4; suppressed_by=lab/tec/1/State == OFF; latch
    cryo_frozen: frozen(lab/cryocon/1/temperatureA, 0.001, 120); severity=warning

`NAME: EXPRESSION [for N s]` then options separated by `;`. The expression is Python's syntax
for arithmetic, comparisons, `and`/`or`/`not`; attributes are written by their full names
(`domain/family/member/attribute`, or `tango://host:port/...`), a device's state is its `State`
attribute compared with a state's name (`ON`, `FAULT`, ...), `quality(ATTR)` is the quality's
name (`VALID`, `INVALID`, `ALARM`, ...), and `frozen(ATTR, BAND, SECONDS)` holds while the
attribute, VALID, has not moved by more than BAND for SECONDS. `abs`, `min` and `max` are there
too. Options: `severity` (critical, alarm, warning, info), `message`, `on_delay` (or the
trailing `for N s`), `off_delay`, `deadband` (a comparison clears only that far back across
its level), `latch` (stays until acknowledged), `suppressed_by` (an expression: while it is
true the alarm is suppressed by design).

Evaluation is lazy and short-circuits as Python's: a value that is not known (no value yet, a
failed source, an INVALID reading) or an arithmetic failure raises `Unevaluable` with the reason,
so that a rule that cannot be evaluated is said as such, never taken as false.
"""

from __future__ import annotations

import ast
import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

SEVERITIES = ("info", "warning", "alarm", "critical")
STATES = ("ON", "OFF", "CLOSE", "OPEN", "INSERT", "EXTRACT", "MOVING", "STANDBY", "FAULT", "INIT", "RUNNING",
          "ALARM", "DISABLE", "UNKNOWN")
QUALITIES = ("VALID", "INVALID", "ALARM", "CHANGING", "WARNING")
WORDS = frozenset(STATES + QUALITIES)  # bare names that stand for themselves, as text

ATTRIBUTE = re.compile(
    r"(?<![\w/.])(?:tango://[\w.\-]+:\d+/)?[A-Za-z0-9_.\-]+/[A-Za-z0-9_.\-]+/[A-Za-z0-9_.\-]+/[A-Za-z_]\w*(?:#dbase=no)?(?![\w/#])"
)
FOR_DELAY = re.compile(r"\s+for\s+(\d+(?:\.\d*)?|\.\d+)\s*s\s*$")
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
OPTIONS = {"severity", "message", "on_delay", "off_delay", "deadband", "latch", "suppressed_by"}


class RuleError(ValueError):
    """A rule that cannot be used, with the reason a person can act on."""


class Unevaluable(Exception):
    """The rule cannot be evaluated now; the message says why."""


class Context(Protocol):
    """What a compiled expression reads: the engine's sources, at one moment."""

    def value(self, index: int) -> Any: ...

    def quality(self, index: int) -> str: ...

    def frozen(self, index: int, band: float, seconds: float) -> bool: ...


Compiled = Callable[[Context, float], Any]  # (context, deadband bias) -> value


@dataclass
class Rule:
    name: str
    expression: str
    sources: tuple[str, ...]  # attribute names the expressions read, in the order of `value(index)`
    condition: Compiled
    severity: str = "alarm"
    message: str = ""
    on_delay: float = 0.0
    off_delay: float = 0.0
    deadband: float = 0.0
    latch: bool = False
    suppression: Compiled | None = None
    suppressed_by: str = ""
    line: str = ""  # the text it was parsed from
    frozen_watches: tuple[tuple[int, float, float], ...] = field(default=())


def parse_rule(line: str) -> Rule:
    """A rule from its line; RuleError says what is wrong."""
    text = line.strip()
    name, colon, rest = text.partition(":")
    name = name.strip()
    if not colon or not NAME.match(name):
        raise RuleError("a rule starts with its name and a colon (NAME: EXPRESSION; option=value ...); "
                        "a name is letters, digits and _")
    expression, *options = (part.strip() for part in rest.split(";"))
    if not expression:
        raise RuleError(f"{name}: no expression after the colon")
    rule: dict[str, Any] = {}
    if match := FOR_DELAY.search(expression):
        rule["on_delay"] = float(match.group(1))
        expression = expression[: match.start()].strip()
    for option in options:
        if not option:
            continue
        key, equals, value = (part.strip() for part in option.partition("="))
        if key not in OPTIONS:
            raise RuleError(f"{name}: unknown option {key!r}; options are {', '.join(sorted(OPTIONS))}")
        if key == "latch":
            rule["latch"] = value.lower() in ("", "true", "yes", "1")
        elif not equals or not value:
            raise RuleError(f"{name}: option {key} needs a value ({key}=...)")
        elif key == "severity":
            if value.lower() not in SEVERITIES:
                raise RuleError(f"{name}: severity {value!r} is not one of {', '.join(SEVERITIES)}")
            rule["severity"] = value.lower()
        elif key in ("on_delay", "off_delay", "deadband"):
            number = _number(value.removesuffix("s").strip())
            if number is None or number < 0:
                raise RuleError(f"{name}: {key} must be a number of at least 0, got {value!r}")
            rule[key] = number
        else:
            rule[key] = value
    compiler = _Compiler(name)
    condition = compiler.compile(expression)
    if "suppressed_by" in rule:
        rule["suppression"] = compiler.compile(rule["suppressed_by"])
    return Rule(name, expression, tuple(compiler.sources), condition, line=text,
                frozen_watches=tuple(compiler.frozen), **rule)


def parse_rules(lines: list[str]) -> tuple[list[Rule], list[tuple[int, str]]]:
    """The rules of many lines (blank and `#` lines skipped), and (line number, reason) of each refused
    one; a name used twice is refused the second time."""
    rules, refused, names = [], [], set()
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            rule = parse_rule(line)
        except RuleError as exc:
            refused.append((number, str(exc)))
            continue
        if rule.name.lower() in names:
            refused.append((number, f"{rule.name}: a rule of that name comes earlier"))
            continue
        names.add(rule.name.lower())
        rules.append(rule)
    return rules, refused


def _number(text: str) -> float | None:
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


# -- the expression compiler: a whitelist of Python's syntax, into closures -------------------------

BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
          ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow}
COMPARE = {ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge,
           ast.Eq: operator.eq, ast.NotEq: operator.ne}
#: How a deadband bias moves the right side of a comparison so that it stays true: +1 up, -1 down
BIAS_SIDE = {ast.Lt: 1, ast.LtE: 1, ast.Gt: -1, ast.GtE: -1}
FUNCTIONS = {"abs": abs, "min": min, "max": max}
PLACEHOLDER = "_source_{}"


def expression_tree(text: str, sources: list[str]) -> tuple[ast.Expression, dict[str, int]]:
    """Python's tree of an expression, its attributes replaced by placeholder names (appended to
    `sources` when new), and placeholder -> index in `sources`; SyntaxError if it is not Python."""
    placeholders: dict[str, int] = {}

    def swap(match: re.Match[str]) -> str:
        name = match.group(0)
        if name not in sources:
            sources.append(name)
        index = sources.index(name)
        placeholders[PLACEHOLDER.format(index)] = index
        return PLACEHOLDER.format(index)

    return ast.parse(ATTRIBUTE.sub(swap, text), mode="eval"), placeholders


class _Compiler:
    def __init__(self, rule: str) -> None:
        self.rule = rule
        self.sources: list[str] = []
        self.frozen: list[tuple[int, float, float]] = []

    def compile(self, text: str) -> Compiled:
        try:
            tree, placeholders = expression_tree(text, self.sources)
        except SyntaxError as exc:
            raise RuleError(f"{self.rule}: syntax error in {text!r}: {exc.msg}") from None
        return self._node(tree.body, placeholders)

    def _refuse(self, what: str) -> RuleError:
        return RuleError(f"{self.rule}: {what}")

    def _node(self, node: ast.AST, names: dict[str, int]) -> Compiled:
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, str, bool)):
            constant = node.value
            return lambda ctx, bias: constant
        if isinstance(node, ast.Name):
            if node.id in names:
                index = names[node.id]
                return lambda ctx, bias: ctx.value(index)
            if node.id in WORDS:
                word = node.id
                return lambda ctx, bias: word
            if node.id in ("True", "False"):
                truth = node.id == "True"
                return lambda ctx, bias: truth
            raise self._refuse(f"unknown name {node.id!r}: attributes are domain/family/member/attribute, "
                               f"words are {', '.join(sorted(WORDS))}")
        if isinstance(node, ast.BoolOp):
            parts = [self._node(value, names) for value in node.values]
            if isinstance(node.op, ast.And):
                return lambda ctx, bias: all(bool(part(ctx, bias)) for part in parts)
            return lambda ctx, bias: any(bool(part(ctx, bias)) for part in parts)
        if isinstance(node, ast.UnaryOp):
            operand = self._node(node.operand, names)
            if isinstance(node.op, ast.Not):
                return lambda ctx, bias: not operand(ctx, -bias)
            if isinstance(node.op, ast.USub):
                return lambda ctx, bias: _arithmetic(operator.neg, operand(ctx, bias))
            if isinstance(node.op, ast.UAdd):
                return operand
        if isinstance(node, ast.BinOp) and type(node.op) in BINARY:
            left, right, op = self._node(node.left, names), self._node(node.right, names), BINARY[type(node.op)]
            return lambda ctx, bias: _arithmetic(op, left(ctx, bias), right(ctx, bias))
        if isinstance(node, ast.Compare) and all(type(op) in COMPARE for op in node.ops):
            return self._compare(node, names)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
            return self._call(node, names)
        shown = ast.unparse(node).replace("_source_", "source ")
        raise self._refuse(f"{shown!r} is not allowed: rules use numbers, attributes, arithmetic, comparisons, "
                           "and/or/not, abs/min/max, quality(ATTR) and frozen(ATTR, BAND, SECONDS)")

    def _compare(self, node: ast.Compare, names: dict[str, int]) -> Compiled:
        operands = [self._node(part, names) for part in (node.left, *node.comparators)]
        steps = [(COMPARE[type(op)], BIAS_SIDE.get(type(op), 0)) for op in node.ops]

        def compare(ctx: Context, bias: float) -> bool:
            left = operands[0](ctx, bias)
            for (op, side), operand in zip(steps, operands[1:]):
                right = operand(ctx, bias)
                try:
                    shifted = right + side * bias if side and bias and isinstance(right, (int, float)) else right
                    if not op(left, shifted):
                        return False
                except TypeError:
                    raise Unevaluable(f"cannot compare {left!r} with {right!r}") from None
                left = right
            return True

        return compare

    def _call(self, node: ast.Call, names: dict[str, int]) -> Compiled:
        function, args = node.func.id, node.args
        if function in FUNCTIONS and args:
            parts, call = [self._node(arg, names) for arg in args], FUNCTIONS[function]
            return lambda ctx, bias: _arithmetic(call, *(part(ctx, bias) for part in parts))
        if function in ("quality", "frozen"):
            if not args or not isinstance(args[0], ast.Name) or args[0].id not in names:
                raise self._refuse(f"{function}() takes an attribute first: {function}(domain/family/member/attribute"
                                   + (", BAND, SECONDS)" if function == "frozen" else ")"))
            index = names[args[0].id]
            if function == "quality" and len(args) == 1:
                return lambda ctx, bias: ctx.quality(index)
            if function == "frozen" and len(args) == 3:
                band, seconds = (_constant(arg) for arg in args[1:])
                if band is None or seconds is None or band < 0 or seconds <= 0:
                    raise self._refuse("frozen(ATTR, BAND, SECONDS) takes numbers: BAND at least 0, SECONDS above 0")
                self.frozen.append((index, band, seconds))
                return lambda ctx, bias: ctx.frozen(index, band, seconds)
        raise self._refuse(f"unknown function or wrong arguments: {ast.unparse(node).replace('_source_', 'source ')}; "
                           "functions are abs(x), min(...), max(...), quality(ATTR), frozen(ATTR, BAND, SECONDS)")


def _constant(node: ast.AST) -> float | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return float(node.value)
    return None


def _arithmetic(op: Callable[..., Any], *operands: Any) -> Any:
    try:
        result = op(*operands)
    except ZeroDivisionError:
        raise Unevaluable("division by zero") from None
    except (TypeError, ValueError, OverflowError) as exc:
        raise Unevaluable(f"arithmetic on {', '.join(repr(o) for o in operands)} failed: {exc}") from None
    if isinstance(result, float) and math.isnan(result):
        raise Unevaluable("the arithmetic gave NaN")
    return result
