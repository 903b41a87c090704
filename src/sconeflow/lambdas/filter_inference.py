"""filter_inference: pass the event through only when the model is confident enough.

Event (bare, or wrapped as ``{"body": {...}}`` by a previous function) with ``inferences``: a non-empty
list of probabilities. When ``max(inferences) >= THRESHOLD`` (env, default 0.93) it returns
``{"statusCode": 200, "body": {...same fields...}}``; otherwise it raises ThresholdConfidenceNotMet,
the error name a Step Functions Catch can route on.
Standard library only: this file is deployable to AWS Lambda as is.
"""

import math
import os

DEFAULT_THRESHOLD = 0.93


class ThresholdConfidenceNotMet(Exception):
    """The best class probability is below THRESHOLD."""


class InvalidInferences(Exception):
    """inferences is missing, empty, or not a list of numbers in [0, 1]."""


class InvalidThreshold(Exception):
    """The THRESHOLD environment variable is not a number in [0, 1]."""


def _unwrap(event):
    if isinstance(event, dict) and isinstance(event.get("body"), dict):
        return event["body"]
    if isinstance(event, dict) and isinstance(event.get("body"), str):
        raise InvalidInferences(
            "event 'body' is a JSON string; pass the object itself (OutputPath: $.Payload)"
        )
    if not isinstance(event, dict):
        raise InvalidInferences(f"event must be a JSON object, got {type(event).__name__}")
    return event


def _threshold():
    raw = os.environ.get("THRESHOLD", "")
    if not raw:
        return DEFAULT_THRESHOLD
    try:
        value = float(raw)
    except ValueError:
        raise InvalidThreshold(f"THRESHOLD={raw!r} is not a number") from None
    if not 0.0 <= value <= 1.0:
        raise InvalidThreshold(f"THRESHOLD={raw!r} is outside [0, 1]")
    return value


def _inferences(event):
    values = event.get("inferences")
    if not isinstance(values, list) or not values:
        raise InvalidInferences("event field 'inferences' must be a non-empty list of probabilities")
    for value in values:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise InvalidInferences(f"inferences holds a non-numeric value: {value!r}")
        if not 0.0 <= value <= 1.0:
            raise InvalidInferences(f"inferences holds {value!r}, outside [0, 1]")
    return [float(v) for v in values]


def _format_pair(best, threshold):
    """Two decimals, more only when two decimals would make the numbers look equal."""
    for digits in range(2, 8):
        shown, limit = f"{best:.{digits}f}", f"{threshold:.{digits}f}"
        if shown != limit:
            return shown, limit
    return repr(best), repr(threshold)


def lambda_handler(event, context):
    event = _unwrap(event)
    threshold = _threshold()
    best = max(_inferences(event))
    if best < threshold:
        shown, limit = _format_pair(best, threshold)
        raise ThresholdConfidenceNotMet(f"THRESHOLD_CONFIDENCE_NOT_MET: max confidence {shown} < {limit}")
    return {"statusCode": 200, "body": dict(event)}
