"""bench/train_accuracy.py's bootstrap interval of the mean test accuracy."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "train_accuracy.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("train_accuracy", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_interval_of_a_perfect_or_hopeless_model_is_a_point(bench):
    assert bench.bootstrap_interval(np.ones((3, 200)), resamples=200) == (1.0, 1.0)
    assert bench.bootstrap_interval(np.zeros((3, 200)), resamples=200) == (0.0, 0.0)


def test_interval_brackets_the_mean_and_shrinks_with_more_images(bench):
    rng = np.random.default_rng(1)
    small = (rng.random((3, 200)) < 0.95).astype(int)
    low, high = bench.bootstrap_interval(small)
    assert low < small.mean() < high
    # Binomial scale: +-1.96 * sqrt(0.95 * 0.05 / 200) = +-3 points for one seed's 200 images; these three
    # seeds err on unrelated images, so their mean varies less (~+-1.7 points).
    assert 0.025 < high - low < 0.09
    large = (rng.random((3, 5000)) < 0.95).astype(int)
    low_l, high_l = bench.bootstrap_interval(large)
    assert high_l - low_l < (high - low) / 3
    assert bench.bootstrap_interval(small) == (low, high)  # fixed seed: the same interval


def test_seeds_share_each_draw_of_test_images(bench):
    # Three seeds that are right on exactly the same images move together: the interval is as wide as one
    # seed's. Were the seeds redrawn independently it would shrink by ~sqrt(3).
    one = (np.arange(200) % 20 != 0).astype(int)  # 95%
    width_one = np.subtract(*bench.bootstrap_interval(one[None, :])[::-1])
    width_three = np.subtract(*bench.bootstrap_interval(np.stack([one, one, one]))[::-1])
    assert width_three == pytest.approx(width_one)
