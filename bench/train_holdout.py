"""Compare training recipes on validation only: the test split is deleted, held-out training images stand in.

Prepares the shared mini dataset into a temporary sconeflow home, deletes the real test split from that
bucket, moves a stratified sample of training images (``--per-class`` per class, drawn with the split's
seed) into ``test/`` with their own ``test.lst``, and trains the default recipe there with the given
changes. The job's "test" figures are then held-out *training* images: safe to choose a recipe by.

    python bench/train_holdout.py --split 0 --set student_widths=32,128,128
    python bench/train_holdout.py --split 1 --threads 1 --set student_widths=null --json out.json
    for k in 0 1 2 3 4; do python bench/train_holdout.py --folds 5 --split $k --json cv-$k.json; done

Session 4 chose ``student_widths`` (32,128,128) this way (docs/training.md).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from holdout_data import add_run_options, hold_out, parse_change, prepared_home, source_missing  # noqa: E402
from sconeflow.model.recipe import TrainConfig  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", type=int, default=0, help="seed of the held-out sample (and of the job)")
    parser.add_argument("--per-class", type=int, default=100)
    parser.add_argument(
        "--folds",
        type=int,
        default=0,
        help="hold out fold --split of a fixed stratified K-fold partition instead of a random sample",
    )
    parser.add_argument(
        "--set", action="append", default=[], metavar="FIELD=VALUE", help="a TrainConfig change (JSON value)"
    )
    add_run_options(parser)
    args = parser.parse_args()
    if source_missing(args.source):
        return 2
    from sconeflow.model.train import train

    if args.folds and not 0 <= args.split < args.folds:
        print(f"--split must be a fold number below --folds {args.folds}", file=sys.stderr)
        return 2
    changes = dict(parse_change(text) for text in args.set)
    with prepared_home(args.source) as (settings, store):
        held = hold_out(store, settings.bucket, args.per_class, args.split, args.folds)
        config = TrainConfig(seed=args.split, num_threads=args.threads, **changes)
        job = train(settings, config)
        from sconeflow.model.artifact import read_artifact, resolve_model

        _, meta = read_artifact(resolve_model(settings, job.name).data)
    metrics = job.final_metrics
    row = {
        "split": args.split,
        "changes": {k: list(v) if isinstance(v, tuple) else v for k, v in changes.items()},
        "held_out_images": held,
        "held_out_accuracy": metrics["test_accuracy"],
        "held_out_nll": metrics.get("test_nll"),
        "held_out_errors": round((1 - metrics["test_accuracy"]) * held),
        "val_accuracy": metrics.get("val_accuracy"),
        # the shipped graph (int8 or float32) and, when int8 shipped, its float32 source's errors
        "shipped_graph": "int8" if "test_accuracy_float32" in metrics else "float32",
        "held_out_errors_float32": round(
            (1 - metrics.get("test_accuracy_float32", metrics["test_accuracy"])) * held
        ),
        "train_wall_seconds": metrics["train_wall_seconds"],
        "int8_checks": meta.get("quantization", {}).get("checks", []),
    }
    print(
        f"split {args.split} {row['changes'] or 'default'}: held-out accuracy {row['held_out_accuracy']:.2%} "
        f"of {held}, NLL {row['held_out_nll']:.4f}, training {row['train_wall_seconds']:.0f} s"
    )
    if args.json:
        args.json.write_text(json.dumps(row, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
