"""Reading an InvokeEndpoint answer: the probability list and the class it picks.

Shared by every client of an endpoint in this project (``sconeflow endpoint invoke``, the traffic
generator), so a malformed answer is named the same way everywhere instead of raising a traceback.
"""

from __future__ import annotations

import json
import math
from typing import Any


def _short(data: bytes | str, limit: int = 80) -> str:
    text = repr(data)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def best_class(body: bytes, classes_header: str | None) -> tuple[str, float]:
    """(class, probability) of the most probable class in an InvokeEndpoint answer.

    ``body`` is a JSON list of numbers (or a one-row list of them), ``classes_header`` the
    ``X-Sconeflow-Classes`` JSON list of names (``class_<i>`` without it). Raises ``ValueError`` saying
    what is wrong with a malformed answer.
    """
    try:
        probs = json.loads(body)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise ValueError(f"the body is not JSON: {_short(body)}") from None
    if isinstance(probs, list) and len(probs) == 1 and isinstance(probs[0], list):
        probs = probs[0]
    if (
        not isinstance(probs, list)
        or not probs
        or not all(isinstance(p, int | float) and not isinstance(p, bool) and math.isfinite(p) for p in probs)
    ):
        raise ValueError(f"the body is not a list of probabilities: {_short(body)}")
    if classes_header is None:
        classes: list[Any] = [f"class_{i}" for i in range(len(probs))]
    else:
        try:
            classes = json.loads(classes_header)
        except (ValueError, RecursionError):
            classes = None  # type: ignore[assignment]
        if not isinstance(classes, list) or len(classes) != len(probs):
            raise ValueError(
                f"X-Sconeflow-Classes {_short(classes_header)} does not name the {len(probs)} classes "
                "of the body"
            )
    best = max(range(len(probs)), key=probs.__getitem__)
    return str(classes[best]), float(probs[best])
