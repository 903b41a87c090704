"""An exception escaping a target (a bug, not an answer) is counted under its class name and logged as
one warning line per kind, without a traceback (that is at DEBUG)."""

from __future__ import annotations

import logging

import pytest

from sconeflow.config import Settings
from sconeflow.store import LocalStore
from sconeflow.traffic.generator import InputPool, Outcome, Sample, TrafficPlan, run_traffic


class _BrokenTarget:
    description = "broken"

    def send(self, samples: list[Sample], seq: int) -> list[Outcome]:
        raise RuntimeError(f"bug on request {seq}")

    def close(self) -> None:
        return None


@pytest.mark.timeout(60)
def test_a_target_exception_is_counted_and_warned_once_without_a_traceback(
    pool_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    pool = InputPool(LocalStore(pool_settings.buckets_dir), pool_settings.bucket, seed=0)
    caplog.set_level(logging.INFO, logger="sconeflow")
    stats = run_traffic(TrafficPlan(burst=5, concurrency=1), pool, _BrokenTarget()).as_dict()
    assert stats["failed"] == 5 and stats["errors"] == {"RuntimeError": 5}
    shown = [r for r in caplog.records if r.levelno >= logging.INFO]
    assert len(shown) == 1 and shown[0].levelno == logging.WARNING
    assert "RuntimeError: bug on request 0" in shown[0].getMessage()
    assert shown[0].exc_info is None
