"""Demo options, image picking, the execution input, and the CLI's named errors."""

from __future__ import annotations

import json

import pytest

from sconeflow.workflow.demo import DemoOptions, execution_input, pick_images, train_config
from sconeflow.workflow.errors import InvalidDemoOption
from tests.workflow.helpers import run_cli


@pytest.mark.parametrize(
    "changes",
    [
        {"executions": 0},
        {"threshold": 0.0},
        {"threshold": 1.5},
        {"epochs": 0},
        {"concurrency": 0},
        {"port": -1},
    ],
)
def test_bad_options_are_named_errors(changes: dict) -> None:
    with pytest.raises(InvalidDemoOption):
        DemoOptions(**changes)


def test_cli_reports_a_bad_option_in_one_line_and_creates_nothing(tmp_path) -> None:
    home = tmp_path / "home"
    result = run_cli(home, "demo", "--executions", "0", timeout=60)
    assert result.returncode != 0
    assert "InvalidDemoOption: --executions must be at least 1, got 0" in result.stderr
    assert not (home / "buckets" / "sconeflow-default").exists()


def test_the_input_is_the_classic_projects_event() -> None:
    assert json.loads(execution_input("b", "test/x.png")) == {
        "image_data": "",
        "s3_bucket": "b",
        "s3_key": "test/x.png",
        "inferences": [],
    }


def test_images_are_random_but_reproducible() -> None:
    keys = [f"test/{i}.png" for i in range(50)]
    first = pick_images(keys, 10, seed=1)
    assert first == pick_images(keys, 10, seed=1)
    assert first != pick_images(keys, 10, seed=2)
    assert len(set(first)) == 10 and set(first) <= set(keys)
    assert len(pick_images(keys[:3], 7, seed=0)) == 7  # more executions than images: repeats


def test_fast_is_the_short_schedule_and_epochs_override() -> None:
    from sconeflow.model.recipe import TrainConfig

    assert train_config(DemoOptions()) == TrainConfig()
    assert train_config(DemoOptions(fast=True)) == TrainConfig.fast()
    assert train_config(DemoOptions(fast=True, epochs=3)).epochs == 3


def test_a_bad_source_fails_in_step_one_starts_nothing_and_status_says_why(tmp_path) -> None:
    home = tmp_path / "home"
    missing = tmp_path / "missing.tar.gz"
    result = run_cli(home, "demo", "--source", str(missing), "--port", "0", timeout=120)
    assert result.returncode == 1
    assert "[1/10] Prepare the data" in result.stdout and "[2/10]" not in result.stdout
    assert result.stderr.strip().splitlines()[-1].startswith("SourceNotFound: ")
    assert list((home / "run").glob("*.json")) == []  # no server was started
    status = run_cli(home, "status", timeout=60)
    assert "last demo: Failed at" in status.stdout and "in step prepare: SourceNotFound:" in status.stdout
    assert run_cli(home, "cleanup", "--all", timeout=60).returncode == 0
    assert not home.exists()
