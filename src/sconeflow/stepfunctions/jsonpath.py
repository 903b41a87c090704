"""JSONPath as Step Functions evaluates it (Jayway JsonPath semantics and messages).

A path compiles once into a list of segments. A *definite* path (names and single indices only)
yields one value or raises :class:`PathNotFound`; an indefinite path (wildcards, slices, filters,
deep scan, unions) yields a list of every match, possibly empty.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any


class PathSyntaxError(ValueError):
    """The text is not a JSONPath this engine understands."""


class PathNotFound(LookupError):
    """A definite path selects nothing; ``str()`` is Jayway's message (``No results for path: ...``)."""


@dataclass(frozen=True)
class _Seg:
    kind: str  # name | index | wildcard | slice | names | indices | filter | deep
    value: Any = None


_NAME_RE = re.compile(r"[^.\[\]]+")
_FILTER_CMP = re.compile(r"^\s*@((?:\.[A-Za-z0-9_\-]+|\['[^']*'\])*)\s*(==|!=|<=|>=|<|>)\s*(.+?)\s*$")
_FILTER_EXISTS = re.compile(r"^\s*@((?:\.[A-Za-z0-9_\-]+|\['[^']*'\])+)\s*$")


def _parse_bracket(path: str, i: int) -> tuple[_Seg, int]:
    """Parse ``[...]`` starting at ``path[i] == '['``; return the segment and the index after ``]``."""
    j = i + 1
    if j < len(path) and path[j] == "?":
        depth = 0
        k = j + 1
        while k < len(path):
            if path[k] == "(":
                depth += 1
            elif path[k] == ")":
                depth -= 1
                if depth == 0:
                    break
            k += 1
        if k + 1 >= len(path) or path[k + 1] != "]":
            raise PathSyntaxError(path)
        return _Seg("filter", _parse_filter(path[j + 2 : k])), k + 2
    if j < len(path) and path[j] in "'\"":
        names: list[str] = []
        while True:
            quote = path[j]
            k = j + 1
            buf = []
            while k < len(path) and path[k] != quote:
                if path[k] == "\\" and k + 1 < len(path) and path[k + 1] in (quote, "\\"):
                    buf.append(path[k + 1])
                    k += 2
                    continue
                buf.append(path[k])
                k += 1
            if k >= len(path):
                raise PathSyntaxError(path)
            names.append("".join(buf))
            k += 1
            while k < len(path) and path[k] == " ":
                k += 1
            if k < len(path) and path[k] == ",":
                k += 1
                while k < len(path) and path[k] == " ":
                    k += 1
                j = k
                if j >= len(path) or path[j] not in "'\"":
                    raise PathSyntaxError(path)
                continue
            if k < len(path) and path[k] == "]":
                seg = _Seg("name", names[0]) if len(names) == 1 else _Seg("names", tuple(names))
                return seg, k + 1
            raise PathSyntaxError(path)
    end = path.find("]", j)
    if end < 0:
        raise PathSyntaxError(path)
    body = path[j:end].strip()
    if body == "*":
        return _Seg("wildcard"), end + 1
    try:
        if ":" in body:
            parts = [p.strip() for p in body.split(":")]
            if len(parts) > 3:
                raise PathSyntaxError(path)
            nums = [int(p) if p else None for p in parts] + [None] * (3 - len(parts))
            return _Seg("slice", tuple(nums)), end + 1
        if "," in body:
            return _Seg("indices", tuple(int(p) for p in body.split(","))), end + 1
        return _Seg("index", int(body)), end + 1
    except ValueError as exc:
        raise PathSyntaxError(path) from exc


def _parse_filter(expr: str) -> Any:
    expr = expr.strip()
    for op in ("||", "&&"):
        if op in expr:
            left, right = expr.split(op, 1)
            return (op, _parse_filter(left), _parse_filter(right))
    m = _FILTER_CMP.match(expr)
    if m:
        sub = compile_path("$" + m.group(1)) if m.group(1) else None
        raw = m.group(3)
        if raw.startswith("'") and raw.endswith("'"):
            literal: Any = raw[1:-1]
        else:
            try:
                literal = json.loads(raw)
            except ValueError as exc:
                raise PathSyntaxError(expr) from exc
        return ("cmp", sub, m.group(2), literal)
    m = _FILTER_EXISTS.match(expr)
    if m:
        return ("exists", compile_path("$" + m.group(1)))
    raise PathSyntaxError(expr)


def _filter_match(flt: Any, item: Any) -> bool:
    kind = flt[0]
    if kind == "||":
        return _filter_match(flt[1], item) or _filter_match(flt[2], item)
    if kind == "&&":
        return _filter_match(flt[1], item) and _filter_match(flt[2], item)
    if kind == "exists":
        return bool(flt[1].find_all(item))
    _, sub, op, literal = flt
    if sub is None:
        value = item
    else:
        found = sub.find_all(item)
        if not found:
            return False
        value = found[0]
    try:
        if op == "==":
            return _same(value, literal)
        if op == "!=":
            return not _same(value, literal)
        if op == "<":
            return value < literal
        if op == "<=":
            return value <= literal
        if op == ">":
            return value > literal
        if op == ">=":
            return value >= literal
    except TypeError:
        return False
    return False


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    return a == b


class JsonPath:
    """A compiled JSONPath; build with :func:`compile_path`."""

    __slots__ = ("definite", "root", "segments", "text")

    def __init__(self, text: str, root: str, segments: tuple[_Seg, ...]) -> None:
        self.text = text
        self.root = root  # "$" or "$$"
        self.segments = segments
        self.definite = all(s.kind in ("name", "index") for s in segments)

    def __repr__(self) -> str:
        return f"JsonPath({self.text!r})"

    def normalized(self, upto: int | None = None) -> str:
        parts = ["$"]
        for seg in self.segments[: upto if upto is not None else len(self.segments)]:
            if seg.kind == "name":
                parts.append(f"['{seg.value}']")
            elif seg.kind == "index":
                parts.append(f"[{seg.value}]")
            else:
                parts.append("[*]")
        return "".join(parts)

    def get(self, data: Any) -> Any:
        """The value at a definite path (raises PathNotFound), or the list of matches."""
        if self.definite:
            value = data
            last = len(self.segments) - 1
            for n, seg in enumerate(self.segments):
                if seg.kind == "name":
                    if isinstance(value, dict) and seg.value in value:
                        value = value[seg.value]
                        continue
                    if n == last or not isinstance(value, dict):
                        if not isinstance(value, dict) and n != last:
                            raise PathNotFound(f"Missing property in path {self.normalized(n + 1)}")
                        raise PathNotFound(f"No results for path: {self.normalized()}")
                    raise PathNotFound(f"Missing property in path {self.normalized(n + 1)}")
                # index
                if isinstance(value, list):
                    idx = seg.value
                    if -len(value) <= idx < len(value):
                        value = value[idx]
                        continue
                    raise PathNotFound(f"Index out of bounds when evaluating path {self.normalized(n + 1)}")
                raise PathNotFound(
                    f"Filter: [{seg.value}] can only be applied to arrays. Current context is: "
                    f"{json.dumps(value, separators=(',', ':'))}"
                )
            return value
        return self.find_all(data)

    def find_all(self, data: Any) -> list[Any]:
        current = [data]
        for seg in self.segments:
            nxt: list[Any] = []
            for value in current:
                _step(seg, value, nxt)
            current = nxt
        return current


def _step(seg: _Seg, value: Any, out: list[Any]) -> None:
    kind = seg.kind
    if kind == "name":
        if isinstance(value, dict) and seg.value in value:
            out.append(value[seg.value])
    elif kind == "names":
        if isinstance(value, dict):
            out.extend(value[n] for n in seg.value if n in value)
    elif kind == "index":
        if isinstance(value, list) and -len(value) <= seg.value < len(value):
            out.append(value[seg.value])
    elif kind == "indices":
        if isinstance(value, list):
            out.extend(value[i] for i in seg.value if -len(value) <= i < len(value))
    elif kind == "wildcard":
        if isinstance(value, dict):
            out.extend(value.values())
        elif isinstance(value, list):
            out.extend(value)
    elif kind == "slice":
        if isinstance(value, list):
            start, stop, step = seg.value
            out.extend(value[slice(start, stop, step)])
    elif kind == "filter":
        items = value if isinstance(value, list) else list(value.values()) if isinstance(value, dict) else []
        out.extend(item for item in items if _filter_match(seg.value, item))
    elif kind == "deep":
        _deep(seg.value, value, out)


def _deep(inner: _Seg, value: Any, out: list[Any]) -> None:
    _step(inner, value, out)
    children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    for child in children:
        if isinstance(child, dict | list):
            _deep(inner, child, out)


@lru_cache(maxsize=4096)
def compile_path(text: str) -> JsonPath:
    """Compile ``$...`` or ``$$...`` (the root alone is allowed); raises PathSyntaxError."""
    if not isinstance(text, str) or not text.startswith("$"):
        raise PathSyntaxError(str(text))
    root = "$$" if text.startswith("$$") else "$"
    i = len(root)
    segs: list[_Seg] = []
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == ".":
            if text.startswith("..", i):
                i += 2
                if i < n and text[i] == "[":
                    inner, i = _parse_bracket(text, i)
                elif i < n and text[i] == "*":
                    inner, i = _Seg("wildcard"), i + 1
                else:
                    m = _NAME_RE.match(text, i)
                    if not m:
                        raise PathSyntaxError(text)
                    inner, i = _Seg("name", m.group(0)), m.end()
                segs.append(_Seg("deep", inner))
                continue
            i += 1
            if i < n and text[i] == "*":
                segs.append(_Seg("wildcard"))
                i += 1
                continue
            m = _NAME_RE.match(text, i)
            if not m:
                raise PathSyntaxError(text)
            segs.append(_Seg("name", m.group(0)))
            i = m.end()
        elif ch == "[":
            seg, i = _parse_bracket(text, i)
            segs.append(seg)
        else:
            raise PathSyntaxError(text)
    return JsonPath(text, root, tuple(segs))


def is_valid_path(text: str) -> bool:
    try:
        compile_path(text)
    except PathSyntaxError:
        return False
    return True


def is_reference_path(text: str) -> bool:
    """A Reference Path (ResultPath's kind): definite, names and indices only."""
    try:
        return compile_path(text).definite
    except PathSyntaxError:
        return False


class ResultPathError(ValueError):
    """The ResultPath cannot be applied to the input."""


def set_path(data: Any, path: JsonPath, value: Any) -> Any:
    """Return a copy of ``data`` with ``value`` placed at the reference path (ResultPath)."""
    if not path.segments:
        return value
    root = copy.deepcopy(data) if isinstance(data, dict | list) else data
    if not isinstance(root, dict | list):
        raise ResultPathError(path.text)
    node = root
    for n, seg in enumerate(path.segments):
        last = n == len(path.segments) - 1
        if seg.kind == "name":
            if not isinstance(node, dict):
                raise ResultPathError(path.text)
            if last:
                node[seg.value] = value
            else:
                child = node.get(seg.value)
                if not isinstance(child, dict | list):
                    child = {}
                    node[seg.value] = child
                node = child
        elif seg.kind == "index":
            if not isinstance(node, list) or not (-len(node) <= seg.value < len(node)):
                raise ResultPathError(path.text)
            if last:
                node[seg.value] = value
            else:
                node = node[seg.value]
        else:
            raise ResultPathError(path.text)
    return root
