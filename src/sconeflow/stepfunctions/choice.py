"""Choice rules: parsing into a small tree, and the comparison operators with AWS's type rules."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

COMPARATORS = (
    "StringEquals",
    "StringLessThan",
    "StringLessThanEquals",
    "StringGreaterThan",
    "StringGreaterThanEquals",
    "NumericEquals",
    "NumericLessThan",
    "NumericLessThanEquals",
    "NumericGreaterThan",
    "NumericGreaterThanEquals",
    "BooleanEquals",
    "TimestampEquals",
    "TimestampLessThan",
    "TimestampLessThanEquals",
    "TimestampGreaterThan",
    "TimestampGreaterThanEquals",
)
UNARY = ("StringMatches", "IsNull", "IsPresent", "IsNumeric", "IsString", "IsBoolean", "IsTimestamp")
OPERATORS = frozenset(COMPARATORS + tuple(c + "Path" for c in COMPARATORS) + UNARY)


@dataclass(frozen=True)
class Compare:
    variable: str
    operator: str  # without the "Path" suffix
    operand: Any
    operand_is_path: bool


@dataclass(frozen=True)
class And:
    rules: tuple[Any, ...]


@dataclass(frozen=True)
class Or:
    rules: tuple[Any, ...]


@dataclass(frozen=True)
class Not:
    rule: Any


@dataclass(frozen=True)
class Condition:
    expression: Any  # "{% ... %}" string, or a literal boolean


@dataclass(frozen=True)
class ChoiceRule:
    rule: Any
    next: str
    output: Any = None
    has_output: bool = False
    assign: dict | None = None


def parse_rule(raw: dict) -> Any:
    if "Condition" in raw:
        return Condition(raw["Condition"])
    if "And" in raw:
        return And(tuple(parse_rule(r) for r in raw["And"]))
    if "Or" in raw:
        return Or(tuple(parse_rule(r) for r in raw["Or"]))
    if "Not" in raw:
        return Not(parse_rule(raw["Not"]))
    for key, value in raw.items():
        if key in OPERATORS:
            is_path = key.endswith("Path") and key not in UNARY
            return Compare(raw.get("Variable", "$"), key[:-4] if is_path else key, value, is_path)
    raise ValueError("no comparison operator")


def parse_choice(raw: dict) -> ChoiceRule:
    return ChoiceRule(
        rule=parse_rule(raw),
        next=raw["Next"],
        output=raw.get("Output"),
        has_output="Output" in raw,
        assign=raw.get("Assign"),
    )


_TS_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


def parse_timestamp(value: Any) -> datetime | None:
    """An RFC 3339 timestamp (a ``T`` and a zone required; any fraction length), else None."""
    if not isinstance(value, str):
        return None
    m = _TS_RE.match(value)
    if not m:
        return None
    frac = (m.group(7) or ".0")[1:]
    micro = int((frac + "000000")[:6])
    zone = m.group(8)
    try:
        base = datetime.fromisoformat(
            f"{m.group(1)}-{m.group(2)}-{m.group(3)}T{m.group(4)}:{m.group(5)}:{m.group(6)}"
            + ("+00:00" if zone == "Z" else zone)
        )
    except ValueError:
        return None
    return base.replace(microsecond=micro)


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def string_matches(value: str, pattern: str) -> bool:
    regex = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            regex.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        regex.append(".*" if c == "*" else re.escape(c))
        i += 1
    return re.fullmatch("".join(regex), value, re.DOTALL) is not None


_MISSING = object()


class ConditionPathMissing(Exception):
    """A rule's ``Variable`` (or ``...Path`` operand) selects nothing. AWS fails the Choice state with
    ``States.Runtime`` for every operator but ``IsPresent``; it never reads a missing value as false."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.path = path


def compare(operator: str, value: Any, operand: Any) -> bool:
    """Apply one operator; ``value`` is ``_MISSING`` when the Variable selects nothing."""
    if operator == "IsPresent":
        return (value is not _MISSING) == bool(operand)
    if value is _MISSING:
        return False
    if operator == "IsNull":
        return (value is None) == bool(operand)
    if operator == "IsNumeric":
        return _is_number(value) == bool(operand)
    if operator == "IsString":
        return isinstance(value, str) == bool(operand)
    if operator == "IsBoolean":
        return isinstance(value, bool) == bool(operand)
    if operator == "IsTimestamp":
        return (parse_timestamp(value) is not None) == bool(operand)
    if operator == "StringMatches":
        return isinstance(value, str) and isinstance(operand, str) and string_matches(value, operand)
    kind = operator[:6] if operator.startswith("String") else operator[:7]
    if operator.startswith("String"):
        if not (isinstance(value, str) and isinstance(operand, str)):
            return False
        a, b = value, operand
        op = operator[len("String") :]
    elif operator.startswith("Numeric"):
        if not (_is_number(value) and _is_number(operand)):
            return False
        a, b = value, operand
        op = operator[len("Numeric") :]
    elif operator.startswith("Boolean"):
        return isinstance(value, bool) and isinstance(operand, bool) and value is operand
    elif operator.startswith("Timestamp"):
        a, b = parse_timestamp(value), parse_timestamp(operand)
        if a is None or b is None:
            return False
        op = operator[len("Timestamp") :]
    else:
        raise ValueError(kind)
    if op == "Equals":
        return a == b
    if op == "LessThan":
        return a < b
    if op == "LessThanEquals":
        return a <= b
    if op == "GreaterThan":
        return a > b
    if op == "GreaterThanEquals":
        return a >= b
    raise ValueError(operator)


def evaluate_rule(
    rule: Any,
    lookup: Callable[[str], Any],
    condition: Callable[[Any], bool],
) -> bool:
    """Evaluate a rule tree; ``lookup(path)`` returns the value or ``MISSING``.

    Raises :class:`ConditionPathMissing` when a comparison other than ``IsPresent`` meets a missing path.
    ``And`` and ``Or`` stop at the first rule that decides them, so a later rule's path is not read.
    """
    if isinstance(rule, Compare):
        value = lookup(rule.variable)
        if value is _MISSING and rule.operator != "IsPresent":
            raise ConditionPathMissing(rule.variable)
        operand = rule.operand
        if rule.operand_is_path:
            operand = lookup(operand)
            if operand is _MISSING:
                raise ConditionPathMissing(rule.operand)
        return compare(rule.operator, value, operand)
    if isinstance(rule, And):
        return all(evaluate_rule(r, lookup, condition) for r in rule.rules)
    if isinstance(rule, Or):
        return any(evaluate_rule(r, lookup, condition) for r in rule.rules)
    if isinstance(rule, Not):
        return not evaluate_rule(rule.rule, lookup, condition)
    if isinstance(rule, Condition):
        return condition(rule.expression)
    raise TypeError(rule)


MISSING = _MISSING
