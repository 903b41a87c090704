"""The ``States.*`` intrinsic functions of JSONPath states, with AWS's quirks.

An expression such as ``States.Format('Hi {}', $.name)`` parses once into a small tree; evaluating
it takes a ``resolve(path_text)`` callback that looks up ``$...``, ``$$...`` and ``$var`` arguments.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any


class IntrinsicSyntaxError(ValueError):
    """The text is not a well-formed intrinsic function call."""


class IntrinsicError(Exception):
    """A function failed at run time (surfaces as ``States.IntrinsicFailure``)."""


@dataclass(frozen=True)
class Call:
    name: str
    args: tuple[Any, ...]


@dataclass(frozen=True)
class PathArg:
    text: str


@dataclass(frozen=True)
class Literal:
    value: Any


FUNCTIONS = (
    "States.Format",
    "States.StringToJson",
    "States.JsonToString",
    "States.Array",
    "States.ArrayPartition",
    "States.ArrayContains",
    "States.ArrayRange",
    "States.ArrayGetItem",
    "States.ArrayLength",
    "States.ArrayUnique",
    "States.Base64Encode",
    "States.Base64Decode",
    "States.Hash",
    "States.JsonMerge",
    "States.MathRandom",
    "States.MathAdd",
    "States.StringSplit",
    "States.UUID",
)


def looks_like_intrinsic(text: str) -> bool:
    return isinstance(text, str) and text.startswith("States.") and "(" in text


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.i = 0

    def fail(self) -> IntrinsicSyntaxError:
        return IntrinsicSyntaxError(self.text)

    def ws(self) -> None:
        while self.i < len(self.text) and self.text[self.i] in " \t\n\r":
            self.i += 1

    def call(self, depth: int = 0) -> Call:
        if depth > 10:
            raise self.fail()
        start = self.i
        while self.i < len(self.text) and (self.text[self.i].isalnum() or self.text[self.i] in "._"):
            self.i += 1
        name = self.text[start : self.i]
        if name not in FUNCTIONS:
            raise IntrinsicSyntaxError(f"Unsupported intrinsic function: {name}")
        self.ws()
        if self.i >= len(self.text) or self.text[self.i] != "(":
            raise self.fail()
        self.i += 1
        args: list[Any] = []
        self.ws()
        if self.i < len(self.text) and self.text[self.i] == ")":
            self.i += 1
            return Call(name, ())
        while True:
            self.ws()
            args.append(self.arg(depth))
            self.ws()
            if self.i >= len(self.text):
                raise self.fail()
            ch = self.text[self.i]
            self.i += 1
            if ch == ")":
                return Call(name, tuple(args))
            if ch != ",":
                raise self.fail()

    def arg(self, depth: int) -> Any:
        text = self.text
        if self.i >= len(text):
            raise self.fail()
        ch = text[self.i]
        if ch == "'":
            self.i += 1
            buf = []
            while self.i < len(text):
                c = text[self.i]
                if c == "\\" and self.i + 1 < len(text):
                    buf.append(text[self.i : self.i + 2])
                    self.i += 2
                    continue
                if c == "'":
                    self.i += 1
                    return Literal(_StringLiteral("".join(buf)))
                buf.append(c)
                self.i += 1
            raise self.fail()
        if text.startswith("States.", self.i):
            return self.call(depth + 1)
        if ch == "$":
            start = self.i
            depth_b = 0
            quote = None
            while self.i < len(text):
                c = text[self.i]
                if quote:
                    if c == quote:
                        quote = None
                elif c in "'\"":
                    quote = c
                elif c in "[(":
                    depth_b += 1
                elif c in "])":
                    if depth_b == 0:
                        break
                    depth_b -= 1
                elif c == "," and depth_b == 0:
                    break
                self.i += 1
            return PathArg(text[start : self.i].strip())
        start = self.i
        while self.i < len(text) and text[self.i] not in ",)":
            self.i += 1
        token = text[start : self.i].strip()
        try:
            return Literal(json.loads(token))
        except ValueError as exc:
            raise self.fail() from exc


class _StringLiteral(str):
    """A quoted string argument, still carrying its backslash escapes (States.Format needs them)."""

    def unescaped(self) -> str:
        out = []
        i = 0
        s = str(self)
        while i < len(s):
            if s[i] == "\\" and i + 1 < len(s):
                out.append(s[i + 1])
                i += 2
            else:
                out.append(s[i])
                i += 1
        return "".join(out)


@lru_cache(maxsize=2048)
def parse_intrinsic(text: str) -> Call:
    """Parse one call; raises IntrinsicSyntaxError."""
    parser = _Parser(text.strip())
    call = parser.call()
    parser.ws()
    if parser.i != len(parser.text):
        raise parser.fail()
    return call


def evaluate(call: Call, resolve: Callable[[str], Any]) -> Any:
    args = [_arg_value(a, resolve) for a in call.args]
    impl = _IMPLS[call.name]
    try:
        return impl(call, args)
    except IntrinsicError:
        raise
    except (TypeError, ValueError, KeyError, IndexError, AttributeError, OverflowError) as exc:
        raise IntrinsicError(f"Invalid arguments in {call.name}: {exc}") from exc


def _arg_value(arg: Any, resolve: Callable[[str], Any]) -> Any:
    if isinstance(arg, Call):
        return evaluate(arg, resolve)
    if isinstance(arg, PathArg):
        return resolve(arg.text)
    value = arg.value
    if isinstance(value, _StringLiteral):
        return value  # kept escaped until a function decides
    return value


def _s(value: Any) -> Any:
    return value.unescaped() if isinstance(value, _StringLiteral) else value


def _java_str(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e16:
            return str(int(value))
        return repr(value)
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={_java_str(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_java_str(v) for v in value) + "]"
    return str(value)


def _format(call: Call, args: list[Any]) -> str:
    if not args:
        raise IntrinsicError("States.Format needs a template")
    template = args[0]
    raw = str(template)
    escaped = isinstance(template, _StringLiteral)
    values = args[1:]
    out: list[str] = []
    used = 0
    i = 0
    while i < len(raw):
        c = raw[i]
        if escaped and c == "\\" and i + 1 < len(raw):
            out.append(raw[i + 1])
            i += 2
            continue
        if raw.startswith("{}", i):
            if used >= len(values):
                raise IntrinsicError("Number of arguments does not match the template")
            out.append(_java_str(_s(values[used])))
            used += 1
            i += 2
            continue
        out.append(c)
        i += 1
    if used != len(values):
        raise IntrinsicError("Number of arguments does not match the template")
    return "".join(out)


def _string_to_json(call: Call, args: list[Any]) -> Any:
    (text,) = args
    text = _s(text)
    if text is None:
        return None
    if not isinstance(text, str):
        raise IntrinsicError("States.StringToJson needs a string")
    if not text.strip():
        return None
    return json.loads(text, parse_float=finite_float, parse_constant=_no_constant)


def finite_float(token: str) -> float:
    """A JSON number as a float; one a float cannot hold (``1e999``) is refused, never ``inf``.

    Python would read it as ``inf`` and write it back as ``Infinity``, which is not JSON."""
    value = float(token)
    if math.isinf(value):
        raise ValueError(f"the number {token} is too large for a 64-bit floating-point value")
    return value


def _no_constant(token: str) -> Any:
    raise ValueError(f"'{token}' is not valid JSON")


def compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _json_to_string(call: Call, args: list[Any]) -> str:
    (value,) = args
    return compact(_s(value))


def _array(call: Call, args: list[Any]) -> list:
    return [_s(a) for a in args]


def _int_arg(value: Any) -> int:
    value = _s(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise IntrinsicError("expected an integer")
    if isinstance(value, float):
        if not value.is_integer():
            raise IntrinsicError("expected an integer")
        value = int(value)
    return value


def _array_partition(call: Call, args: list[Any]) -> list:
    arr, size = _s(args[0]), _int_arg(args[1])
    if not isinstance(arr, list) or size <= 0:
        raise IntrinsicError("invalid arguments")
    return [arr[i : i + size] for i in range(0, len(arr), size)]


def _array_contains(call: Call, args: list[Any]) -> bool:
    arr, value = _s(args[0]), _s(args[1])
    if not isinstance(arr, list):
        raise IntrinsicError("invalid arguments")
    return any(_json_equal(x, value) for x in arr)


def _json_equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    return a == b


MAX_RANGE_ITEMS = 1000  # AWS: the generated array holds at most 1000 items


def _array_range(call: Call, args: list[Any]) -> list:
    start, end, step = (_int_arg(a) for a in args)
    if step == 0:
        raise IntrinsicError("step must not be 0")
    span = range(start, end + (1 if step > 0 else -1), step)
    # counted before it is built: States.ArrayRange(0, 1e12, 1) must fail, not fill the memory
    if span[MAX_RANGE_ITEMS:]:
        raise IntrinsicError(f"States.ArrayRange would return more than {MAX_RANGE_ITEMS} items")
    return list(span)


def _array_get_item(call: Call, args: list[Any]) -> Any:
    arr, idx = _s(args[0]), _int_arg(args[1])
    if not isinstance(arr, list) or not (0 <= idx < len(arr)):
        raise IntrinsicError("index out of range")
    return arr[idx]


def _array_length(call: Call, args: list[Any]) -> int:
    (arr,) = args
    if not isinstance(arr, list):
        raise IntrinsicError("not an array")
    return len(arr)


def _array_unique(call: Call, args: list[Any]) -> list:
    (arr,) = args
    if not isinstance(arr, list):
        raise IntrinsicError("not an array")
    out: list[Any] = []
    for item in arr:
        if not any(_json_equal(item, seen) for seen in out):
            out.append(item)
    return out


MAX_CODEC_CHARS = 10_000  # AWS: Base64Encode/Base64Decode input and States.Hash's stringified data


def _java_length(text: str) -> int:
    """The length AWS (Java) counts: UTF-16 code units, so a character beyond U+FFFF counts twice."""
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def _limited(call: Call, text: str, what: str = "input string") -> str:
    length = _java_length(text)
    if length > MAX_CODEC_CHARS:
        raise IntrinsicError(
            f"The {what} of {call.name} must be at most {MAX_CODEC_CHARS} characters, but it has {length}"
        )
    return text


def _b64encode(call: Call, args: list[Any]) -> str:
    (text,) = args
    text = _s(text)
    if not isinstance(text, str):
        raise IntrinsicError("not a string")
    return base64.b64encode(_limited(call, text).encode()).decode()


_B64_VALUES = {c: i for i, c in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")}


def mime_b64decode(text: str) -> bytes:
    """Decode MIME Base64 (RFC 2045) as AWS documents for States.Base64Decode, like Java's MIME decoder.

    Characters outside the Base64 alphabet are ignored (so ``'!!!'`` decodes to nothing) and padding
    may be left out (``'YQ'`` is ``a``), but a last unit of a single character, ``=`` where padding
    cannot be, or alphabet characters after the padding are invalid (ValueError)."""
    out = bytearray()
    bits, shift, i, n = 0, 18, 0, len(text)
    while i < n:
        ch = text[i]
        i += 1
        if ch == "=":
            if shift == 18 or (shift == 6 and (i >= n or text[i] != "=")):
                raise ValueError("the input has a wrong 4-character ending unit")
            if shift == 6:
                i += 1
            break
        value = _B64_VALUES.get(ch)
        if value is None:
            continue
        bits |= value << shift
        shift -= 6
        if shift < 0:
            out += bits.to_bytes(3, "big")
            bits, shift = 0, 18
    if shift == 12:
        raise ValueError("the last unit does not have enough valid bits")
    if shift == 6:
        out.append(bits >> 16)
    elif shift == 0:
        out += (bits >> 8).to_bytes(2, "big")
    if any(ch in _B64_VALUES for ch in text[i:]):
        raise ValueError(f"the input has an incorrect ending character at {i}")
    return bytes(out)


def _b64decode(call: Call, args: list[Any]) -> str:
    (text,) = args
    text = _s(text)
    if not isinstance(text, str):
        raise IntrinsicError("not a string")
    try:
        data = mime_b64decode(_limited(call, text))
    except ValueError as exc:
        raise IntrinsicError(f"The input of {call.name} is not valid Base64: {exc}") from exc
    # bytes that are not UTF-8 become U+FFFD, as Java's String(bytes, UTF_8) does, instead of failing
    return data.decode("utf-8", errors="replace")


_HASHES = {"MD5": "md5", "SHA-1": "sha1", "SHA-256": "sha256", "SHA-384": "sha384", "SHA-512": "sha512"}


def _hash(call: Call, args: list[Any]) -> str:
    data, algo = _s(args[0]), _s(args[1])
    if algo not in _HASHES:
        raise IntrinsicError(f"unsupported algorithm {algo}")
    if not isinstance(data, str):
        data = compact(data)
    return hashlib.new(_HASHES[algo], _limited(call, data, "stringified data").encode()).hexdigest()


def _json_merge(call: Call, args: list[Any]) -> dict:
    a, b, deep = _s(args[0]), _s(args[1]), _s(args[2])
    if not isinstance(a, dict) or not isinstance(b, dict) or deep is not False:
        raise IntrinsicError("invalid arguments")
    return {**a, **b}


def _math_random(call: Call, args: list[Any]) -> int:
    """A random integer in [start, end): AWS documents the start as inclusive and the end as
    exclusive, and rounds a non-integer start or end to the nearest integer. A range with no
    integer in it (start >= end) has no result, so it fails instead of inventing one."""
    start, end = (_round_half_up(a) for a in args[:2])
    if start >= end:
        raise IntrinsicError(
            f"The start number ({start}) of States.MathRandom must be less than its end number ({end}), "
            "which is exclusive"
        )
    rng = random.Random(_int_arg(args[2])) if len(args) > 2 else random
    return rng.randrange(start, end)


def _round_half_up(value: Any) -> int:
    value = _s(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise IntrinsicError("not a number")
    return math.floor(value + 0.5) if isinstance(value, float) else value


MATH_ADD_RANGE = (-2_147_483_648, 2_147_483_647)  # AWS: States.MathAdd takes 32-bit integers


def _math_add(call: Call, args: list[Any]) -> int:
    a, b = (_round_half_up(x) for x in args)
    low, high = MATH_ADD_RANGE
    for value in (a, b):
        if not low <= value <= high:
            raise IntrinsicError(
                f"The arguments of States.MathAdd must be integers between {low} and {high}, "
                f"but one is {value}"
            )
    return a + b


def _string_split(call: Call, args: list[Any]) -> list[str]:
    text, delims = _s(args[0]), _s(args[1])
    if not isinstance(text, str) or not isinstance(delims, str):
        raise IntrinsicError("not a string")
    out: list[str] = []
    buf: list[str] = []
    for ch in text:
        if ch in delims:
            if buf:
                out.append("".join(buf))
            buf = []
        else:
            buf.append(ch)
    if buf:
        out.append("".join(buf))
    return out


def _uuid(call: Call, args: list[Any]) -> str:
    if args:
        raise IntrinsicError("States.UUID takes no arguments")
    return str(uuid.uuid4())


_IMPLS: dict[str, Callable[[Call, list[Any]], Any]] = {
    "States.Format": _format,
    "States.StringToJson": _string_to_json,
    "States.JsonToString": _json_to_string,
    "States.Array": _array,
    "States.ArrayPartition": _array_partition,
    "States.ArrayContains": _array_contains,
    "States.ArrayRange": _array_range,
    "States.ArrayGetItem": _array_get_item,
    "States.ArrayLength": _array_length,
    "States.ArrayUnique": _array_unique,
    "States.Base64Encode": _b64encode,
    "States.Base64Decode": _b64decode,
    "States.Hash": _hash,
    "States.JsonMerge": _json_merge,
    "States.MathRandom": _math_random,
    "States.MathAdd": _math_add,
    "States.StringSplit": _string_split,
    "States.UUID": _uuid,
}


def finish(value: Any) -> Any:
    """Turn a raw literal result (a still-escaped string) into its plain value."""
    return _s(value)
