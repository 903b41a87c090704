"""Named errors of the traffic generator."""

from __future__ import annotations

from sconeflow.errors import SconeflowError


class TrafficError(SconeflowError):
    """Base class of the traffic generator's errors."""


class InvalidRate(TrafficError):
    """``--rate`` is not ``N/s``, ``N/m``, ``N/h`` or a plain positive number (per second)."""


class InvalidShift(TrafficError):
    """An unknown ``--shift``, or a one-class shift naming a class the dataset does not have."""


class InvalidTrafficOptions(TrafficError):
    """Contradictory or out-of-range options (both or neither of --endpoint/--workflow, --burst < 1, ...)."""


class NoTestImages(TrafficError):
    """The prepared test split is missing or empty, so there is nothing to draw inputs from."""
