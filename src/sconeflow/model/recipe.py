"""Training hyperparameters (SageMaker image-classification names where they exist) and presets.

No torch import here: the CLI builds a :class:`TrainConfig` before any heavy module is loaded.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from sconeflow.model.errors import InvalidHyperparameter

TTA_CHOICES = ("none", "flip", "auto")
DISTILL_TARGET_CHOICES = ("live", "fixed")
STUDENT_CALIBRATION_CHOICES = ("members", "holdout")
QUANTIZE_CHOICES = ("none", "int8", "auto")
PRECISION_CHOICES = ("auto", "float32", "bfloat16")
MAX_SEED = 2**32 - 1


@dataclass(frozen=True)
class TrainConfig:
    """One training job's settings. Defaults are the benchmarked recipe (see docs/training.md)."""

    # SageMaker built-in image-classification names.
    epochs: int = 30
    learning_rate: float = 0.2
    mini_batch_size: int = 64
    num_classes: int | None = None  # checked against classes.json when given
    image_shape: str = "3,32,32"
    momentum: float = 0.9
    weight_decay: float = 5e-4
    # sconeflow extras.
    label_smoothing: float = 0.2
    ema_decay: float = 0.98
    warmup_fraction: float = 0.2
    widths: tuple[int, int, int] = (64, 256, 256)
    seed: int = 0
    # 5 members (was 3 until 2026-11-24): chosen by 5-fold cross-validation on the training images together
    # with bf16 training, which pays for the two extra members (docs/training.md, session 7).
    ensemble_size: int = 5
    distill: bool = True
    distill_epochs: int | None = None  # default: same as epochs
    distill_weight: float = 0.7  # weight of the teachers' soft labels vs the smoothed hard label
    # The distilled student's widths (None: the members'). 32-128-128 (~0.27x the multiply-adds) gives a
    # flip-TTA graph under 1 ms but was no better on validation and lost ~2 points on the 3-seed benchmark,
    # so the student keeps the members' widths by default (docs/training.md, session 4).
    student_widths: tuple[int, int, int] | None = None
    # "fixed": the teachers' image+flip probabilities, computed once per image (the default);
    # "live": the teachers label each augmented batch the student sees (consistent distillation). Live
    # costs ~1.8x per student epoch and was no better on validation (docs/training.md), so it is opt-in.
    distill_targets: str = "fixed"
    val_fraction: float = 0.1
    tta: str = "auto"  # flip TTA in the graph when it helps the members' out-of-fold validation
    calibrate: bool = True  # temperature scaling fitted on the members' out-of-fold predictions
    # Where the distilled student's temperature comes from: "holdout" (one more student, trained without
    # validation fold 0, predicts that fold: costs one more training) or "members" (their out-of-fold T).
    student_calibration: str = "holdout"
    # The shipped graph: "auto" = int8 (about 3-4x faster on x86 with VNNI) when it agrees with the float32
    # graph and is not significantly worse on held-out images (sconeflow.model.quantize.passes), else
    # float32; "int8"; "none".
    quantize: str = "auto"
    # Training arithmetic: "bfloat16" runs the forward and backward passes under bf16 autocast (weights,
    # optimizer and EMA stay float32); "auto" picks it where the hardware has native bf16 (x86 AVX-512
    # BF16/AMX, CUDA with bf16), else "float32". Inference and export are float32 either way.
    precision: str = "auto"
    augment: bool = True  # random crops (4 px reflect padding) and horizontal flips
    # Per-image brightness/contrast/saturation jitter after the crops and flips (train.color_jitter).
    color_jitter: bool = False
    num_threads: int = 2
    device: str = "auto"
    bucket: str | None = None
    evaluate_test: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        checks = [
            (self.epochs >= 1, "epochs must be >= 1"),
            (
                math.isfinite(self.learning_rate) and self.learning_rate > 0,
                "learning_rate must be a finite number > 0",
            ),
            (self.mini_batch_size >= 1, "mini_batch_size must be >= 1"),
            (self.num_classes is None or self.num_classes >= 2, "num_classes must be >= 2"),
            (0 <= self.momentum < 1, "momentum must be in [0, 1)"),
            (self.weight_decay >= 0, "weight_decay must be >= 0"),
            (0 <= self.label_smoothing < 1, "label_smoothing must be in [0, 1)"),
            (0 <= self.ema_decay < 1, "ema_decay must be in [0, 1)"),
            (0 <= self.warmup_fraction < 1, "warmup_fraction must be in [0, 1)"),
            (
                len(self.widths) == 3 and all(w >= 1 for w in self.widths),
                "widths must be three positive ints",
            ),
            (
                self.student_widths is None
                or (len(self.student_widths) == 3 and all(w >= 1 for w in self.student_widths)),
                "student_widths must be three positive ints",
            ),
            (self.ensemble_size >= 1, "ensemble_size must be >= 1"),
            (0 <= self.val_fraction < 0.5, "val_fraction must be in [0, 0.5)"),
            (0 <= self.distill_weight <= 1, "distill_weight must be in [0, 1]"),
            (self.distill_epochs is None or self.distill_epochs >= 1, "distill_epochs must be >= 1"),
            (self.tta in TTA_CHOICES, f"tta must be one of {', '.join(TTA_CHOICES)}"),
            (
                self.distill_targets in DISTILL_TARGET_CHOICES,
                f"distill_targets must be one of {', '.join(DISTILL_TARGET_CHOICES)}",
            ),
            (
                self.student_calibration in STUDENT_CALIBRATION_CHOICES,
                f"student_calibration must be one of {', '.join(STUDENT_CALIBRATION_CHOICES)}",
            ),
            (self.quantize in QUANTIZE_CHOICES, f"quantize must be one of {', '.join(QUANTIZE_CHOICES)}"),
            (
                self.precision in PRECISION_CHOICES,
                f"precision must be one of {', '.join(PRECISION_CHOICES)}",
            ),
            (self.num_threads >= 1, "num_threads must be >= 1"),
            # numpy's generators take no negative seed, and torch.manual_seed none past 2**64 - 1 (the
            # members use seed * 1000 + m): either would be a traceback after the job was created.
            (0 <= self.seed <= MAX_SEED, f"seed must be in 0..{MAX_SEED}"),
            (self.device in ("auto", "cpu", "cuda"), "device must be auto, cpu or cuda"),
        ]
        for ok, message in checks:
            if not ok:
                raise InvalidHyperparameter(message)
        if self.input_shape != (3, 32, 32):
            raise InvalidHyperparameter(
                f"image_shape {self.image_shape!r} is not supported: the prepared images are 3,32,32"
            )

    @property
    def input_shape(self) -> tuple[int, int, int]:
        try:
            parts = tuple(int(p) for p in self.image_shape.split(","))
        except ValueError as exc:
            raise InvalidHyperparameter(f"image_shape {self.image_shape!r} must look like 3,32,32") from exc
        if len(parts) != 3:
            raise InvalidHyperparameter(f"image_shape {self.image_shape!r} must look like 3,32,32")
        return parts  # type: ignore[return-value]

    @property
    def uses_student(self) -> bool:
        return self.ensemble_size > 1 and self.distill

    @property
    def uses_calibration_student(self) -> bool:
        """An extra student trained without fold 0, only to fit the exported student's temperature."""
        return (
            self.uses_student
            and self.calibrate
            and self.student_calibration == "holdout"
            and self.val_fraction > 0
        )

    def hyperparameters(self) -> dict[str, str]:
        """SageMaker-style hyperparameters: every value a string."""
        out: dict[str, str] = {}
        for key, value in asdict(self).items():
            if key in ("extra", "bucket") or value is None:
                continue
            if isinstance(value, tuple | list):
                value = ",".join(str(v) for v in value)
            out[key] = str(value).lower() if isinstance(value, bool) else str(value)
        return out

    def with_(self, **changes: Any) -> TrainConfig:
        return replace(self, **changes)

    @classmethod
    def fast(cls, **changes: Any) -> TrainConfig:
        """A short schedule for quick looks: one small net, 10 epochs (about 20 s of 2-core CPU)."""
        base = {"epochs": 10, "widths": (32, 128, 128), "ensemble_size": 1, "distill": False}
        base.update(changes)
        return cls(**base)

    @classmethod
    def tiny(cls, **changes: Any) -> TrainConfig:
        """For tests on synthetic data: a few seconds."""
        base = {
            "epochs": 5,
            "widths": (8, 16, 16),
            "ensemble_size": 1,
            "distill": False,
            "mini_batch_size": 16,
            "learning_rate": 0.1,
            "num_threads": 1,  # tiny tensors: a second thread only adds synchronisation
        }
        base.update(changes)
        return cls(**base)
