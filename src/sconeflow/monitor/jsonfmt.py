"""JSON the way Model Monitor's Spark container writes it: Jackson's ``DefaultPrettyPrinter``.

Objects put one ``"key" : value`` per line, indented by two spaces; arrays stay on one line
(``[ 1.0, 2.0 ]``, ``[ {`` ... ``}, {`` ... ``} ]``); empty ones are ``{ }`` and ``[ ]``; floating-point
numbers use Java's ``Double.toString`` (``1.0``, ``0.25``, ``3.2E-4``, ``1.0E7``); no trailing newline.
The real AWS files show the ``"version" : 0.0`` style (``docs/aws-contracts.md`` 2.2).
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

_INDENT = "  "


def java_double(value: float) -> str:
    """``Double.toString``: plain notation for 1e-3 <= |x| < 1e7, else ``d.dddE±n``; shortest digits."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "-0.0" if math.copysign(1.0, value) < 0 else "0.0"
    magnitude = abs(value)
    if 1e-3 <= magnitude < 1e7:
        text = repr(float(value))
        if "e" in text or "E" in text:  # repr may still choose exponent form near the edges
            text = np.format_float_positional(value, unique=True, trim="0")
        return text if "." in text else text + ".0"
    mantissa, exponent = np.format_float_scientific(value, unique=True, trim="0").split("e")
    if "." not in mantissa:
        mantissa += ".0"
    elif mantissa.endswith("."):
        mantissa += "0"
    return f"{mantissa}E{int(exponent)}"


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        return java_double(float(value))
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def _write(value: Any, level: int, out: list[str]) -> None:
    if isinstance(value, dict):
        if not value:
            out.append("{ }")
            return
        out.append("{")
        inner = _INDENT * (level + 1)
        for index, (key, item) in enumerate(value.items()):
            out.append("\n" if index == 0 else ",\n")
            out.append(f"{inner}{json.dumps(str(key), ensure_ascii=False)} : ")
            _write(item, level + 1, out)
        out.append("\n" + _INDENT * level + "}")
    elif isinstance(value, list | tuple):
        if not value:
            out.append("[ ]")
            return
        out.append("[ ")
        for index, item in enumerate(value):
            if index:
                out.append(", ")
            _write(item, level, out)
        out.append(" ]")
    else:
        out.append(_scalar(value))


def jackson_dumps(document: Any) -> str:
    """``document`` as Jackson's default pretty printer writes it."""
    out: list[str] = []
    _write(document, 0, out)
    return "".join(out)
