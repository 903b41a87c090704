"""Post-training int8 quantization of an exported graph (ONNX Runtime's static QDQ quantizer).

The float32 graph from :func:`~sconeflow.model.export.export_onnx` becomes a QDQ graph: every Conv and
MatMul runs on 8-bit integers (activations uint8 with scales fitted on calibration images by min/max,
weights int8 per output channel); everything else (pooling, batch norm, softmax, the flip-TTA mean, the
temperature) stays float32, so the probabilities are not rounded. The result is still one ONNX file
that any ONNX Runtime (>= 1.18) loads with no extra package; on x86 CPUs with VNNI the convolutions
run about 3-4x faster.

Weights use 7 bits (``reduce_range``): x86 CPUs without VNNI multiply uint8 x int8 pairs into int16
(``vpmaddubsw``), which saturates with full 8-bit weights; 7-bit weights cannot overflow there, so the
graph gives the same answers on every x86 machine.
"""

from __future__ import annotations

import logging
import math
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sconeflow.model.errors import QuantizationFailed

log = logging.getLogger(__name__)

CALIBRATION_BATCH = 100
QUANTIZED_OPS = ("Conv", "Gemm", "MatMul")
# The ``auto`` gate: the int8 graph must agree with the float graph on the predicted class of at least
# this share of the training images and of the held-out images, and must not be significantly worse on
# the held-out images: of the images exactly one of the two graphs gets wrong, int8 may not hold so many
# that a fair coin would give that many or more with probability under HELD_OUT_ALPHA (one-sided exact
# sign test, McNemar's). Held-out images are counted over all the held-out checks together: one check of
# 80-100 images cannot tell a 1-image difference from noise (one disagreement in 80 is already 98.75%).
MIN_AGREEMENT = 0.99
HELD_OUT_ALPHA = 0.05


# --calibrate_method names -> ONNX Runtime's CalibrationMethod members
CALIBRATION_METHODS = {"minmax": "MinMax", "percentile": "Percentile", "entropy": "Entropy"}
# Graph nodes left in float32 by default: the frozen 2x2 whitening convs (one per net). Their filters
# are eigenvectors scaled by 1/sqrt(eigenvalue), so each output channel's 12 weights span a wide range
# that 7-bit weights resolve poorly; in float32 they cost ~0.3M of the ~118M multiply-adds of a
# 64-256-256 net. Session 9's screen (bench/quant_screen.py, 1000 held-out images): mean probability
# change vs float32 0.0032 instead of 0.0070, 2 changed predictions instead of 4, +0.05 ms at batch 1.
FLOAT_NODE_SUFFIXES = ("/whiten/Conv",)


def default_float_nodes(onnx_bytes: bytes) -> tuple[str, ...]:
    """The nodes of ``onnx_bytes`` that :func:`quantize_int8` leaves in float32 unless told otherwise."""
    import onnx
    from google.protobuf.message import DecodeError

    try:
        graph = onnx.load_from_string(onnx_bytes).graph
    except DecodeError:
        return ()  # not an ONNX graph: quantize_int8 reports it as QuantizationFailed
    return tuple(n.name for n in graph.node if n.name.endswith(FLOAT_NODE_SUFFIXES))


def quantize_int8(
    onnx_bytes: bytes,
    calibration: np.ndarray,
    input_name: str = "input",
    *,
    calibrate_method: str = "minmax",
    keep_float: tuple[str, ...] | None = None,
) -> bytes:
    """The float32 graph as an int8 QDQ graph; ``calibration`` is normalized float32 NCHW images.

    ``calibrate_method`` picks how activation ranges are fitted (min/max by default; ``percentile`` or
    ``entropy`` clip outliers); ``keep_float`` names graph nodes left in float32 (default: the whitening
    convs, :func:`default_float_nodes`; ``()`` quantizes every Conv and MatMul).
    """
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if len(calibration) == 0:
        raise QuantizationFailed("quantization needs at least one calibration image")
    if calibrate_method not in CALIBRATION_METHODS:
        raise QuantizationFailed(
            f"unknown calibration method {calibrate_method!r}: one of {', '.join(CALIBRATION_METHODS)}"
        )
    if keep_float is None:
        keep_float = default_float_nodes(onnx_bytes)
    method = getattr(CalibrationMethod, CALIBRATION_METHODS[calibrate_method])
    batches = [
        np.ascontiguousarray(calibration[i : i + CALIBRATION_BATCH], dtype=np.float32)
        for i in range(0, len(calibration), CALIBRATION_BATCH)
    ]

    class _Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._batches: Iterator[np.ndarray] = iter(batches)

        def get_next(self) -> dict[str, np.ndarray] | None:
            batch = next(self._batches, None)
            return None if batch is None else {input_name: batch}

    with tempfile.TemporaryDirectory(prefix="sconeflow-quant-") as tmp:
        source, prepared, target = (Path(tmp) / n for n in ("float.onnx", "prepared.onnx", "int8.onnx"))
        source.write_bytes(onnx_bytes)
        try:
            quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
            quantize_static(
                str(prepared),
                str(target),
                _Reader(),
                quant_format=QuantFormat.QDQ,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                per_channel=True,
                reduce_range=True,
                calibrate_method=method,
                nodes_to_exclude=list(keep_float),
                # Only the multiply-heavy ops: quantizing Softmax would round probabilities to 1/255.
                op_types_to_quantize=list(QUANTIZED_OPS),
            )
        except Exception as exc:  # the quantizer raises assorted untyped errors
            raise QuantizationFailed(f"ONNX Runtime could not quantize the graph: {exc}") from exc
        return target.read_bytes()


@dataclass(frozen=True)
class QuantizationCheck:
    """How the int8 graph compares with the float graph on the same images."""

    images: int
    agreement: float  # share of images with the same predicted class
    max_abs_diff: float  # largest difference of any class probability
    mean_abs_diff: float
    float_errors: int | None = None  # wrong predictions, when labels are given
    int8_errors: int | None = None
    int8_only_errors: int | None = None  # images int8 gets wrong and float32 right
    float_only_errors: int | None = None  # images float32 gets wrong and int8 right
    on: str = ""
    calibration_images: int | None = None  # how many images the checked int8 graph's ranges came from

    def as_dict(self) -> dict[str, Any]:
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def compare(
    float_probs: np.ndarray,
    int8_probs: np.ndarray,
    labels: np.ndarray | None = None,
    *,
    on: str = "",
    calibration_images: int | None = None,
) -> QuantizationCheck:
    """Agreement of two probability tables (rows: images) and, with labels, their errors."""
    diff = np.abs(float_probs.astype(np.float64) - int8_probs.astype(np.float64))
    same = float_probs.argmax(1) == int8_probs.argmax(1)
    errors: tuple[int | None, ...] = (None, None, None, None)
    if labels is not None:
        float_wrong, int8_wrong = float_probs.argmax(1) != labels, int8_probs.argmax(1) != labels
        errors = tuple(
            int(v.sum())
            for v in (float_wrong, int8_wrong, int8_wrong & ~float_wrong, float_wrong & ~int8_wrong)
        )
    return QuantizationCheck(
        images=len(float_probs),
        agreement=float(same.mean()) if len(same) else 1.0,
        max_abs_diff=float(diff.max()) if diff.size else 0.0,
        mean_abs_diff=float(diff.mean()) if diff.size else 0.0,
        float_errors=errors[0],
        int8_errors=errors[1],
        int8_only_errors=errors[2],
        float_only_errors=errors[3],
        on=on,
        calibration_images=calibration_images,
    )


def _labelled(checks: list[QuantizationCheck]) -> list[QuantizationCheck]:
    return [c for c in checks if c.float_errors is not None and c.int8_errors is not None]


def heldout_agreement(checks: list[QuantizationCheck]) -> float | None:
    """Agreement over the images of all the labelled (held-out) checks together (None: there are none)."""
    labelled = _labelled(checks)
    images = sum(c.images for c in labelled)
    return sum(c.agreement * c.images for c in labelled) / images if images else None


def worse_p_value(checks: list[QuantizationCheck]) -> float | None:
    """One-sided exact sign test over the held-out checks together: the probability that a fair coin,
    tossed once per image exactly one graph gets wrong, lands on int8 at least as often as it did."""
    labelled = _labelled(checks)
    if not labelled:
        return None
    int8_only = sum(_discordant(c)[0] for c in labelled)
    n = int8_only + sum(_discordant(c)[1] for c in labelled)
    return sum(math.comb(n, k) for k in range(int8_only, n + 1)) / 2**n


def _discordant(check: QuantizationCheck) -> tuple[int, int]:
    if check.int8_only_errors is not None and check.float_only_errors is not None:
        return check.int8_only_errors, check.float_only_errors
    # Only the totals known (checks recorded before session 8): the smallest split they allow.
    gap = (check.int8_errors or 0) - (check.float_errors or 0)
    return max(gap, 0), max(-gap, 0)


def passes(checks: list[QuantizationCheck]) -> bool:
    """The ``auto`` rule: enough agreement on each unlabelled check (the training images) and on the
    held-out images together, and int8 not significantly worse than float32 on those held-out images."""
    labelled = _labelled(checks)
    pooled = heldout_agreement(checks)
    p_value = worse_p_value(checks)
    return (
        all(c.agreement >= MIN_AGREEMENT for c in checks if c not in labelled)
        and (pooled is None or pooled >= MIN_AGREEMENT - 1e-9)
        and (p_value is None or p_value >= HELD_OUT_ALPHA)
    )


def describe_checks(checks: list[QuantizationCheck]) -> str:
    """One line for logs: the agreements and the held-out errors that :func:`passes` judges."""
    labelled = _labelled(checks)
    parts = [
        f"agreement {c.agreement:.2%} on {c.on or 'unlabelled images'}" for c in checks if c not in labelled
    ]
    pooled = heldout_agreement(checks)
    if pooled is not None:
        parts.append(f"agreement {pooled:.2%} on the held-out images")
    text = ", ".join(parts) + f" (needs {MIN_AGREEMENT:.0%})"
    if labelled:
        int8_only = sum(_discordant(c)[0] for c in labelled)
        float_only = sum(_discordant(c)[1] for c in labelled)
        text += (
            f"; {sum(c.int8_errors or 0 for c in labelled)} int8 vs "
            f"{sum(c.float_errors or 0 for c in labelled)} float32 errors on "
            f"{sum(c.images for c in labelled)} held-out images ({int8_only} only int8 gets wrong, "
            f"{float_only} only float32; p = {worse_p_value(checks):.3f}, needs >= {HELD_OUT_ALPHA})"
        )
    return text


def run_graph(onnx_bytes: bytes, x: np.ndarray, threads: int = 1, input_name: str = "input") -> np.ndarray:
    """Probabilities of a graph on normalized float32 NCHW images (for the checks)."""
    from sconeflow.model.artifact import cpu_session

    session = cpu_session(onnx_bytes, threads)
    outs = [session.run(None, {input_name: x[i : i + 256]})[0] for i in range(0, len(x), 256)]
    return np.concatenate(outs) if outs else np.zeros((0, 0), dtype=np.float32)
