"""Durations (``1h``, ``30m``, ``1h30m``, ``PT1H``) and timestamps (ISO 8601, ``now``) for options."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from sconeflow.errors import SconeflowError

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])", re.IGNORECASE)
_ISO_RE = re.compile(r"^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$", re.IGNORECASE)


class InvalidDuration(SconeflowError):
    """A duration or timestamp option cannot be parsed."""


def parse_duration(text: str) -> timedelta:
    """``90s``, ``15m``, ``1h``, ``1h30m``, ``2d``, ``1w`` or ISO 8601 ``PT1H`` / ``P1D`` -> timedelta."""
    value = (text or "").strip()
    iso = _ISO_RE.match(value)
    if iso and value.upper() not in ("P", "PT"):
        days, hours, minutes, seconds = (float(g) if g else 0.0 for g in iso.groups())
        result = timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    else:
        parts = _DURATION_RE.findall(value)
        if not parts or _DURATION_RE.sub("", value).strip():
            raise InvalidDuration(f"cannot read duration {text!r}; use e.g. 30s, 15m, 1h, 1h30m, 2d or PT1H")
        result = timedelta(seconds=sum(float(n) * _UNITS[u.lower()] for n, u in parts))
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
        return current - parse_duration(relative)
    try:
        parsed = datetime.fromisoformat(value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value)
    except ValueError as exc:
        raise InvalidDuration(
            f"cannot read time {text!r}; use ISO 8601 (2025-10-04T08:44:11Z), 'now' or '2h ago'"
        ) from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def resolve_window(
    window: str | None, since: str | None, until: str | None, *, now: datetime | None = None
) -> tuple[datetime | None, datetime | None]:
    """``--since/--until`` win; else ``--window`` (``all`` = everything) ending now."""
    current = now or datetime.now(UTC)
    start = parse_time(since, now=current) if since else None
    end = parse_time(until, now=current) if until else None
    if start is None and end is None and window and window.lower() != "all":
        end = current
        start = current - parse_duration(window)
    if start is not None and end is not None and start >= end:
        raise InvalidDuration(
            f"--since ({start:%Y-%m-%dT%H:%M:%SZ}) must be before --until ({end:%Y-%m-%dT%H:%M:%SZ})"
        )
    return start, end
