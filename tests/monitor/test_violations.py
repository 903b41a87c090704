"""Violations against the baseline: shifted traffic is flagged, baseline-like traffic is not."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from sconeflow.cli import app
from sconeflow.config import Settings
from sconeflow.monitor.violations import (
    VIOLATIONS_EXIT_CODE,
    MonitoringExecutions,
    MonitoringFailed,
    run_monitoring,
)
from sconeflow.store import LocalStore
from tests.monitor.conftest import (
    baseline_like_images,
    output_text,
    recent_start,
    write_capture_files,
)

ENDPOINT = "scones-endpoint"


def _traffic(store: LocalStore, settings: Settings, classifier, images: np.ndarray, **kw) -> None:  # type: ignore[no-untyped-def]
    probs = classifier.predict_proba(images)
    write_capture_files(
        store, settings.bucket, ENDPOINT, images, probs, start=recent_start(len(images)), **kw
    )


def _checks(violations: list[dict[str, str]]) -> set[tuple[str, str]]:
    return {(v["feature_name"], v["constraint_check_type"]) for v in violations}


def _run(settings: Settings, baseline_dir: Path, **kw):  # type: ignore[no-untyped-def]
    return run_monitoring(settings, endpoint=ENDPOINT, baseline_uri=str(baseline_dir), **kw)


def test_baseline_like_traffic_has_no_violations(
    settings: Settings,
    store: LocalStore,
    classifier,
    baseline_dir: Path,  # type: ignore[no-untyped-def]
) -> None:
    _traffic(store, settings, classifier, baseline_like_images(60, seed=11))
    result = CliRunner().invoke(
        app, ["monitor", "run", "--endpoint", ENDPOINT, "--window", "1h", "--baseline", str(baseline_dir)]
    )
    assert result.exit_code == 0, result.output
    assert "Completed: Job completed successfully with no violations." in result.output
    [execution] = MonitoringExecutions(settings).list()
    assert execution.status == "Completed"
    assert execution.records == 120
    assert execution.violations == 0
    # Model Monitor's output layout: <reports>/<endpoint>/<schedule>/yyyy/mm/dd/hh/
    bucket, _, prefix = execution.report_uri.removeprefix("s3://").partition("/")
    assert prefix.startswith(f"monitoring/reports/{ENDPOINT}/on-demand/")
    report = json.loads(store.get_object(bucket, prefix + "constraint_violations.json"))
    assert report == {"violations": []}
    stats = json.loads(store.get_object(bucket, prefix + "statistics.json"))
    assert stats["dataset"]["item_count"] == 120


def test_darkened_images_drift_in_brightness(
    settings: Settings,
    store: LocalStore,
    classifier,
    baseline_dir: Path,  # type: ignore[no-untyped-def]
) -> None:
    dark = (baseline_like_images(40, seed=12).astype(np.float64) * 0.4).astype(np.uint8)
    _traffic(store, settings, classifier, dark)
    result = CliRunner().invoke(
        app, ["monitor", "run", "--endpoint", ENDPOINT, "--baseline", str(baseline_dir), "--json"]
    )
    assert result.exit_code == VIOLATIONS_EXIT_CODE, result.output
    printed = json.loads(result.stdout)["violations"]
    [execution] = MonitoringExecutions(settings).list()
    assert execution.status == "CompletedWithViolations"
    assert execution.exit_message == (
        f"CompletedWithViolations: Job completed successfully with {execution.violations} violations."
    )
    bucket, _, prefix = execution.report_uri.removeprefix("s3://").partition("/")
    written = store.get_object(bucket, prefix + "constraint_violations.json").decode()
    assert result.stdout == written + "\n"  # --json prints the report's bytes, Jackson style
    violations = json.loads(written)["violations"]
    assert printed == violations
    checks = _checks(violations)
    for channel in "rgb":
        assert (f"brightness_{channel}", "baseline_drift_check") in checks
    assert ("image_width", "baseline_drift_check") not in checks
    drift = next(v for v in violations if v["feature_name"] == "brightness_r")
    assert drift["description"].startswith("Baseline drift distance: ")
    assert drift["description"].endswith(" exceeds threshold: 0.1")
    assert float(drift["description"].split()[3]) >= 0.3


def test_noisy_images_drift_in_contrast_and_sharpness(
    settings: Settings,
    store: LocalStore,
    classifier,
    baseline_dir: Path,  # type: ignore[no-untyped-def]
) -> None:
    rng = np.random.default_rng(5)
    clean = baseline_like_images(40, seed=13).astype(np.float64)
    noisy = np.clip(clean + rng.normal(0, 60, clean.shape), 0, 255).astype(np.uint8)
    _traffic(store, settings, classifier, noisy)
    run = _run(settings, baseline_dir)
    checks = _checks(run.violations)
    assert ("sharpness", "baseline_drift_check") in checks
    assert ("contrast", "baseline_drift_check") in checks
    assert run.execution.status == "CompletedWithViolations"


def test_one_class_only_drifts_in_predicted_class(
    settings: Settings,
    store: LocalStore,
    classifier,
    baseline_dir: Path,  # type: ignore[no-untyped-def]
) -> None:
    from sconeflow.data.synthetic import synthetic_images

    only_first = synthetic_images(0, 2, 80, np.random.default_rng(14))
    _traffic(store, settings, classifier, only_first)
    run = _run(settings, baseline_dir)
    assert ("predicted_class", "baseline_drift_check") in _checks(run.violations)
    predicted = np.array(run.table.predicted)
    assert (predicted == "bicycle").mean() > 0.9


def test_completeness_data_type_and_columns(
    settings: Settings, store: LocalStore, baseline_dir: Path
) -> None:
    images = baseline_like_images(30, seed=15)
    outputs = [output_text([0.8, 0.2]) if i % 2 else output_text([0.1, 0.9]) for i in range(60)]
    from tests.monitor.conftest import png_bytes

    inputs = [png_bytes(im) for im in images]
    for i in range(0, 60, 6):  # every 6th input is not an image
        inputs[i] = b"not an image at all"
    outputs[1] = '["high", 0.2]'  # a value of the wrong type
    outputs[3] = "[0.7, 0.2, 0.1]"  # one extra probability
    start = recent_start(60)
    write_capture_files(
        store, settings.bucket, ENDPOINT, images, [], start=start, outputs=outputs, inputs=inputs
    )
    run = _run(settings, baseline_dir)
    checks = _checks(run.violations)
    assert ("brightness_r", "completeness_check") in checks
    assert ("prob_bicycle", "data_type_check") in checks
    text = next(v for v in run.violations if v["constraint_check_type"] == "data_type_check")["description"]
    assert text.startswith(
        "Data type match requirement is not met. Expected data type: Fractional, Expected match:"
    )
    completeness = next(
        v for v in run.violations if v["feature_name"] == "brightness_r" and "complete" in v["description"]
    )
    assert f"Observed: Only {50 / 60 * 100}% of data is complete." in completeness["description"]
    # Most outputs have the baseline's two columns, so no column check fires for one odd record.
    assert not any(v["constraint_check_type"].endswith("column_check") for v in run.violations)


def test_extra_column_check(settings: Settings, store: LocalStore, baseline_dir: Path) -> None:
    images = baseline_like_images(10, seed=16)
    outputs = [output_text([0.5, 0.3, 0.2])] * 20
    write_capture_files(store, settings.bucket, ENDPOINT, images, [], start=recent_start(20), outputs=outputs)
    run = _run(settings, baseline_dir)
    assert ("prob_class_2", "extra_column_check") in _checks(run.violations)


def test_no_traffic_in_window_fails(
    settings: Settings, store: LocalStore, classifier, baseline_dir: Path
) -> None:  # type: ignore[no-untyped-def]
    old = datetime.now(UTC) - timedelta(days=3)
    images = baseline_like_images(5, seed=17)
    write_capture_files(store, settings.bucket, ENDPOINT, images, classifier.predict_proba(images), start=old)
    with pytest.raises(MonitoringFailed, match="no captured traffic"):
        _run(settings, baseline_dir, since=datetime.now(UTC) - timedelta(hours=1))
    [execution] = MonitoringExecutions(settings).list()
    assert execution.status == "Failed"
    assert "no captured traffic" in execution.failure_reason
    result = CliRunner().invoke(app, ["monitor", "run", "-e", ENDPOINT, "--baseline", str(baseline_dir)])
    assert result.exit_code == 1
    assert isinstance(result.exception, MonitoringFailed)


def test_missing_baseline_fails(settings: Settings, tmp_path: Path) -> None:
    with pytest.raises(MonitoringFailed, match="monitor baseline"):
        run_monitoring(settings, endpoint=ENDPOINT, baseline_uri=str(tmp_path / "none"))
    assert MonitoringExecutions(settings).list()[0].status == "Failed"


def test_executions_cli_lists_records(
    settings: Settings, store: LocalStore, classifier, baseline_dir: Path
) -> None:  # type: ignore[no-untyped-def]
    _traffic(store, settings, classifier, baseline_like_images(10, seed=18))
    _run(settings, baseline_dir, schedule_name="hourly")
    result = CliRunner().invoke(app, ["monitor", "executions", "--json"])
    assert result.exit_code == 0, result.output
    [summary] = json.loads(result.stdout)["MonitoringExecutionSummaries"]
    assert summary["MonitoringScheduleName"] == "hourly"
    assert summary["MonitoringExecutionStatus"] in ("Completed", "CompletedWithViolations")
    assert summary["ProcessingJobArn"].startswith("arn:aws:sagemaker:us-east-1:123456789012:processing-job/")


def test_categorical_values_check(settings: Settings, store: LocalStore, baseline_dir: Path) -> None:
    images = baseline_like_images(10, seed=19)
    outputs = [output_text([0.6, 0.4])] * 16 + [output_text([0.1, 0.2, 0.7])] * 4  # argmax outside the domain
    write_capture_files(store, settings.bucket, ENDPOINT, images, [], start=recent_start(20), outputs=outputs)
    run = _run(settings, baseline_dir)
    found = [v for v in run.violations if v["constraint_check_type"] == "categorical_values_check"]
    assert [v["feature_name"] for v in found] == ["predicted_class"]
    assert "Observed: Only 80.0% of data is in the baseline domain" in found[0]["description"]
    assert "class_2" in found[0]["description"]


def test_comparison_method_overrides_and_disabling(
    settings: Settings,
    store: LocalStore,
    classifier,  # type: ignore[no-untyped-def]
    baseline_dir: Path,
) -> None:
    _traffic(store, settings, classifier, baseline_like_images(8, seed=20))  # a small window: 16 records
    constraints_path = baseline_dir / "constraints.json"
    constraints = json.loads(constraints_path.read_text())

    def drift_features() -> set[str]:
        run = _run(settings, baseline_dir)
        return {
            v["feature_name"] for v in run.violations if v["constraint_check_type"] == "baseline_drift_check"
        }

    assert drift_features() == set()  # Robust: 16 records of normal traffic are not evidence of drift
    constraints["monitoring_config"]["distribution_constraints"]["comparison_method"] = "Simple"
    constraints_path.write_text(json.dumps(constraints))
    simple = drift_features()
    assert simple  # Simple: any distance above 0.1 is flagged
    first = sorted(simple)[0]
    for feature in constraints["features"]:
        if feature["name"] == first:
            feature["monitoringConfigOverrides"] = {"comparison_threshold": 1.0}
    constraints_path.write_text(json.dumps(constraints))
    assert drift_features() == simple - {first}
    constraints["monitoring_config"]["distribution_constraints"]["perform_comparison"] = "Disabled"
    constraints_path.write_text(json.dumps(constraints))
    assert drift_features() == set()


def test_unwritable_output_fails_the_execution(
    settings: Settings,
    store: LocalStore,
    classifier,  # type: ignore[no-untyped-def]
    baseline_dir: Path,
    tmp_path: Path,
) -> None:
    _traffic(store, settings, classifier, baseline_like_images(5, seed=22))
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(MonitoringFailed):
        _run(settings, baseline_dir, output=str(blocker))
    [execution] = MonitoringExecutions(settings).list()
    assert execution.status == "Failed"  # never left InProgress
    assert execution.failure_reason
    assert blocker.read_text() == "x"


def test_categorical_comparison_threshold_governs_string_drift(settings: Settings, shared_dir: Path) -> None:
    """AWS's distribution_constraints.categorical_comparison_threshold is the drift threshold of
    categorical features (default: comparison_threshold); numeric features keep comparison_threshold."""
    from sconeflow.monitor.baseline import Baseline, compute_statistics, suggest_constraints
    from sconeflow.monitor.captures import read_captures, resolve_source
    from sconeflow.monitor.features import table_from_records
    from sconeflow.monitor.violations import evaluate
    from tests.monitor.conftest import FIXTURES

    captures = read_captures(settings, resolve_source(settings, source=str(shared_dir / FIXTURES)))
    table = table_from_records(captures.records)
    statistics = compute_statistics(table)
    baseline = Baseline("memory", statistics, suggest_constraints(statistics))
    only_bicycles = table.subset(np.array(table.predicted) == "bicycle")  # share 131/225 -> 1.0

    def drifted() -> set[str]:
        return {
            v["feature_name"]
            for v in evaluate(baseline, only_bicycles)
            if v["constraint_check_type"] == "baseline_drift_check"
        }

    before = drifted()
    assert "predicted_class" in before
    distribution = baseline.constraints["monitoring_config"]["distribution_constraints"]
    distribution["categorical_comparison_threshold"] = 0.5  # the distance is 94/225 = 0.42
    assert drifted() == before - {"predicted_class"}
    distribution["comparison_threshold"] = 1.0  # numeric features only, now
    assert drifted() == set()
    distribution["categorical_comparison_threshold"] = 0.1
    assert drifted() == {"predicted_class"}
