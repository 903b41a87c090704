"""Evaluation of a classifier on a split: accuracy, per-class P/R/F1, confusion matrix, ECE, a PNG.

No torch: works on any :class:`~sconeflow.model.artifact.OnnxClassifier`.
"""

from __future__ import annotations

import io
import itertools
import json
import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sconeflow.model.dataload import SplitData

log = logging.getLogger(__name__)

ECE_BINS = 15
MAX_GRID = 64


@dataclass
class EvaluationReport:
    classes: list[str]
    n: int
    accuracy: float
    precision: list[float]
    recall: list[float]
    f1: list[float]
    support: list[int]
    confusion: list[list[int]]  # rows: true class, columns: predicted class
    ece: float
    nll: float
    reliability: list[dict[str, float]]  # per confidence bin: lo, hi, count, confidence, accuracy
    misclassified: list[dict[str, Any]]  # key, true, predicted, confidence
    images: np.ndarray | None = field(default=None, repr=False)  # the misclassified images (for the grid)

    def as_dict(self) -> dict[str, Any]:
        return {
            "classes": self.classes,
            "n": self.n,
            "accuracy": self.accuracy,
            "per_class": {
                c: {"precision": p, "recall": r, "f1": f, "support": s}
                for c, p, r, f, s in zip(
                    self.classes, self.precision, self.recall, self.f1, self.support, strict=True
                )
            },
            "confusion_matrix": {
                "rows": "true class",
                "columns": "predicted class",
                "matrix": self.confusion,
            },
            "ece": self.ece,
            "ece_bins": ECE_BINS,
            "nll": self.nll,
            "reliability": self.reliability,
            "misclassified": self.misclassified,
        }


def expected_calibration_error(
    probs: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS
) -> tuple[float, list]:
    """ECE over equal-width confidence bins (top-1 confidence vs accuracy), and the bins themselves."""
    conf = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == labels).astype(np.float64)
    edges = np.linspace(0, 1, bins + 1)
    ece, table = 0.0, []
    for lo, hi in itertools.pairwise(edges):
        mask = (conf > lo) & (conf <= hi) if lo > 0 else (conf >= lo) & (conf <= hi)
        count = int(mask.sum())
        if count:
            gap = abs(conf[mask].mean() - correct[mask].mean())
            ece += gap * count / len(labels)
            table.append(
                {
                    "lo": float(lo),
                    "hi": float(hi),
                    "count": count,
                    "confidence": float(conf[mask].mean()),
                    "accuracy": float(correct[mask].mean()),
                }
            )
        else:
            table.append({"lo": float(lo), "hi": float(hi), "count": 0, "confidence": 0.0, "accuracy": 0.0})
    return float(ece), table


def metrics_from_probs(
    probs: np.ndarray, labels: np.ndarray, classes: list[str], keys: list[str]
) -> EvaluationReport:
    c = len(classes)
    pred = probs.argmax(axis=1)
    confusion = np.zeros((c, c), dtype=np.int64)
    np.add.at(confusion, (labels, pred), 1)
    tp = np.diag(confusion).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.nan_to_num(tp / confusion.sum(axis=0))
        recall = np.nan_to_num(tp / confusion.sum(axis=1))
        f1 = np.nan_to_num(2 * precision * recall / (precision + recall))
    ece, reliability = expected_calibration_error(probs, labels)
    nll = float(-np.mean(np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-12, 1.0))))
    wrong = np.flatnonzero(pred != labels)
    misclassified = [
        {
            "key": keys[i],
            "true": classes[labels[i]],
            "predicted": classes[pred[i]],
            "confidence": float(probs[i].max()),
        }
        for i in wrong
    ]
    return EvaluationReport(
        classes=classes,
        n=len(labels),
        accuracy=float((pred == labels).mean()),
        precision=[float(v) for v in precision],
        recall=[float(v) for v in recall],
        f1=[float(v) for v in f1],
        support=[int(v) for v in confusion.sum(axis=1)],
        confusion=confusion.tolist(),
        ece=ece,
        nll=nll,
        reliability=reliability,
        misclassified=misclassified,
    )


def require_finite(probs: np.ndarray) -> np.ndarray:
    """``probs`` when every value is finite; else :class:`InvalidModelArtifact` (a NaN row's argmax is
    class 0, so accuracy, reports and predictions would be silently wrong)."""
    bad = ~np.isfinite(probs).all(axis=1) if probs.ndim == 2 else ~np.isfinite(probs)
    if bad.any():
        from sconeflow.model.errors import InvalidModelArtifact

        raise InvalidModelArtifact(
            f"the model outputs NaN or infinite probabilities for {int(bad.sum())} of {len(probs)} images "
            "(its weights are not finite: a diverged training?)"
        )
    return probs


def evaluate(classifier: Any, split: SplitData) -> EvaluationReport:
    """Evaluate ``classifier`` (``.predict_proba``, ``.classes``) on a split."""
    if list(classifier.classes) != list(split.classes):
        from sconeflow.model.errors import ClassMismatch

        raise ClassMismatch(
            f"the model predicts {', '.join(classifier.classes)} but the dataset's classes are "
            f"{', '.join(split.classes)} (same names in the same order are needed)"
        )
    probs = require_finite(classifier.predict_proba(split.images))
    report = metrics_from_probs(probs, split.labels, list(classifier.classes), split.keys)
    wrong = np.flatnonzero(probs.argmax(axis=1) != split.labels)
    report.images = split.images[wrong[:MAX_GRID]]
    return report


def render_png(report: EvaluationReport, title: str = "") -> bytes:
    """Confusion matrix, reliability diagram and the misclassified images in one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(15, 5.2), dpi=100)
    grid = fig.add_gridspec(1, 3, width_ratios=[1, 1, 1.2])
    ax = fig.add_subplot(grid[0])
    cm = np.asarray(report.confusion)
    ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(len(report.classes)), report.classes, rotation=30, ha="right")
    ax.set_yticks(range(len(report.classes)), report.classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(
                j,
                i,
                str(cm[i, j]),
                ha="center",
                va="center",
                color="white" if cm[i, j] > cm.max() / 2 else "black",
            )
    ax.set_title(f"confusion matrix (accuracy {report.accuracy:.1%}, n={report.n})")

    ax = fig.add_subplot(grid[1])
    centers = [(b["lo"] + b["hi"]) / 2 for b in report.reliability]
    width = 1 / len(report.reliability)
    accs = [b["accuracy"] if b["count"] else 0 for b in report.reliability]
    ax.bar(centers, accs, width=width * 0.9, color="tab:blue", label="accuracy")
    ax.plot([0, 1], [0, 1], "--", color="gray", label="perfect calibration")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("confidence")
    ax.set_ylabel("accuracy")
    ax.set_title(f"reliability diagram (ECE {report.ece:.3f})")
    ax.legend(loc="upper left")

    sub = grid[2].subgridspec(8, 8, wspace=0.05, hspace=0.35)
    images = report.images if report.images is not None else np.zeros((0, 32, 32, 3), np.uint8)
    shown = min(len(images), MAX_GRID)
    for i in range(shown):
        a = fig.add_subplot(sub[i // 8, i % 8])
        a.imshow(images[i], interpolation="nearest")
        a.set_xticks([])
        a.set_yticks([])
        m = report.misclassified[i]
        a.set_title(f"{m['predicted'][:5]} {m['confidence']:.2f}", fontsize=6, color="tab:red")
    if shown == 0:
        a = fig.add_subplot(sub[:, :])
        a.axis("off")
        a.text(0.5, 0.5, "no misclassified images", ha="center", va="center")
    fig.text(
        0.78,
        0.96,
        f"misclassified: {len(report.misclassified)} (title: predicted, confidence)",
        ha="center",
        fontsize=10,
    )
    if title:
        fig.suptitle(title, x=0.3, fontsize=11)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def save_report(report: EvaluationReport, store: Any, bucket: str, prefix: str) -> tuple[str, str]:
    """Write ``<prefix>.json`` and ``<prefix>.png`` into the store; returns both keys."""
    json_key, png_key = f"{prefix}.json", f"{prefix}.png"
    store.put_object(
        bucket, json_key, json.dumps(report.as_dict(), indent=2).encode(), content_type="application/json"
    )
    store.put_object(bucket, png_key, render_png(report), content_type="image/png")
    return json_key, png_key
