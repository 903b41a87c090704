"""The training benches' cross-validation folds (bench/holdout_data.py): recipes are chosen on them."""

from __future__ import annotations

import importlib.util
from collections import Counter
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "holdout_data.py"


def load_bench():
    spec = importlib.util.spec_from_file_location("holdout_data", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_five_folds_hold_out_every_training_image_once_stratified():
    bench = load_bench()
    by_class = {
        "0": [f"{i}\t0\tbicycle_{i}.png" for i in range(500)],
        "1": [f"{500 + i}\t1\tmotorcycle_{i}.png" for i in range(500)],
    }
    folds = [bench.cross_validation_fold(by_class, 5, k) for k in range(5)]
    everything = [line for lines in by_class.values() for line in lines]
    assert sorted(line for fold in folds for line in fold) == sorted(everything)  # each image exactly once
    for fold in folds:
        assert Counter(line.split("\t")[1] for line in fold) == {"0": 100, "1": 100}
    # Fixed: the same partition on every call and whatever order the manifest lists the lines in.
    shuffled = {label: list(reversed(lines)) for label, lines in by_class.items()}
    assert [bench.cross_validation_fold(shuffled, 5, k) for k in range(5)] == folds
