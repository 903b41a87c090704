"""Post-hoc temperature scaling (Guo et al. 2017): one temperature ``T > 0`` fitted by minimising NLL.

No torch here: the inputs are numpy arrays of held-out log-probabilities (or logits) and labels. The
training code fits ``T`` on the members' out-of-fold validation predictions (never the test split) and
bakes ``softmax(logits / T)`` into the exported graph (see :class:`~sconeflow.model.net.ProbabilityModel`).
Dividing by a positive ``T`` never changes which class has the highest score, so accuracy is unchanged.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from sconeflow.model.evaluate import expected_calibration_error

log = logging.getLogger(__name__)

# With perfectly separated held-out data NLL keeps falling as T -> 0; the bounds keep T sensible.
T_MIN, T_MAX = 0.1, 10.0
GOLDEN = (math.sqrt(5) - 1) / 2


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def nll(logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of ``labels`` under ``softmax(logits / temperature)``."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    m = z.max(axis=1, keepdims=True)
    log_norm = m[:, 0] + np.log(np.exp(z - m).sum(axis=1))
    return float(np.mean(log_norm - z[np.arange(len(labels)), labels]))


def fit_temperature(logits: np.ndarray, labels: np.ndarray, iterations: int = 80) -> float:
    """The ``T`` in [T_MIN, T_MAX] minimising NLL (golden-section search on log T; NLL is convex in 1/T).

    Never worse than ``T = 1`` on the given data: if the search ends higher, 1.0 is returned.
    """
    logits = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    if len(labels) == 0:
        return 1.0
    lo, hi = math.log(T_MIN), math.log(T_MAX)
    a, b = hi - GOLDEN * (hi - lo), lo + GOLDEN * (hi - lo)
    fa, fb = nll(logits, labels, math.exp(a)), nll(logits, labels, math.exp(b))
    for _ in range(iterations):
        if fa <= fb:
            hi, b, fb = b, a, fa
            a = hi - GOLDEN * (hi - lo)
            fa = nll(logits, labels, math.exp(a))
        else:
            lo, a, fa = a, b, fb
            b = lo + GOLDEN * (hi - lo)
            fb = nll(logits, labels, math.exp(b))
    best = math.exp((lo + hi) / 2)
    if nll(logits, labels, best) > nll(logits, labels, 1.0):
        return 1.0
    return best


@dataclass(frozen=True)
class Calibration:
    """A fitted temperature and what it did on the held-out predictions it was fitted on."""

    temperature: float
    source: str
    images: int
    nll_before: float
    nll_after: float
    ece_before: float
    ece_after: float
    confidence_before: float
    confidence_after: float

    def metrics(self) -> dict[str, Any]:
        """Flat metrics for model.json and the training-job record."""
        return {
            "temperature": round(self.temperature, 6),
            "temperature_source": self.source,
            "val_nll_uncalibrated": round(self.nll_before, 6),
            "val_nll": round(self.nll_after, 6),
            "val_ece_uncalibrated": round(self.ece_before, 6),
            "val_ece": round(self.ece_after, 6),
            "val_mean_confidence_uncalibrated": round(self.confidence_before, 6),
            "val_mean_confidence": round(self.confidence_after, 6),
        }


def calibrate(logits: np.ndarray, labels: np.ndarray, source: str) -> Calibration:
    """Fit ``T`` on held-out ``logits`` (or log-probabilities) and report NLL/ECE before and after."""
    logits = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    t = fit_temperature(logits, labels)
    before, after = softmax(logits), softmax(logits, t)
    cal = Calibration(
        temperature=t,
        source=source,
        images=len(labels),
        nll_before=nll(logits, labels),
        nll_after=nll(logits, labels, t),
        ece_before=expected_calibration_error(before, labels)[0],
        ece_after=expected_calibration_error(after, labels)[0],
        confidence_before=float(before.max(axis=1).mean()),
        confidence_after=float(after.max(axis=1).mean()),
    )
    log.info(
        "temperature %.4f on %d held-out images: NLL %.4f -> %.4f, ECE %.4f -> %.4f",
        t,
        cal.images,
        cal.nll_before,
        cal.nll_after,
        cal.ece_before,
        cal.ece_after,
    )
    return cal
