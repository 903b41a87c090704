"""Monitoring watches what ``sconeflow traffic`` sends (stretch goals 1 and 3): dark traffic drifts the
image features past the baseline, one-class traffic drifts the predicted-class mix of the 3-class model."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sconeflow.cli import app
from sconeflow.monitor.captures import read_captures, resolve_source

from .conftest import CLASSES, Deployed

runner = CliRunner()


def _wait_for_captures(deployed: Deployed, endpoint: str, count: int, timeout: float = 30.0) -> None:
    source = resolve_source(deployed.settings, endpoint=endpoint)
    deadline = time.monotonic() + timeout
    seen = 0
    while time.monotonic() < deadline:
        seen = len(read_captures(deployed.settings, source).records)
        if seen >= count:
            return
        time.sleep(0.25)
    raise AssertionError(f"only {seen} of {count} capture records were written for {endpoint}")


def _traffic_then_monitor(deployed: Deployed, endpoint: str, *shift: str) -> list[dict]:
    from sconeflow.endpoint.registry import deploy

    deploy(deployed.settings, deployed.job, name=endpoint, capture_percent=100)
    sent = runner.invoke(
        app, ["traffic", "--endpoint", endpoint, "--burst", "40", "--seed", "5", *shift, "--json"]
    )
    assert sent.exit_code == 0, sent.output
    assert json.loads(sent.stdout)["succeeded"] == 40
    _wait_for_captures(deployed, endpoint, 40)
    run = runner.invoke(app, ["monitor", "run", "--endpoint", endpoint, "--window", "1h", "--json"])
    assert run.exit_code == 3, run.output  # 3: the run completed with violations
    return json.loads(run.stdout)["violations"]


@pytest.fixture(scope="module")
def baseline(deployed: Deployed) -> None:
    result = runner.invoke(
        app, ["monitor", "baseline", "--dataset", deployed.job, "--home", str(deployed.settings.home)]
    )
    assert result.exit_code == 0, result.output


@pytest.mark.timeout(300)
def test_dark_traffic_is_reported_as_baseline_drift(deployed: Deployed, baseline: None) -> None:
    from sconeflow.endpoint.registry import delete

    try:
        violations = _traffic_then_monitor(deployed, "drift-dark", "--shift", "dark")
    finally:
        delete(deployed.settings, "drift-dark")
    drifted = {v["feature_name"] for v in violations if v["constraint_check_type"] == "baseline_drift_check"}
    assert {"brightness_r", "brightness_g", "brightness_b"} <= drifted, violations


@pytest.mark.timeout(300)
def test_one_class_traffic_drifts_the_class_mix(deployed: Deployed, baseline: None, tmp_path: Path) -> None:
    from sconeflow.endpoint.registry import delete

    try:
        violations = _traffic_then_monitor(deployed, "drift-bus", "--shift", "one-class", "--class", "bus")
        report = runner.invoke(app, ["monitor", "report", "-e", "drift-bus", "-o", str(tmp_path / "report")])
    finally:
        delete(deployed.settings, "drift-bus")
    drifted = {v["feature_name"] for v in violations if v["constraint_check_type"] == "baseline_drift_check"}
    assert "predicted_class" in drifted, violations
    assert report.exit_code == 0, report.output
    page = (tmp_path / "report" / "report.html").read_text()
    assert '<td>bus</td><td class="num">40</td>' in page  # the class mix: every input was a bus
    assert all(f"prob_{name}" in page or name in page for name in CLASSES)
