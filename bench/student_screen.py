"""Screen changes to the distilled student cheaply: the teachers are trained once per fold and cached.

A full-job cross-validation retrains 5 members per fold (~5 min of both cores) although a change to the
student leaves them alone. This bench caches, per fold of the 5-fold partition of
``bench/train_holdout.py`` (the real test split is never read), the members' soft labels of the 800
training images and the default student's held-out probabilities; each candidate then costs one student
training per fold. Candidates are ``FIELD=VALUE`` changes to the recipe the student is trained with, or
``mixup_alpha=A`` (mixup on the student's batches) or ``sam_rho=R`` (sharpness-aware steps).

    python bench/student_screen.py --cache /tmp/student-cache --candidate distill_epochs=45
    python bench/student_screen.py --cache /tmp/student-cache --candidate distill_epochs=60 --splits 0 1
    python bench/student_screen.py --cache /tmp/student-cache --candidate sam_rho=0.05
    python bench/student_screen.py --cache /tmp/student-cache --members 7

``--members N`` teaches the default student with N members: the cached 5 plus members 6..N, each trained
(and cached) exactly as an N-member job would train it. ``--candidate seed=S`` changes nothing but the
student's random stream: a null candidate that shows the screen's own noise.

The table is paired against the default student (flip TTA, untempered probabilities): errors of 1000,
NLL, and the images only one of the two gets wrong. ``--report-png PATH`` draws the candidate's pooled
held-out predictions as ``sconeflow evaluate`` draws a test split (confusion matrix, reliability diagram,
the first 64 misclassified images): what its errors look like.

    python bench/student_screen.py --cache /tmp/student-cache --report-png default-student-cv.png
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from holdout_data import FOLDS, add_run_options, load_fold, parse_change, source_missing  # noqa: E402  (bench/)
from sconeflow.model.dataload import SplitData  # noqa: E402
from sconeflow.model.evaluate import MAX_GRID, metrics_from_probs, render_png  # noqa: E402
from sconeflow.model.recipe import TrainConfig  # noqa: E402
from sconeflow.model.train import (  # noqa: E402
    fit,
    fit_member,
    smoothed_labels,
    stratified_folds,
    teacher_probabilities,
    to_tensor,
    validation_fold_count,
)
from student_views import probabilities, score, train_student  # noqa: E402


def teachers_for(source: Path, split: int, base: TrainConfig, cache: Path) -> dict:
    """The fold's cached members' soft labels and default student, trained and saved when absent."""
    path = cache / f"fold-{split}.pt"
    entry = torch.load(path) if path.is_file() else None
    if entry is not None and "student_state" in entry:
        return entry
    train, held = load_fold(source, split)
    if entry is None:
        members = fit(train, base.with_(distill=False, quantize="none"))  # the default job's 5 members
        x = to_tensor(train.images, members.mean, members.std, torch.device("cpu"))
        teacher = teacher_probabilities(members.teachers, x)
        entry = {"teacher": teacher, "mean": members.mean, "std": members.std, "precision": members.precision}
    student = student_for(train, entry, base)
    xh = to_tensor(held.images, entry["mean"], entry["std"], torch.device("cpu"))
    probs = probabilities([student], xh, "flip")
    if "student_flip" in entry:  # cached by student_views.py: the same seed must give the same student
        drift = float((probs - entry["student_flip"]).abs().max())
        print(f"split {split}: retrained default student differs by {drift:.2e}")
    entry["student_flip"] = probs
    entry["student_state"] = student.state_dict()
    cache.mkdir(parents=True, exist_ok=True)
    torch.save(entry, path)
    return entry


def teachers_with_members(train, split: int, base: TrainConfig, entry: dict, count: int, cache: Path):
    """The fold's soft labels from ``count`` members: the cached ensemble's plus members
    ``base.ensemble_size`` .. ``count - 1``, each trained exactly as a job with ``ensemble_size=count``
    would train it (its own validation fold and seed) and cached by index."""
    cached = base.ensemble_size
    if count <= cached:
        raise SystemExit(f"--members must exceed the cached ensemble's {cached}")
    config = base.with_(ensemble_size=count)
    missing = [m for m in range(cached, count) if f"member_{m}_teacher" not in entry]
    if missing:
        x = to_tensor(train.images, entry["mean"], entry["std"], torch.device("cpu"))
        y = torch.from_numpy(train.labels)
        n_folds = validation_fold_count(config)
        folds = stratified_folds(train.labels, n_folds, config.seed)
        smoothed = smoothed_labels(y, 2, config.label_smoothing)
        precision = entry.get("precision", "bfloat16")
        for m in missing:
            net, _, _, _ = fit_member(x, y, smoothed, folds, m, config, n_folds=n_folds, precision=precision)
            entry[f"member_{m}_teacher"] = teacher_probabilities([net], x)
            torch.save(entry, cache / f"fold-{split}.pt")
    extra = sum(entry[f"member_{m}_teacher"] for m in range(cached, count))
    return (entry["teacher"] * cached + extra) / count


FIT_OPTIONS = ("mixup_alpha", "sam_rho")  # fit_network options, not recipe fields


def student_for(train, entry: dict, config: TrainConfig, **fit_options: float) -> torch.nn.Module:
    """The job's student (same seed, targets and schedule) on the fold's cached teachers, with ``config``
    and the ``fit_network`` options named in :data:`FIT_OPTIONS`."""
    x = to_tensor(train.images, entry["mean"], entry["std"], torch.device("cpu"))
    precision = entry.get("precision", "bfloat16")
    return train_student(x, train.labels, entry["teacher"], config, precision, **fit_options)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, required=True, help="folder of the per-fold teachers")
    parser.add_argument("--candidate", action="append", default=[], metavar="FIELD=VALUE")
    parser.add_argument("--splits", type=int, nargs="+", default=list(range(FOLDS)))
    parser.add_argument(
        "--members", type=int, default=None, help="teach with this many members (more than the cached 5)"
    )
    parser.add_argument(
        "--average-with-default",
        action="store_true",
        help="score the mean of the candidate's and the default student's probabilities (two students)",
    )
    parser.add_argument("--report-png", type=Path, help="draw the candidate's held-out errors here")
    add_run_options(parser)
    args = parser.parse_args()
    if source_missing(args.source):
        return 2
    pooled: list[tuple[np.ndarray, SplitData]] = []  # each split's candidate probabilities and held-out fold
    changes = dict(parse_change(text) for text in args.candidate)
    fit_options = {name: float(changes.pop(name)) for name in FIT_OPTIONS if name in changes}
    totals = {"errors": 0, "base_errors": 0, "nll": 0.0, "base_nll": 0.0, "only_base": 0, "only_new": 0}
    per_fold, images, t0 = [], 0, time.perf_counter()
    for split in args.splits:
        base = TrainConfig(seed=split, num_threads=args.threads)
        entry = teachers_for(args.source, split, base, args.cache)
        train, held = load_fold(args.source, split)
        if args.members is not None:
            teacher = teachers_with_members(train, split, base, entry, args.members, args.cache)
            entry = {**entry, "teacher": teacher}
        student = student_for(train, entry, base.with_(**changes), **fit_options)
        xh = to_tensor(held.images, entry["mean"], entry["std"], torch.device("cpu"))
        yh = torch.from_numpy(held.labels)
        candidate = probabilities([student], xh, "flip")
        if args.average_with_default:  # a two-student graph: the candidate's and the default's mean
            candidate = (candidate + entry["student_flip"]) / 2
        pooled.append((candidate.numpy(), held))
        new, old = score(candidate, yh), score(entry["student_flip"], yh)
        only_base, only_new = set(old["wrong"]) - set(new["wrong"]), set(new["wrong"]) - set(old["wrong"])
        for key, value in (
            ("errors", new["errors"]),
            ("base_errors", old["errors"]),
            ("nll", new["nll_sum"]),
            ("base_nll", old["nll_sum"]),
            ("only_base", len(only_base)),
            ("only_new", len(only_new)),
        ):
            totals[key] += value
        images += len(yh)
        per_fold.append(new["errors"])
        print(f"split {split}: {new['errors']} errors (default student {old['errors']})", flush=True)
    row = {
        "candidate": {**changes, **fit_options, **({"members": args.members} if args.members else {})},
        "averaged_with_default": args.average_with_default,
        "splits": args.splits,
        "images": images,
        "errors_per_fold": per_fold,
        **{k: v / images if "nll" in k else v for k, v in totals.items()},
        "wall_seconds": round(time.perf_counter() - t0, 1),
    }
    print(
        f"{' '.join(args.candidate + ([f'members={args.members}'] if args.members else [])) or 'default'}: "
        f"{row['errors']} errors of {images} "
        f"({'/'.join(map(str, per_fold))}), NLL {row['nll']:.4f}; default student {row['base_errors']} "
        f"(NLL {row['base_nll']:.4f}); only default wrong {row['only_base']}, only candidate wrong "
        f"{row['only_new']}; {row['wall_seconds']:.0f} s"
    )
    if args.json:
        args.json.write_text(json.dumps(row, indent=2))
    if args.report_png:
        args.report_png.write_bytes(held_out_report(pooled, " ".join(args.candidate) or "default student"))
    return 0


def held_out_report(pooled: list[tuple[np.ndarray, SplitData]], name: str) -> bytes:
    """``render_png`` of the held-out folds' predictions pooled, as ``sconeflow evaluate`` draws a split."""
    probs = np.concatenate([p for p, _ in pooled])
    labels = np.concatenate([held.labels for _, held in pooled])
    report = metrics_from_probs(probs, labels, pooled[0][1].classes, [k for _, h in pooled for k in h.keys])
    images = np.concatenate([held.images for _, held in pooled])
    report.images = images[np.flatnonzero(probs.argmax(1) != labels)[:MAX_GRID]]
    return render_png(report, f"{name}: {len(labels)} held-out training images (5-fold CV, flip TTA)")


if __name__ == "__main__":
    raise SystemExit(main())
