"""Durations (``1h``, ``30m``, ``1h30m``, ``PT1H``) and timestamps (ISO 8601, ``now``) for options."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from sconeflow.errors import SconeflowError

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])", re.IGNORECASE)
_ISO_RE = re.compile(r"^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$", re.IGNORECASE)
# The longest duration accepted (100 years): far beyond any window, schedule or traffic run, yet small
# enough that ``now - duration`` stays a valid datetime and a wait on it stays below threading.TIMEOUT_MAX.
MAX_DURATION = timedelta(days=36500)


class InvalidDuration(SconeflowError):
    """A duration or timestamp option cannot be parsed."""


def parse_duration(text: str) -> timedelta:
    """``90s``, ``15m``, ``1h``, ``1h30m``, ``2d``, ``1w`` or ISO 8601 ``PT1H`` / ``P1D`` -> timedelta."""
    value = (text or "").strip()
    iso = _ISO_RE.match(value)
    if iso and value.upper() not in ("P", "PT"):
        days, hours, minutes, seconds = (float(g) if g else 0.0 for g in iso.groups())
        total = days * 86400 + hours * 3600 + minutes * 60 + seconds
    else:
        parts = _DURATION_RE.findall(value)
        if not parts or _DURATION_RE.sub("", value).strip():
            raise InvalidDuration(f"cannot read duration {text!r}; use e.g. 30s, 15m, 1h, 1h30m, 2d or PT1H")
        total = sum(float(n) * _UNITS[u.lower()] for n, u in parts)
    # A float of a huge number is inf (or beyond timedelta): check the seconds before building one.
    if not total <= MAX_DURATION.total_seconds():
        shown = text if len(text) <= 40 else text[:37] + "..."
        raise InvalidDuration(f"duration {shown!r} is too long; at most {MAX_DURATION.days} days (100 years)")
    result = timedelta(seconds=total)
    if result <= timedelta(0):
        raise InvalidDuration(f"duration {text!r} must be positive")
    return result


def parse_time(text: str, *, now: datetime | None = None) -> datetime:
    """ISO 8601 (``2025-10-04T08:44:11Z``, ``2025-10-04``), ``now``, ``<duration> ago``, ``-<duration>``."""
    value = (text or "").strip()
    current = now or datetime.now(UTC)
    if value.lower() == "now":
        return current
    relative = value.removeprefix("-").removesuffix("ago").strip()
    if value.startswith("-") or value.endswith("ago"):
        return _minus(current, parse_duration(relative), text)
    try:
        parsed = datetime.fromisoformat(value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value)
    except ValueError as exc:
        raise InvalidDuration(
            f"cannot read time {text!r}; use ISO 8601 (2025-10-04T08:44:11Z), 'now' or '2h ago'"
        ) from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00 is before year 1 in UTC
        raise InvalidDuration(f"time {text!r} is outside the years 1-9999 once in UTC") from None


def _minus(current: datetime, duration: timedelta, text: str) -> datetime:
    try:
        return current - duration
    except OverflowError:
        raise InvalidDuration(
            f"{text!r} counted back from {current:%Y-%m-%dT%H:%M:%SZ} is before year 1"
        ) from None


def resolve_window(
    window: str | None, since: str | None, until: str | None, *, now: datetime | None = None
) -> tuple[datetime | None, datetime | None]:
    """``--since/--until`` win; else ``--window`` (``all`` = everything) ending now."""
    current = now or datetime.now(UTC)
    start = parse_time(since, now=current) if since else None
    end = parse_time(until, now=current) if until else None
    if start is None and end is None and window and window.lower() != "all":
        end = current
        start = _minus(current, parse_duration(window), window)
    if start is not None and end is not None and start >= end:
        raise InvalidDuration(
            f"--since ({start:%Y-%m-%dT%H:%M:%SZ}) must be before --until ({end:%Y-%m-%dT%H:%M:%SZ})"
        )
    return start, end
