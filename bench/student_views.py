"""Compare inference-side candidates on the distilled student in 5-fold cross-validation (validation only).

Each fold trains the default recipe's members and student (float32 graph, no int8, no calibration twin:
the student is the very network the default job ships) on the other 800 training images of the shared
mini dataset (train_holdout's partition; the real test split is never read), plus a second student with
the same soft targets, then predicts the held-out fold with several view sets. Every row is scored on
the same trained networks, so the differences are paired: only the views (or the second student) differ.

    for k in 0 1 2 3 4; do python bench/student_views.py --split $k --json views-$k.json; done
    python bench/student_views.py --summarize views-*.json

Rows: ``plain``, ``flip`` (the default graph), ``shift4`` (x, flip x, x shifted by -1/-1, flip of x
shifted by +1/+1), ``shift4b`` (x, flip x, both shifts unflipped), ``airbench6`` (flip of x and both
shifts, weights 1/2, 1/4, 1/4), ``two-students`` (each with flip), ``two-students-shift4`` and
``teachers`` (the 5 members with flip). Errors and NLL are of the untempered probabilities (T = 1).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from holdout_data import add_run_options, load_fold, source_missing  # noqa: E402  (bench/, beside this file)
from sconeflow.model.recipe import TrainConfig  # noqa: E402
from sconeflow.model.train import (  # noqa: E402
    distillation_targets,
    fit,
    fit_network,
    smoothed_labels,
    teacher_probabilities,
    to_tensor,
)

STUDENT_SEED = 999  # the job's student: config.seed * 1000 + 999 (its calibration twin: + 998)
SECOND_STUDENT_SEED = 997


def shifted(x: torch.Tensor, offset: int) -> torch.Tensor:
    """``x`` moved by one pixel on both axes (offset 0: towards the bottom right, 2: the top left)."""
    padded = F.pad(x, (1, 1, 1, 1), mode="reflect")
    return padded[:, :, offset : offset + x.shape[2], offset : offset + x.shape[3]]


def flipped(x: torch.Tensor) -> torch.Tensor:
    return x.flip(3)


View = Callable[[torch.Tensor], torch.Tensor]
VIEW_SETS: dict[str, list[tuple[float, View]]] = {
    "plain": [(1.0, lambda x: x)],
    "flip": [(0.5, lambda x: x), (0.5, flipped)],
    "shift4": [
        (0.25, lambda x: x),
        (0.25, flipped),
        (0.25, lambda x: shifted(x, 0)),
        (0.25, lambda x: flipped(shifted(x, 2))),
    ],
    "shift4b": [
        (0.25, lambda x: x),
        (0.25, flipped),
        (0.25, lambda x: shifted(x, 0)),
        (0.25, lambda x: shifted(x, 2)),
    ],
    "airbench6": [
        (0.25, lambda x: x),
        (0.25, flipped),
        (0.125, lambda x: shifted(x, 0)),
        (0.125, lambda x: flipped(shifted(x, 0))),
        (0.125, lambda x: shifted(x, 2)),
        (0.125, lambda x: flipped(shifted(x, 2))),
    ],
}


@torch.no_grad()
def probabilities(nets: list[nn.Module], x: torch.Tensor, views: str) -> torch.Tensor:
    """Mean softmax over ``nets`` and the weighted views of ``x`` (the exported graph's arithmetic)."""
    total = torch.zeros(len(x), 2)
    for net in nets:
        net.eval()
        for weight, view in VIEW_SETS[views]:
            total += weight * torch.softmax(net(view(x).contiguous(memory_format=torch.channels_last)), 1)
    return total / len(nets)


def score(probs: torch.Tensor, y: torch.Tensor) -> dict:
    wrong = probs.argmax(1) != y
    nll = float(-probs[torch.arange(len(y)), y].clamp_min(1e-12).log().sum())
    return {"errors": int(wrong.sum()), "nll_sum": nll, "wrong": wrong.nonzero().flatten().tolist()}


def train_student(
    x: torch.Tensor,
    labels: np.ndarray,
    teacher: torch.Tensor,
    config: TrainConfig,
    precision: str,
    *,
    seed: int = STUDENT_SEED,
    **fit_options: float,
) -> nn.Module:
    """A student trained as the job trains its own (targets, schedule, widths); ``seed`` is the offset the
    job adds to ``config.seed * 1000``; ``fit_options`` (``mixup_alpha``, ``sam_rho``) go to fit_network."""
    smoothed = smoothed_labels(torch.from_numpy(labels), 2, config.label_smoothing)
    student, _ = fit_network(
        x,
        distillation_targets(teacher, smoothed, config.distill_weight),
        config,
        2,
        config.seed * 1000 + seed,
        epochs=config.distill_epochs or config.epochs,
        stage="student",
        precision=precision,
        widths=config.student_widths,
        **fit_options,
    )
    return student.cpu()


def run_fold(source: Path, split: int, threads: int, epochs: int, cache: Path | None = None) -> dict:
    train, held = load_fold(source, split)
    config = TrainConfig(
        seed=split, num_threads=threads, epochs=epochs, student_calibration="members", quantize="none"
    )
    t0 = time.perf_counter()
    result = fit(train, config)
    fit_seconds = time.perf_counter() - t0
    device = torch.device("cpu")
    x = to_tensor(train.images, result.mean, result.std, device)
    teacher = teacher_probabilities(result.teachers, x)
    t1 = time.perf_counter()
    second = train_student(x, train.labels, teacher, config, result.precision, seed=SECOND_STUDENT_SEED)
    second_seconds = time.perf_counter() - t1
    student = result.model.members[0]
    xh = to_tensor(held.images, result.mean, result.std, device)
    yh = torch.from_numpy(held.labels)
    rows = {name: score(probabilities([student], xh, name), yh) for name in VIEW_SETS}
    rows["two-students"] = score(probabilities([student, second], xh, "flip"), yh)
    rows["two-students-shift4"] = score(probabilities([student, second], xh, "shift4"), yh)
    rows["teachers"] = score(probabilities(list(result.teachers), xh, "flip"), yh)
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
        torch.save(
            {
                "teacher": teacher,
                "mean": result.mean,
                "std": result.std,
                "student_flip": probabilities([student], xh, "flip"),
                "second_flip": probabilities([second], xh, "flip"),
                "teachers_flip": probabilities(list(result.teachers), xh, "flip"),
                "precision": result.precision,
                "student_state": student.state_dict(),
            },
            cache / f"fold-{split}.pt",
        )
    return {
        "split": split,
        "held_out_images": len(yh),
        "flip_tta_chosen": result.flip_tta,
        "fit_wall_seconds": round(fit_seconds, 1),
        "second_student_seconds": round(second_seconds, 1),
        "rows": rows,
    }


def summarize(paths: list[Path]) -> None:
    folds = [json.loads(p.read_text()) for p in paths]
    images = sum(f["held_out_images"] for f in folds)
    base = {(f["split"], i) for f in folds for i in f["rows"]["flip"]["wrong"]}
    print(f"{len(folds)} folds, {images} held-out images; paired against 'flip' (the default graph)")
    for name in folds[0]["rows"]:
        wrong = {(f["split"], i) for f in folds for i in f["rows"][name]["wrong"]}
        per_fold = "/".join(str(f["rows"][name]["errors"]) for f in folds)
        nll = sum(f["rows"][name]["nll_sum"] for f in folds) / images
        print(
            f"{name:20s} errors {len(wrong):4d} ({per_fold})  NLL {nll:.4f}  "
            f"vs flip: -{len(base - wrong)} +{len(wrong - base)}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", type=int, default=0, help="the held-out fold (and the job's seed)")
    parser.add_argument("--summarize", type=Path, nargs="+", metavar="JSON", help="print the table of runs")
    parser.add_argument("--epochs", type=int, default=TrainConfig().epochs, help="a smoke test: fewer")
    parser.add_argument("--cache", type=Path, help="save the fold's teachers for bench/student_screen.py")
    add_run_options(parser)
    args = parser.parse_args()
    if args.summarize:
        summarize(args.summarize)
        return 0
    if source_missing(args.source):
        return 2
    row = run_fold(args.source, args.split, args.threads, args.epochs, args.cache)
    for name, r in row["rows"].items():
        print(f"split {args.split} {name:20s} errors {r['errors']:3d}  NLL {r['nll_sum'] / 200:.4f}")
    print(f"fit {row['fit_wall_seconds']} s, second student {row['second_student_seconds']} s")
    if args.json:
        args.json.write_text(json.dumps(row, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
