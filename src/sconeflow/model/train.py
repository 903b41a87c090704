"""Training: the airbench-style recipe, ensembles, distillation, export, and training-job records.

``train(settings, TrainConfig(...))`` reads the prepared split from the bucket, holds out stratified
validation folds of the training set (never the test split) for model selection, trains ``ensemble_size``
members (each holding out a different fold), optionally distills the ensemble into one student trained on
all training images, exports the result as ONE ONNX graph that outputs probabilities, evaluates it on the
test split (reported only, never used for a choice), writes ``models/<job>/output/model.tar.gz`` and
records the job.
"""

from __future__ import annotations

import copy
import itertools
import logging
import math
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import sconeflow
from sconeflow.config import Settings
from sconeflow.model.artifact import (
    ARTIFACT_FORMAT,
    FORMAT_VERSION,
    artifact_key,
    build_artifact,
    read_artifact,
)
from sconeflow.model.calibration import Calibration, calibrate
from sconeflow.model.dataload import SplitData, describe_error, load_split_data
from sconeflow.model.errors import (
    InvalidHyperparameter,
    QuantizationFailed,
    TrainingDiverged,
    TrainingStopped,
)
from sconeflow.model.export import INPUT_NAME, ONNX_OPSET, OUTPUT_NAME, export_onnx
from sconeflow.model.jobs import TrainingJob, TrainingJobs
from sconeflow.model.net import AirbenchNet, ProbabilityModel, count_parameters
from sconeflow.model.quantize import (
    HELD_OUT_ALPHA,
    MIN_AGREEMENT,
    compare,
    default_float_nodes,
    describe_checks,
    heldout_agreement,
    passes,
    quantize_int8,
    run_graph,
    worse_p_value,
)
from sconeflow.model.recipe import TrainConfig
from sconeflow.store import ObjectStore, open_store

log = logging.getLogger(__name__)

CROP_PAD = 4
MAX_CALIBRATION_IMAGES = 1000  # the mini dataset's whole training split; a sample of larger ones
N_FOLDS_MAX = 10


@dataclass(frozen=True)
class EpochReport:
    stage: str  # "member 1/3", "student", "model"
    epoch: int
    epochs: int
    loss: float
    train_accuracy: float
    val_accuracy: float | None
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "epoch": self.epoch,
            "loss": round(self.loss, 5),
            "train_accuracy": round(self.train_accuracy, 5),
            "val_accuracy": None if self.val_accuracy is None else round(self.val_accuracy, 5),
            "seconds": round(self.seconds, 3),
        }


EpochCallback = Callable[[EpochReport], None]


@dataclass
class FitResult:
    model: ProbabilityModel
    mean: list[float]
    std: list[float]
    classes: list[str]
    val_metrics: dict[str, float] = field(default_factory=dict)
    epochs: list[EpochReport] = field(default_factory=list)
    cpu_seconds: float = 0.0
    wall_seconds: float = 0.0
    flip_tta: bool = False
    teachers: list[nn.Module] = field(default_factory=list)  # the ensemble members (before distillation)
    calibration: Calibration | None = None  # the fitted temperature (None: not calibrated)
    calibration_images: np.ndarray | None = None  # normalized images the model trained on (int8 ranges)
    # Models of this recipe with images each never saw, for the int8 check: the calibration student (or the
    # single model) first, then every ensemble member on its own validation fold.
    heldout: list[HeldOut] = field(default_factory=list)
    precision: str = "float32"  # the training arithmetic actually used (config "auto" resolved)


@dataclass
class HeldOut:
    """A model trained by the same recipe and validation images it never saw (``model=None``: the
    exported model itself)."""

    model: ProbabilityModel | None
    images: np.ndarray  # normalized float32 NCHW
    labels: np.ndarray
    source: str
    calibration: np.ndarray | None = None  # the model's own training images (None: the exported model's)


# -- tensors and augmentation ---------------------------------------------------------------------


def native_bfloat16(device: torch.device) -> bool:
    """Whether ``device`` runs bfloat16 matrix arithmetic natively (else autocast only emulates it)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    cpu = torch.cpu
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")  # private in torch 2.13: guarded
    return any(bool(getattr(cpu, name, lambda: False)()) for name in checks)


def resolve_precision(requested: str, device: torch.device) -> str:
    """``auto`` -> ``bfloat16`` on hardware with native bf16, else ``float32``."""
    if requested == "auto":
        return "bfloat16" if native_bfloat16(device) else "float32"
    return requested


def pick_device(name: str) -> torch.device:
    if name == "cuda" or (name == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise InvalidHyperparameter("device cuda requested but CUDA is not available")
        return torch.device("cuda")
    return torch.device("cpu")


def normalization_stats(images: np.ndarray) -> tuple[list[float], list[float]]:
    x = images.reshape(-1, 3).astype(np.float64) / 255.0
    return [round(float(v), 6) for v in x.mean(axis=0)], [round(float(v), 6) for v in x.std(axis=0)]


def to_tensor(images: np.ndarray, mean: list[float], std: list[float], device: torch.device) -> torch.Tensor:
    x = torch.from_numpy(np.ascontiguousarray(images)).to(device).permute(0, 3, 1, 2).float().div_(255.0)
    m = torch.tensor(mean, device=device).view(1, 3, 1, 1)
    s = torch.tensor(std, device=device).view(1, 3, 1, 1)
    return ((x - m) / s).contiguous(memory_format=torch.channels_last)


def augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random 32x32 crops of the 4px reflect-padded images and random horizontal flips."""
    n, _, h, w = x.shape
    padded = F.pad(x, (CROP_PAD,) * 4, mode="reflect")
    offsets = torch.randint(0, 2 * CROP_PAD + 1, (n, 2), generator=generator).tolist()
    out = torch.stack([padded[i, :, dy : dy + h, dx : dx + w] for i, (dy, dx) in enumerate(offsets)])
    flip = torch.rand(n, generator=generator) < 0.5
    out[flip] = out[flip].flip(3)
    return out.contiguous(memory_format=torch.channels_last)


def mixup(
    x: torch.Tensor, targets: torch.Tensor, alpha: float, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """``lam * batch + (1 - lam) * shuffled batch`` for images and targets, ``lam ~ Beta(alpha, alpha)``."""
    seed = int(torch.randint(2**31 - 1, (1,), generator=generator))
    lam = float(np.random.default_rng(seed).beta(alpha, alpha))
    perm = torch.randperm(len(x), generator=generator).to(x.device)
    return lam * x + (1 - lam) * x[perm], lam * targets + (1 - lam) * targets[perm]


def random_uniform(n: int, low: float, high: float, generator: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=generator)


def color_jitter(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Per-image saturation (x0.6-1.4), contrast (x0.7-1.3) and brightness (+-0.6 in normalized units,
    about +-0.15 of the 0-1 pixel range) jitter of normalized NCHW images."""
    n = len(x)
    brightness = random_uniform(n, -0.6, 0.6, generator).view(n, 1, 1, 1).to(x)
    contrast = random_uniform(n, 0.7, 1.3, generator).view(n, 1, 1, 1).to(x)
    saturation = random_uniform(n, 0.6, 1.4, generator).view(n, 1, 1, 1).to(x)
    gray = x.mean(1, keepdim=True)
    out = gray + (x - gray) * saturation
    mean = out.mean((1, 2, 3), keepdim=True)
    out = mean + (out - mean) * contrast + brightness
    return out.contiguous(memory_format=torch.channels_last)


def augment_with_color(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """:func:`augment`, then :func:`color_jitter`."""
    return color_jitter(augment(x, generator), generator)


Augmenter = Callable[[torch.Tensor, torch.Generator], torch.Tensor]
NetFactory = Callable[[int, tuple[int, int, int]], AirbenchNet]  # (num_classes, widths) -> a fresh net


def augmenter_for(config: TrainConfig) -> Augmenter:
    return augment_with_color if config.color_jitter else augment


def stratified_folds(labels: np.ndarray, n_folds: int, seed: int) -> np.ndarray:
    """A fold id per sample; each class is spread evenly over the folds."""
    rng = np.random.default_rng(seed)
    folds = np.empty(len(labels), dtype=np.int64)
    offset = 0
    for cls in np.unique(labels):
        idx = np.flatnonzero(labels == cls)
        rng.shuffle(idx)
        folds[idx] = (np.arange(len(idx)) + offset) % n_folds
        offset += len(idx)
    return folds


# -- one network --------------------------------------------------------------------------------


class _Ema:
    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.steps = 0
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        # Warm-up: early on the average follows the weights closely (matters for short schedules).
        self.steps += 1
        decay = min(self.decay, (1 + self.steps) / (10 + self.steps))
        ema_state = self.model.state_dict()
        for name, value in model.state_dict().items():
            target = ema_state[name]
            if value.dtype.is_floating_point:
                target.lerp_(value, 1 - decay)
            else:
                target.copy_(value)


def _lr_lambda(total_steps: int, warmup_fraction: float) -> Callable[[int], float]:
    warm = max(1, int(total_steps * warmup_fraction))

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        return max(0.0, (total_steps - step) / max(1, total_steps - warm))

    return factor


@torch.no_grad()
def predict_logits_probs(
    model: nn.Module, x: torch.Tensor, flip: bool = False, batch: int = 500
) -> torch.Tensor:
    model.eval()
    outs = []
    for i in range(0, len(x), batch):
        xb = x[i : i + batch]
        probs = torch.softmax(model(xb), dim=1)
        if flip:
            probs = (probs + torch.softmax(model(xb.flip(3)), dim=1)) / 2
        outs.append(probs)
    return torch.cat(outs)


def smoothed_labels(y: torch.Tensor, num_classes: int, smoothing: float) -> torch.Tensor:
    """One-hot labels [N, C] with ``smoothing`` of the mass spread evenly over the classes."""
    return F.one_hot(y, num_classes).float() * (1 - smoothing) + smoothing / num_classes


def teacher_probabilities(members: list[nn.Module], x: torch.Tensor) -> torch.Tensor:
    """The members' mean probabilities over each image and its mirror: the student's soft labels."""
    return torch.stack([predict_logits_probs(net, x, flip=True) for net in members]).mean(0)


def distillation_targets(teacher: torch.Tensor, smoothed: torch.Tensor, weight: float) -> torch.Tensor:
    """What the student learns: ``weight`` x the teachers' probabilities + the rest x the smoothed label."""
    return weight * teacher + (1 - weight) * smoothed


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The batch's mean cross-entropy against soft ``targets`` [N, C]."""
    return torch.sum(-targets * F.log_softmax(logits, dim=1), dim=1).mean()


def batch_bounds(n: int, steps: int) -> list[tuple[int, int]]:
    """``steps`` batches of near-equal size covering ``n`` samples (sizes differ by at most one).

    Slicing by ``mini_batch_size`` left a remainder batch: 900 images in batches of 64 end with a batch
    of 4, whose BatchNorm statistics (momentum 0.4) overwrote the running statistics every epoch.
    """
    return list(itertools.pairwise(i * n // steps for i in range(steps + 1)))


@dataclass(frozen=True)
class Teacher:
    """The ensemble a student learns from, asked on each augmented batch (not once per image)."""

    members: list[nn.Module]
    weight: float

    @torch.no_grad()
    def probabilities(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([torch.softmax(m.eval()(x), dim=1) for m in self.members]).mean(0)


def fit_network(
    x: torch.Tensor,
    targets: torch.Tensor,
    config: TrainConfig,
    num_classes: int,
    seed: int,
    *,
    epochs: int,
    stage: str,
    val: tuple[torch.Tensor, torch.Tensor] | None = None,
    on_epoch: EpochCallback | None = None,
    teacher: Teacher | None = None,
    widths: tuple[int, int, int] | None = None,
    precision: str = "float32",
    augmenter: Augmenter | None = None,
    mixup_alpha: float = 0.0,
    sam_rho: float = 0.0,
    net_factory: NetFactory = AirbenchNet,
) -> tuple[nn.Module, list[EpochReport]]:
    """Train one net on ``x`` with soft ``targets`` [N, C]; return its EMA copy (eval mode).

    With a ``teacher``, each batch's targets are ``teacher.weight`` x the teacher's probabilities on the
    very augmented images the net sees (consistent distillation) + the rest x ``targets``.
    ``precision="bfloat16"`` runs the forward/backward passes under bf16 autocast; the weights, the
    optimizer, the loss and the EMA stay float32. ``augmenter`` draws each epoch's augmented images (when
    ``config.augment``; default :func:`augmenter_for` the config): the benches try others through it.
    ``mixup_alpha > 0`` blends each batch with a shuffled copy of itself, images and targets alike, with
    a weight drawn from Beta(alpha, alpha) per batch (mixup; the benches screen it). ``sam_rho > 0``
    takes each step with the gradient at the weights moved ``sam_rho`` along the normalized gradient
    (sharpness-aware minimization; two passes per batch; the benches screen it). ``net_factory`` builds
    the untrained net (an :class:`AirbenchNet` or a subclass: the benches screen architectures through it).
    """
    if sam_rho < 0:
        raise InvalidHyperparameter(f"sam_rho must be >= 0, got {sam_rho}")
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    augmenter = augmenter or augmenter_for(config)
    model = net_factory(num_classes, widths or config.widths).to(x.device)
    model.init_whitening(x)
    model = model.to(memory_format=torch.channels_last)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(
        params,
        lr=config.learning_rate,
        momentum=config.momentum,
        nesterov=config.momentum > 0,
        weight_decay=config.weight_decay,
    )
    n = len(x)
    steps_per_epoch = math.ceil(n / min(config.mini_batch_size, n))
    bounds = batch_bounds(n, steps_per_epoch)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, _lr_lambda(steps_per_epoch * epochs, config.warmup_fraction)
    )
    ema = _Ema(model, config.ema_decay) if config.ema_decay > 0 else None
    reports: list[EpochReport] = []
    hard = targets.argmax(dim=1)
    for epoch in range(1, epochs + 1):
        t0 = time.perf_counter()
        model.train()
        xa = augmenter(x, generator) if config.augment else x
        order = torch.randperm(n, generator=generator).to(x.device)
        total_loss, correct = 0.0, 0
        for start, stop in bounds:
            idx = order[start:stop]
            xb, tb = xa[idx], targets[idx]
            if teacher is not None:
                tb = teacher.weight * teacher.probabilities(xb) + (1 - teacher.weight) * tb
            if mixup_alpha > 0:
                xb, tb = mixup(xb, tb, mixup_alpha, generator)
            with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=precision == "bfloat16"):
                logits = model(xb)
            logits = logits.float()
            loss = soft_cross_entropy(logits, tb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if sam_rho > 0:
                _sharpness_aware_gradient(model, params, xb, tb, sam_rho, precision)
            optimizer.step()
            scheduler.step()
            if ema is not None:
                ema.update(model)
            total_loss += float(loss.detach()) * len(idx)
            correct += int((logits.argmax(dim=1) == hard[idx]).sum())
        final = ema.model if ema is not None else model
        val_acc = None
        if val is not None and len(val[0]):
            val_acc = float((predict_logits_probs(final, val[0]).argmax(1) == val[1]).float().mean())
        report = EpochReport(
            stage, epoch, epochs, total_loss / n, correct / n, val_acc, time.perf_counter() - t0
        )
        if not math.isfinite(report.loss):
            # The weights are NaN/inf from here on: the graph would output NaN probabilities, which
            # argmax reads as the first class. Fail the job rather than ship that as Completed.
            raise TrainingDiverged(
                f"the training loss became {report.loss} at {stage} epoch {epoch}/{epochs}: the weights "
                f"are no longer finite (learning_rate {config.learning_rate} is likely too high)"
            )
        reports.append(report)
        log.info("%s epoch %d/%d loss %.4f val %s", stage, epoch, epochs, report.loss, val_acc)
        if on_epoch is not None:
            on_epoch(report)
    final = ema.model if ema is not None else model
    return final.eval(), reports


def _sharpness_aware_gradient(
    model: nn.Module,
    params: list[nn.Parameter],
    xb: torch.Tensor,
    tb: torch.Tensor,
    rho: float,
    precision: str,
) -> None:
    """Replace the gradients in ``params`` (taken at w) by those at w + rho * g / ||g||, then restore w.

    The second pass leaves the BatchNorm running statistics alone: they describe the weights, not the
    perturbed point.
    """
    with torch.no_grad():
        grads = [p.grad for p in params if p.grad is not None]
        scale = rho / (torch.linalg.vector_norm(torch.stack([g.norm() for g in grads])) + 1e-12)
        moves = [p.grad * scale if p.grad is not None else None for p in params]
        for p, move in zip(params, moves, strict=True):
            if move is not None:
                p.add_(move)
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.momentum = 0.0
    try:
        for p in params:
            p.grad = None
        with torch.autocast(xb.device.type, dtype=torch.bfloat16, enabled=precision == "bfloat16"):
            logits = model(xb)
        soft_cross_entropy(logits.float(), tb).backward()
    finally:
        for m, momentum in zip(norms, momenta, strict=True):
            m.momentum = momentum
        with torch.no_grad():
            for p, move in zip(params, moves, strict=True):
                if move is not None:
                    p.sub_(move)


def validation_fold_count(config: TrainConfig) -> int:
    """How many validation folds the members' held-out images are drawn from (``val_fraction`` > 0)."""
    return min(N_FOLDS_MAX, max(2, round(1 / config.val_fraction)))


def fit_member(
    x: torch.Tensor,
    y: torch.Tensor,
    smoothed: torch.Tensor,
    folds: np.ndarray | None,
    m: int,
    config: TrainConfig,
    *,
    n_folds: int,
    precision: str,
    on_epoch: EpochCallback | None = None,
) -> tuple[nn.Module, list[EpochReport], torch.Tensor, torch.Tensor | None]:
    """Ensemble member ``m`` as the job trains it: on every image but validation fold ``m % n_folds``
    of the fold ids ``folds`` (all images when ``folds`` is None), seed ``config.seed * 1000 + m``.
    Returns the net, its epoch reports and the indices it trained on and held out."""
    stage = f"member {m + 1}/{config.ensemble_size}" if config.ensemble_size > 1 else "model"
    if folds is not None:
        held = torch.from_numpy(folds == (m % n_folds)).to(x.device)
        train_idx, val_idx = (~held).nonzero().flatten(), held.nonzero().flatten()
        val = (x[val_idx], y[val_idx])
    else:
        train_idx, val_idx, val = torch.arange(len(y), device=x.device), None, None
    net, reports = fit_network(
        x[train_idx],
        smoothed[train_idx],
        config,
        smoothed.shape[1],
        config.seed * 1000 + m,
        epochs=config.epochs,
        stage=stage,
        val=val,
        on_epoch=on_epoch,
        precision=precision,
    )
    return net, reports, train_idx, val_idx


def total_epochs(config: TrainConfig) -> int:
    """How many epochs a job runs in all (members plus student), for progress bars."""
    extra = (config.distill_epochs or config.epochs) if config.uses_student else 0
    if config.uses_calibration_student:
        extra *= 2
    return config.epochs * config.ensemble_size + extra


def fit(train: SplitData, config: TrainConfig, on_epoch: EpochCallback | None = None) -> FitResult:
    """Train the recipe on a split; return the probability model to export (with val metrics)."""
    wall0, cpu0 = time.perf_counter(), time.process_time()
    torch.set_num_threads(config.num_threads)
    device = pick_device(config.device)
    precision = resolve_precision(config.precision, device)
    log.info("training in %s on %s", precision, device)
    classes = list(train.classes)
    num_classes = len(classes)
    if config.num_classes is not None and config.num_classes != num_classes:
        raise InvalidHyperparameter(
            f"num_classes={config.num_classes} but classes.json lists {num_classes} classes "
            f"({', '.join(classes)})"
        )
    mean, std = normalization_stats(train.images)
    x = to_tensor(train.images, mean, std, device)
    y = torch.from_numpy(train.labels).to(device)
    smoothed = smoothed_labels(y, num_classes, config.label_smoothing)

    use_val = config.val_fraction > 0
    n_folds = validation_fold_count(config) if use_val else 1
    min_class = int(np.bincount(train.labels, minlength=num_classes).min())
    if use_val and min_class < n_folds:
        log.warning(
            "too few images per class (%d) for %d validation folds; training without validation",
            min_class,
            n_folds,
        )
        use_val, n_folds = False, 1
    folds = (
        stratified_folds(train.labels, n_folds, config.seed) if use_val else np.zeros(len(y), dtype=np.int64)
    )

    members: list[nn.Module] = []
    reports: list[EpochReport] = []
    oof_plain = torch.zeros(len(y), num_classes, device=device)
    oof_flip = torch.zeros(len(y), num_classes, device=device)
    oof_mask = torch.zeros(len(y), dtype=torch.bool, device=device)
    member_val: list[float] = []
    member_splits: list[tuple[torch.Tensor, torch.Tensor]] = []
    for m in range(config.ensemble_size):
        net, member_reports, train_idx, val_idx = fit_member(
            x,
            y,
            smoothed,
            folds if use_val else None,
            m,
            config,
            n_folds=n_folds,
            precision=precision,
            on_epoch=on_epoch,
        )
        reports += member_reports
        members.append(net)
        if val_idx is not None:
            oof_plain[val_idx] = predict_logits_probs(net, x[val_idx])
            oof_flip[val_idx] = predict_logits_probs(net, x[val_idx], flip=True)
            oof_mask[val_idx] = True
            member_splits.append((train_idx, val_idx))
            member_val.append(float((oof_plain[val_idx].argmax(1) == y[val_idx]).float().mean()))

    val_metrics: dict[str, float] = {}
    if oof_mask.any():
        yv = y[oof_mask]
        val_metrics["val_accuracy"] = float((oof_plain[oof_mask].argmax(1) == yv).float().mean())
        val_metrics["val_accuracy_flip_tta"] = float((oof_flip[oof_mask].argmax(1) == yv).float().mean())
        val_metrics["val_images"] = int(oof_mask.sum())
        for i, acc in enumerate(member_val):
            val_metrics[f"val_accuracy_member_{i + 1}"] = acc
    if config.tta == "auto":
        flip_tta = val_metrics.get("val_accuracy_flip_tta", 0) > val_metrics.get("val_accuracy", 0)
    else:
        flip_tta = config.tta == "flip"

    student_heldout: tuple[torch.Tensor, torch.Tensor] | None = None
    twin: nn.Module | None = None
    if config.uses_student:
        teacher = teacher_probabilities(members, x)
        val_metrics["teacher_train_accuracy"] = float((teacher.argmax(1) == y).float().mean())
        live = Teacher(members, config.distill_weight) if config.distill_targets == "live" else None
        targets = (
            smoothed if live is not None else distillation_targets(teacher, smoothed, config.distill_weight)
        )
        student, student_reports = fit_network(
            x,
            targets,
            config,
            num_classes,
            config.seed * 1000 + 999,
            epochs=config.distill_epochs or config.epochs,
            stage="student",
            on_epoch=on_epoch,
            precision=precision,
            teacher=live,
            widths=config.student_widths,
        )
        reports += student_reports
        final_members = [student]
        if config.uses_calibration_student and use_val:
            # Held-out predictions of a student: the same recipe without fold 0, predicting fold 0.
            # (Members 2.. saw fold 0's labels, so its soft targets carry a little of them: a mild leak.)
            held = torch.from_numpy(folds == 0).to(device)
            keep, out = (~held).nonzero().flatten(), held.nonzero().flatten()
            twin, twin_reports = fit_network(
                x[keep],
                targets[keep],
                config,
                num_classes,
                config.seed * 1000 + 998,
                epochs=config.distill_epochs or config.epochs,
                stage="calibration student",
                val=(x[out], y[out]),
                on_epoch=on_epoch,
                precision=precision,
                teacher=live,
                widths=config.student_widths,
            )
            reports += twin_reports
            twin_idx, twin_keep = out, keep
            twin_probs = predict_logits_probs(twin, x[out], flip=flip_tta)
            student_heldout = (twin_probs.clamp_min(1e-30).log(), y[out])
            val_metrics["val_accuracy_calibration_student"] = float(
                (twin_probs.argmax(1) == y[out]).float().mean()
            )
    else:
        final_members = members
    calibration = None
    if student_heldout is not None:
        calibration = calibrate(
            student_heldout[0].cpu().double().numpy(),
            student_heldout[1].cpu().numpy(),
            "student_held_out_fold",
        )
    elif config.calibrate and oof_mask.any():
        # Held-out predictions in the exported graph's form: each training image seen only by the member
        # that did not train on it (log-probabilities = logits up to a per-row constant). The student has
        # no held-out images of its own, so it gets the members' out-of-fold temperature.
        oof = (oof_flip if flip_tta else oof_plain)[oof_mask].clamp_min(1e-30).log()
        source = "members_out_of_fold" + ("_for_student" if config.uses_student else "")
        calibration = calibrate(oof.cpu().double().numpy(), y[oof_mask].cpu().numpy(), source)
    elif config.calibrate:
        log.warning("no validation folds: the model is not calibrated (temperature 1)")
    temperature = calibration.temperature if calibration is not None else 1.0
    final = ProbabilityModel(
        [copy.deepcopy(m).to("cpu") for m in final_members], flip_tta=flip_tta, temperature=temperature
    ).eval()
    heldout: list[HeldOut] = []
    calibration_images = _calibration_sample(x, config.seed)
    if twin is not None:
        twin_cpu = copy.deepcopy(twin).to("cpu")
        twin_model = ProbabilityModel([twin_cpu], flip_tta=flip_tta, temperature=temperature)
        heldout.append(
            HeldOut(
                twin_model.eval(),
                np.ascontiguousarray(x[twin_idx].cpu().numpy()),
                y[twin_idx].cpu().numpy(),
                "calibration student on validation fold 0",
                _calibration_sample(x[twin_keep], config.seed),  # never its held-out fold
            )
        )
    elif len(final_members) == 1 and not config.uses_student and use_val:
        first = folds == 0
        held_mask = torch.from_numpy(first).to(device)
        images = np.ascontiguousarray(x[held_mask].cpu().numpy())
        heldout.append(HeldOut(None, images, train.labels[first], "the model on validation fold 0"))
        # The model never trained on fold 0: its int8 ranges must not come from it either.
        calibration_images = _calibration_sample(x[~held_mask], config.seed)
    if len(members) > 1 and config.quantize != "none":
        # Each member, quantized with ranges from its own training images, on the fold it never saw: the
        # members share the exported model's architecture and recipe, and together they give the int8
        # check ~5x more held-out images than the calibration student alone.
        for m, (net, (train_idx, val_idx)) in enumerate(zip(members, member_splits, strict=True)):
            member_model = ProbabilityModel(
                [copy.deepcopy(net).to("cpu")], flip_tta=flip_tta, temperature=temperature
            )
            heldout.append(
                HeldOut(
                    member_model.eval(),
                    np.ascontiguousarray(x[val_idx].cpu().numpy()),
                    y[val_idx].cpu().numpy(),
                    f"member {m + 1} on its validation fold {m % n_folds}",
                    _calibration_sample(x[train_idx], config.seed),
                )
            )
    return FitResult(
        model=final,
        mean=mean,
        std=std,
        classes=classes,
        val_metrics=val_metrics,
        epochs=reports,
        cpu_seconds=time.process_time() - cpu0,
        wall_seconds=time.perf_counter() - wall0,
        flip_tta=flip_tta,
        teachers=members,
        calibration=calibration,
        calibration_images=calibration_images,
        heldout=heldout,
        precision=precision,
    )


def _calibration_sample(x: torch.Tensor, seed: int) -> np.ndarray:
    """The training images the int8 ranges are fitted on (and checked against): all of them up to
    :data:`MAX_CALIBRATION_IMAGES`, else a fixed random sample of that many."""
    if len(x) > MAX_CALIBRATION_IMAGES:
        pick = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:MAX_CALIBRATION_IMAGES]
        x = x[pick.sort().values.to(x.device)]
    return np.ascontiguousarray(x.cpu().numpy(), dtype=np.float32)


# -- the job --------------------------------------------------------------------------------------


def build_metadata(
    result: FitResult,
    config: TrainConfig,
    job_name: str,
    bucket: str,
    metrics: dict[str, Any],
    quantization: dict[str, Any] | None = None,
) -> dict[str, Any]:
    import onnx
    import onnxruntime

    exported_widths = (config.student_widths or config.widths) if config.uses_student else config.widths
    return {
        "format": ARTIFACT_FORMAT,
        "format_version": FORMAT_VERSION,
        "framework": "onnx",
        "model_file": "model.onnx",
        "classes": result.classes,
        "num_classes": len(result.classes),
        "input": {
            "name": INPUT_NAME,
            "shape": list(config.input_shape),
            "layout": "NCHW",
            "dtype": "float32",
            "color": "RGB",
            "scale": "pixel / 255",
            "normalization": {"mean": result.mean, "std": result.std},
            "formula": "((pixel_uint8 / 255) - mean[c]) / std[c]",
        },
        "preprocessing": {
            "decode": "any PIL-readable image (PNG, JPEG), converted to RGB",
            "resize": "bilinear",
            "resize_to": [config.input_shape[2], config.input_shape[1]],
            "note": "images of another size are resized to the input size without cropping",
        },
        "output": {
            "name": OUTPUT_NAME,
            "kind": "probabilities",
            "shape": ["batch", len(result.classes)],
            "softmax_in_graph": True,
        },
        "architecture": {
            "name": "airbench",
            "widths": list(exported_widths),  # the exported nets'
            "teacher_widths": list(config.widths) if config.uses_student else None,
            "members": len(result.model.members),
            "flip_tta": result.flip_tta,
            "temperature": result.model.temperature,
            "distilled_from": config.ensemble_size if config.uses_student else None,
            "parameters": count_parameters(result.model),
        },
        "calibration": _calibration_doc(result),
        "quantization": quantization or {"method": "none"},
        "metrics": metrics,
        "training": {
            "job_name": job_name,
            "bucket": bucket,
            "hyperparameters": config.hyperparameters(),
            "precision": result.precision,
            "wall_seconds": round(result.wall_seconds, 2),
            "cpu_seconds": round(result.cpu_seconds, 2),
        },
        "versions": {
            "sconeflow": sconeflow.__version__,
            "torch": torch.__version__,
            "onnx": onnx.__version__,
            "onnx_opset": ONNX_OPSET,
            "onnxruntime": onnxruntime.__version__,
            "python": platform.python_version(),
        },
    }


def _calibration_doc(result: FitResult) -> dict[str, Any]:
    cal = result.calibration
    if cal is None:
        return {"method": "none", "temperature": result.model.temperature}
    return {
        "method": "temperature scaling (Guo et al. 2017), NLL-fitted",
        "formula": "softmax(logits / T); ensembles and flip TTA: softmax(log(mean probabilities) / T)",
        "fitted_on": cal.source,
        "images": cal.images,
        **cal.metrics(),
    }


def train(
    settings: Settings,
    config: TrainConfig | None = None,
    *,
    store: ObjectStore | None = None,
    job_name: str | None = None,
    role_arn: str | None = None,
    on_epoch: EpochCallback | None = None,
) -> TrainingJob:
    """Run one training job end to end; the returned record is Completed (errors leave it Failed).

    ``role_arn`` is recorded as the job's RoleArn (as CreateTrainingJob takes it; nothing checks it)."""
    config = config or TrainConfig()
    bucket = config.bucket or settings.bucket
    store = store or open_store(settings.resolved_store_uri)
    jobs = TrainingJobs(settings)
    job = jobs.create(bucket, config.hyperparameters(), name=job_name, role_arn=role_arn)
    log.info("training job %s started", job.name)
    try:
        jobs.set_secondary(job.name, "Downloading")
        train_split = load_split_data(store, bucket, "train", require_classes=2)
        jobs.set_secondary(job.name, "Training", classes=train_split.classes)

        def record(report: EpochReport) -> None:
            jobs.add_epoch(job.name, report.as_dict())
            if on_epoch is not None:
                on_epoch(report)

        result = fit(train_split, config, on_epoch=record)
        jobs.set_secondary(job.name, "Uploading")
        float_bytes = export_onnx(result.model, config.input_shape)
        onnx_bytes, quantization = choose_graph(float_bytes, result, config)
        metrics: dict[str, Any] = dict(result.val_metrics)
        if result.calibration is not None:
            metrics.update(result.calibration.metrics())
        metrics["train_wall_seconds"] = round(result.wall_seconds, 2)
        metrics["train_cpu_seconds"] = round(result.cpu_seconds, 2)
        test_report = None
        if config.evaluate_test:
            test_report = _evaluate_test(
                onnx_bytes, result, config, job.name, bucket, store, metrics, float_bytes=float_bytes
            )
        metadata = build_metadata(result, config, job.name, bucket, metrics, quantization)
        artifact = build_artifact(onnx_bytes, metadata)
        read_artifact(artifact)  # never publish an artifact we could not load
        key = artifact_key(job.name)
        store.create_bucket(bucket, exist_ok=True)
        store.put_object(bucket, key, artifact, content_type="application/x-gzip")
        if test_report is not None:
            from sconeflow.model.evaluate import save_report

            save_report(test_report, store, bucket, f"models/{job.name}/output/evaluation")
        return jobs.complete(job.name, f"s3://{bucket}/{key}", metrics)
    except KeyboardInterrupt as exc:
        jobs.stop(job.name)
        raise TrainingStopped(f"training job {job.name} was interrupted; it is recorded as Stopped") from exc
    except BaseException as exc:
        jobs.fail(job.name, describe_error(exc))
        raise


def choose_graph(float_bytes: bytes, result: FitResult, config: TrainConfig) -> tuple[bytes, dict[str, Any]]:
    """The graph to ship: the float32 export, or its int8 form (``--quantize``), and how it was chosen.

    ``auto`` ships int8 only when it passes :func:`~sconeflow.model.quantize.passes` on the checks below
    (validation and training images only; the test split plays no part).
    """
    if config.quantize == "none" or result.calibration_images is None:
        return float_bytes, {"method": "none"}
    calibration = result.calibration_images
    float_nodes = default_float_nodes(float_bytes)
    try:
        int8_bytes = quantize_int8(float_bytes, calibration, INPUT_NAME, keep_float=float_nodes)
    except QuantizationFailed as exc:
        if config.quantize == "int8":
            raise  # asked for explicitly: the job fails with the reason
        log.warning("shipping the float32 graph: %s", exc)
        return float_bytes, {"method": "none", "requested": config.quantize, "error": str(exc)}
    checks = [
        compare(
            run_graph(float_bytes, calibration, config.num_threads),
            run_graph(int8_bytes, calibration, config.num_threads),
            on="training images (the exported model)",
        )
    ]
    for held in result.heldout:
        held_calibration = calibration if held.calibration is None else held.calibration
        if held.model is None:
            pair = (float_bytes, int8_bytes)
        else:
            held_float = export_onnx(held.model, config.input_shape)
            pair = (held_float, quantize_int8(held_float, held_calibration, INPUT_NAME))
        float_probs, int8_probs = (run_graph(g, held.images, config.num_threads) for g in pair)
        checks.append(
            compare(
                float_probs,
                int8_probs,
                held.labels,
                on=held.source,
                calibration_images=len(held_calibration),
            )
        )
    accepted = config.quantize == "int8" or passes(checks)
    for check in checks:
        log.info("int8 vs float32 on %s: %s", check.on, check.as_dict())
    if not accepted:
        log.warning(
            "the int8 graph failed the check (%s); shipping the float32 graph", describe_checks(checks)
        )
    doc = {
        "method": "int8" if accepted else "none",
        "requested": config.quantize,
        "scheme": (
            "ONNX Runtime static QDQ: Conv/MatMul on uint8 activations (min/max calibration) x int8 "
            "per-channel 7-bit weights; the whitening conv and all other ops float32"
        ),
        "float_nodes": list(float_nodes),
        "calibration_images": len(calibration),
        # the first held-out check's model (the calibration student or the single model): its own
        # training images only (0: no held-out check); every check records its own count
        "heldout_check_calibration_images": checks[1].calibration_images if len(checks) > 1 else 0,
        "rule": (
            f"auto: agreement >= {MIN_AGREEMENT} on the training images and on the held-out images "
            f"together, and int8 not worse than float32 on the held-out images by a one-sided exact sign "
            f"test at {HELD_OUT_ALPHA}"
        ),
        "heldout_agreement": heldout_agreement(checks),
        "heldout_worse_p_value": worse_p_value(checks),
        "checks": [check.as_dict() for check in checks],
        "float32_graph_bytes": len(float_bytes),
        "int8_graph_bytes": len(int8_bytes),
    }
    return (int8_bytes if accepted else float_bytes), doc


def _evaluate_test(
    onnx_bytes: bytes,
    result: FitResult,
    config: TrainConfig,
    job_name: str,
    bucket: str,
    store: ObjectStore,
    metrics: dict[str, Any],
    *,
    float_bytes: bytes | None = None,
) -> Any:
    """Test metrics of the exported graph: reported only, never used to choose anything."""
    from sconeflow.model.artifact import OnnxClassifier
    from sconeflow.model.errors import ManifestMissing
    from sconeflow.model.evaluate import evaluate

    try:
        test_split = load_split_data(store, bucket, "test")
    except ManifestMissing as exc:
        log.warning("no test split to evaluate on: %s", exc)
        return None
    meta = build_metadata(result, config, job_name, bucket, {})
    classifier = OnnxClassifier(onnx_bytes, meta, intra_op_threads=config.num_threads)
    report = evaluate(classifier, test_split)
    metrics["test_accuracy"] = report.accuracy
    metrics["test_ece"] = report.ece
    metrics["test_nll"] = report.nll
    confidence = classifier.predict_proba(test_split.images).max(axis=1)
    metrics["test_mean_confidence"] = float(confidence.mean())
    metrics["test_confidence_at_least_0_93"] = int((confidence >= 0.93).sum())
    if result.model.temperature != 1.0:
        # For information only: the same graph without temperature scaling (never used for a choice).
        raw = copy.copy(result.model)
        raw.temperature = 1.0
        x = to_tensor(test_split.images, result.mean, result.std, torch.device("cpu"))
        with torch.no_grad():
            probs = raw(x).double().numpy()
        from sconeflow.model.evaluate import expected_calibration_error

        labels = test_split.labels
        metrics["test_ece_uncalibrated"] = expected_calibration_error(probs, labels)[0]
        metrics["test_nll_uncalibrated"] = float(
            -np.mean(np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-12, 1.0)))
        )
        metrics["test_mean_confidence_uncalibrated"] = float(probs.max(axis=1).mean())
        metrics["test_confidence_at_least_0_93_uncalibrated"] = int((probs.max(axis=1) >= 0.93).sum())
    metrics["test_images"] = report.n
    metrics["latency_ms_batch1"] = round(classifier.latency_ms(repeats=100), 4)
    if float_bytes is not None and float_bytes != onnx_bytes:
        # For information only: the float32 graph the int8 one was made from.
        float_classifier = OnnxClassifier(float_bytes, meta, intra_op_threads=config.num_threads)
        float_probs = float_classifier.predict_proba(test_split.images)
        metrics["test_accuracy_float32"] = float((float_probs.argmax(1) == test_split.labels).mean())
        metrics["latency_ms_batch1_float32"] = round(float_classifier.latency_ms(repeats=100), 4)
    if config.uses_student and result.teachers:
        # For information only (how much the student keeps of its teachers): never used for a choice.
        x = to_tensor(test_split.images, result.mean, result.std, torch.device("cpu"))
        y = torch.from_numpy(test_split.labels)
        for flip in (False, True):
            with torch.no_grad():
                probs = torch.stack(
                    [predict_logits_probs(m.to("cpu"), x, flip=flip) for m in result.teachers]
                )
            key = "test_accuracy_teachers" + ("_flip_tta" if flip else "")
            metrics[key] = float((probs.mean(0).argmax(1) == y).float().mean())
    return report
