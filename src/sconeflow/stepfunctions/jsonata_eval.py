"""JSONata for Step Functions (``{% ... %}``) on top of the ``jsonata-python`` library.

Adds AWS's extra functions (``$partition``, ``$range``, ``$hash``, ``$random``, ``$uuid``, ``$parse``),
binds ``$states`` and the workflow variables, and tells *undefined* apart from ``null``.
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
import uuid
from typing import Any

import jsonata
from jsonata.utils import Utils

_NULL = Utils.NULL_VALUE
_local = threading.local()


class JsonataSyntaxError(ValueError):
    """The expression does not compile."""


class JsonataEvalError(Exception):
    """Evaluation raised an error (message is the library's)."""


class Undefined(Exception):
    """The expression returned nothing."""


def is_expression(value: Any) -> bool:
    return isinstance(value, str) and len(value) >= 4 and value.startswith("{%") and value.endswith("%}")


def expression_body(value: str) -> str:
    return value[2:-2].strip()


def check_syntax(body: str) -> str | None:
    """None when the expression compiles, else the error message."""
    try:
        _compile(body)
    except JsonataSyntaxError as exc:
        return str(exc)
    return None


def _compile(body: str) -> Any:
    cache = getattr(_local, "cache", None)
    if cache is None:
        cache = _local.cache = {}
    expr = cache.get(body)
    if expr is None:
        try:
            expr = jsonata.Jsonata(body)
        except Exception as exc:
            raise JsonataSyntaxError(str(exc)) from exc
        expr.set_output_convert_nulls(False)
        for name, fn in _EXTRA_FUNCTIONS.items():
            expr.register_lambda(name, fn)
        if len(cache) > 4096:
            cache.clear()
        cache[body] = expr
    return expr


def to_jsonata(value: Any) -> Any:
    """JSON value -> the library's representation (``null`` is a sentinel, not None)."""
    if value is None:
        return _NULL
    if isinstance(value, dict):
        return {k: to_jsonata(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_jsonata(v) for v in value]
    return value


class UnsupportedResult(Exception):
    """The expression produced a function or another non-JSON value."""


def from_jsonata(value: Any) -> Any:
    if value is _NULL or value is None:
        return None
    if isinstance(value, bool | str | int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() and abs(value) < 2**63 else value
    if isinstance(value, dict):
        return {k: from_jsonata(v) for k, v in value.items() if v is not None or v is _NULL}
    if isinstance(value, list):
        return [from_jsonata(v) for v in value if v is not None]
    raise UnsupportedResult(type(value).__name__)


def evaluate(body: str, bindings: dict[str, Any]) -> Any:
    """Evaluate; ``bindings`` maps variable names (without ``$``) to plain JSON values.

    Raises Undefined, UnsupportedResult, JsonataSyntaxError or JsonataEvalError.
    """
    expr = _compile(body)
    converted = {k: to_jsonata(v) for k, v in bindings.items()}
    try:
        result = expr.evaluate(None, converted)
    except RecursionError as exc:
        raise JsonataEvalError("Stack overflow error") from exc
    except Exception as exc:
        raise JsonataEvalError(str(exc)) from exc
    if result is None:
        raise Undefined(body)
    if callable(result) or isinstance(result, jsonata.Jsonata.JFunctionCallable | jsonata.Jsonata.JLambda):
        raise UnsupportedResult("function")
    return from_jsonata(result)


# --- AWS's extra functions ------------------------------------------------------------------


def _partition(array: Any, size: Any) -> Any:
    arr = from_jsonata(array)
    if not isinstance(arr, list) or not isinstance(size, int | float) or size <= 0:
        raise JsonataEvalError("Invalid arguments to $partition")
    n = int(size)
    return to_jsonata([arr[i : i + n] for i in range(0, len(arr), n)])


def _range(start: Any, end: Any, step: Any) -> Any:
    if not all(isinstance(v, int | float) for v in (start, end, step)) or step == 0:
        raise JsonataEvalError("Invalid arguments to $range")
    s, e, st = int(start), int(end), int(step)
    return Utils.create_sequence_from_iter(range(s, e + (1 if st > 0 else -1), st))


_HASHES = {"MD5": "md5", "SHA-1": "sha1", "SHA-256": "sha256", "SHA-384": "sha384", "SHA-512": "sha512"}


def _hash(value: Any, algorithm: Any = "SHA-256") -> str:
    if algorithm not in _HASHES:
        raise JsonataEvalError(f"Unsupported hash algorithm {algorithm}")
    plain = from_jsonata(value)
    text = plain if isinstance(plain, str) else json.dumps(plain, separators=(",", ":"))
    return hashlib.new(_HASHES[algorithm], text.encode()).hexdigest()


def _random(seed: Any = None) -> float:
    if seed is None or seed is _NULL:
        return random.random()
    return random.Random(seed).random()


def _uuid() -> str:
    return str(uuid.uuid4())


def _parse(text: Any) -> Any:
    if not isinstance(text, str):
        raise JsonataEvalError("$parse needs a string")
    try:
        return to_jsonata(json.loads(text))
    except ValueError as exc:
        raise JsonataEvalError(f"$parse: {exc}") from exc


_EXTRA_FUNCTIONS = {
    "partition": _partition,
    "range": _range,
    "hash": _hash,
    "random": _random,
    "uuid": _uuid,
    "parse": _parse,
}
