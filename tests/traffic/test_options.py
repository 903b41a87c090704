"""Options numpy or memory cannot take are named errors: a negative ``--seed`` (numpy's generators take
non-negative seeds only; it was a ValueError traceback) and a ``--burst`` too large to queue."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from sconeflow.cli import app
from sconeflow.config import Settings
from sconeflow.store import LocalStore
from sconeflow.traffic.errors import InvalidTrafficOptions
from sconeflow.traffic.generator import InputPool, TrafficPlan

runner = CliRunner()


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--seed", "-1"], "--seed -1 must be 0 or more"),
        (["--burst", "1000000000000"], "--burst 1000000000000 is outside 1..100000"),
    ],
)
def test_out_of_range_options_are_named_errors(pool_settings: Settings, args: list[str], words: str) -> None:
    result = runner.invoke(app, ["traffic", "--endpoint", "nowhere", *args])
    assert result.exit_code != 0
    assert isinstance(result.exception, InvalidTrafficOptions) and words in str(result.exception)


def test_the_python_api_refuses_them_too(pool_settings: Settings) -> None:
    with pytest.raises(InvalidTrafficOptions):
        TrafficPlan(seed=-5).check()
    with pytest.raises(InvalidTrafficOptions):
        InputPool(LocalStore(pool_settings.buckets_dir), pool_settings.bucket, seed=-5)
    pool = InputPool(LocalStore(pool_settings.buckets_dir), pool_settings.bucket, seed=2**70)  # big is fine
    assert pool.draw().key
    TrafficPlan(burst=100_000).check()
