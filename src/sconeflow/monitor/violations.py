"""Compare captured traffic with a baseline: ``constraint_violations.json`` and monitoring executions.

Checks (Model Monitor's data-quality ``constraint_check_type`` values, ``docs/aws-contracts.md`` 2.4):

- ``data_type_check``: the share of values of the baseline's type is below ``datatype_check_threshold``;
- ``completeness_check``: the share of non-missing values is below the baseline's ``completeness``;
- ``baseline_drift_check``: the distribution distance (L-infinity distance between the cumulative
  distributions, i.e. the two-sample Kolmogorov-Smirnov statistic; for a string feature the largest
  difference in category share) exceeds ``comparison_threshold``. With ``comparison_method`` "Robust"
  the distance must also exceed the KS critical value at alpha = 0.001 for the two sample sizes, so a
  small window of baseline-like traffic is not flagged by chance; "Simple" compares with the threshold only;
- ``categorical_values_check``: the share of values inside the baseline's domain is below
  ``domain_content_threshold``;
- ``missing_column_check`` / ``extra_column_check``: the model returns fewer / more probabilities than
  the baseline's classes.

A run writes ``constraint_violations.json``, ``statistics.json`` and ``constraints.json`` under
``<output>/<endpoint>/<schedule>/yyyy/mm/dd/hh/`` and records a monitoring execution in the metadata DB
with a ``MonitoringExecutionStatus`` (Pending, InProgress, Completed, CompletedWithViolations, Failed).
"""

from __future__ import annotations

import logging
import math
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from sconeflow.config import Settings
from sconeflow.db import Database, Migrations
from sconeflow.errors import SconeflowError
from sconeflow.monitor.baseline import (
    CONSTRAINTS_FILE,
    STATISTICS_FILE,
    Baseline,
    compute_statistics,
    dumps,
    feature_map,
    load_baseline,
    sketch_points,
    suggest_constraints,
    write_documents,
)
from sconeflow.monitor.captures import CaptureSource, resolve_source
from sconeflow.monitor.features import (
    PREDICTED_CLASS,
    FeatureTable,
    load_feature_table,
    prob_feature,
)
from sconeflow.monitor.jsonfmt import java_double

log = logging.getLogger(__name__)

VIOLATIONS_FILE = "constraint_violations.json"
VIOLATIONS_EXIT_CODE = 3
KS_ALPHA_COEFFICIENT = 1.949  # c(alpha) for alpha = 0.001 in the two-sample KS test
STATUSES = ("Pending", "InProgress", "Completed", "CompletedWithViolations", "Failed", "Stopping", "Stopped")
DEFAULT_SCHEDULE = "on-demand"

MONITOR_SCHEMA = Migrations(
    "monitor",
    [
        """
        CREATE TABLE monitoring_executions (
            arn TEXT PRIMARY KEY,
            execution_id TEXT NOT NULL,
            schedule_name TEXT NOT NULL,
            endpoint_name TEXT,
            source_uri TEXT NOT NULL,
            baseline_uri TEXT NOT NULL,
            status TEXT NOT NULL,
            exit_message TEXT,
            failure_reason TEXT,
            window_start TEXT,
            window_end TEXT,
            records INTEGER NOT NULL DEFAULT 0,
            violations INTEGER NOT NULL DEFAULT 0,
            report_uri TEXT,
            created_at TEXT NOT NULL,
            last_modified TEXT NOT NULL
        );
        CREATE INDEX monitoring_executions_schedule ON monitoring_executions (schedule_name, created_at);
        CREATE TABLE monitoring_schedules (
            name TEXT PRIMARY KEY,
            endpoint_name TEXT,
            source_uri TEXT,
            baseline_uri TEXT,
            output_uri TEXT,
            every_seconds REAL NOT NULL,
            window_seconds REAL NOT NULL,
            status TEXT NOT NULL,
            created_at TEXT NOT NULL,
            last_modified TEXT NOT NULL
        );
        """,
    ],
)


class MonitoringFailed(SconeflowError):
    """A monitoring execution failed (no traffic in the window, no baseline, unreadable captures)."""


# -- checks -------------------------------------------------------------------------------------


def _violation(feature: str, check: str, description: str) -> dict[str, str]:
    return {"feature_name": feature, "constraint_check_type": check, "description": description}


def _pct(share: float) -> str:
    """A share as the container prints it: Java's Double.toString of the percentage (``99.6459...``)."""
    return java_double(share * 100.0)


def linf_distance(base_values: np.ndarray, base_weights: np.ndarray, current: np.ndarray) -> float:
    """Largest gap between the (weighted) baseline CDF and the current empirical CDF."""
    if base_values.size == 0 or current.size == 0:
        return 0.0
    cur = np.sort(current)
    grid = np.union1d(base_values, cur)
    base_cdf = np.concatenate([[0.0], np.cumsum(base_weights)])[
        np.searchsorted(base_values, grid, side="right")
    ]
    base_cdf /= base_weights.sum()
    cur_cdf = np.searchsorted(cur, grid, side="right") / cur.size
    return float(np.max(np.abs(base_cdf - cur_cdf)))


def categorical_distance(base: dict[str, float], current: dict[str, float]) -> float:
    base_total = sum(base.values()) or 1.0
    cur_total = sum(current.values()) or 1.0
    keys = set(base) | set(current)
    return max((abs(base.get(k, 0) / base_total - current.get(k, 0) / cur_total) for k in keys), default=0.0)


def critical_distance(n_base: int, n_current: int) -> float:
    if n_base <= 0 or n_current <= 0:
        return math.inf
    return KS_ALPHA_COEFFICIENT * math.sqrt((n_base + n_current) / (n_base * n_current))


def _drift_config(
    constraints: dict[str, Any], feature: dict[str, Any], *, categorical: bool = False
) -> tuple[bool, float, str]:
    """(perform comparison, threshold, method) for a feature; a String feature's threshold is
    ``categorical_comparison_threshold`` when set, else ``comparison_threshold`` (AWS's default)."""
    dist = dict(constraints.get("monitoring_config", {}).get("distribution_constraints", {}))
    override = feature.get("monitoringConfigOverrides") or {}
    if isinstance(override, dict):
        dist.update(override.get("distribution_constraints", {}) or {})
        for key in ("comparison_threshold", "categorical_comparison_threshold"):
            if key in override:
                dist[key] = override[key]
    enabled = dist.get("perform_comparison", "Enabled") == "Enabled"
    threshold = dist.get("comparison_threshold", 0.1)
    if categorical:
        threshold = dist.get("categorical_comparison_threshold", threshold)
    return enabled, float(threshold), str(dist.get("comparison_method", "Robust"))


def _drifted(distance: float, threshold: float, method: str, n_base: int, n_current: int) -> bool:
    if distance <= threshold:
        return False
    return method != "Robust" or distance > critical_distance(n_base, n_current)


def _datatype_text(kind: str, required: float, share: float) -> str:
    # The real AWS text: "Data type match requirement is not met. Expected data type: Integral,
    # Expected match: 100.0%. Observed: Only 99.64592817400101% of data is Integral."
    return (
        f"Data type match requirement is not met. Expected data type: {kind}, "
        f"Expected match: {_pct(required)}%. Observed: Only {_pct(share)}% of data is {kind}."
    )


def _completeness_text(expected: float, observed: float) -> str:
    return (
        f"Data completeness requirement is not met. Expected completeness: {_pct(expected)}%. "
        f"Observed: Only {_pct(observed)}% of data is complete."
    )


def _drift_text(distance: float, threshold: float) -> str:
    return f"Baseline drift distance: {java_double(distance)} exceeds threshold: {java_double(threshold)}"


def evaluate(baseline: Baseline, table: FeatureTable) -> list[dict[str, str]]:
    """The constraint violations of the traffic in ``table`` against ``baseline``."""
    constraints = baseline.constraints
    config = constraints.get("monitoring_config", {})
    if config.get("evaluate_constraints", "Enabled") != "Enabled":
        return []
    datatype_threshold = float(config.get("datatype_check_threshold", 1.0))
    domain_threshold = float(config.get("domain_content_threshold", 1.0))
    stats_by_name = feature_map(baseline.statistics)
    violations: list[dict[str, str]] = []
    n = len(table)
    if n == 0:
        return violations

    # Column checks: the model's output width against the baseline's classes.
    base_classes = baseline.classes
    widths = (
        table.output_columns[table.output_columns > 0] if table.output_columns is not None else np.array([])
    )
    observed = int(np.bincount(widths).argmax()) if widths.size else len(base_classes)
    base_columns = len(constraints.get("features", []))
    current_columns = base_columns - len(base_classes) + observed
    absent: set[str] = set()
    if observed < len(base_classes):
        for cls in base_classes[observed:]:
            absent.add(prob_feature(cls))
            violations.append(
                _violation(
                    prob_feature(cls),
                    "missing_column_check",
                    f"There are missing columns in current dataset. Number of columns in current dataset: "
                    f"{current_columns}, Number of columns in baseline constraints: {base_columns}",
                )
            )
    elif observed > len(base_classes):
        for index in range(len(base_classes), observed):
            violations.append(
                _violation(
                    prob_feature(f"class_{index}"),
                    "extra_column_check",
                    f"There are extra columns in current dataset. Number of columns in current dataset: "
                    f"{current_columns}, Number of columns in baseline constraints: {base_columns}",
                )
            )

    for feature in constraints.get("features", []):
        name = feature.get("name")
        kind = feature.get("inferred_type")
        if name in absent:
            continue
        if name == PREDICTED_CLASS or kind == "String":
            violations.extend(
                _check_string(name, feature, stats_by_name.get(name), table, constraints, domain_threshold)
            )
            continue
        values = table.numeric.get(name)
        if values is None:
            continue
        present_mask = ~np.isnan(values)
        present = values[present_mask]
        other_type = int(table.wrong_type[name].sum()) if name in table.wrong_type else 0
        wrong_type = other_type
        if kind == "Integral":
            wrong_type += int(np.count_nonzero(present != np.round(present)))
        typed_total = present.size + other_type
        if typed_total:
            share = (typed_total - wrong_type) / typed_total
            if share < datatype_threshold - 1e-12:
                violations.append(
                    _violation(
                        name,
                        "data_type_check",
                        _datatype_text(kind, datatype_threshold, share),
                    )
                )
        expected_completeness = float(feature.get("completeness", 1.0))
        completeness = typed_total / n  # a value of another type is present, just not of this type
        if completeness < expected_completeness - 1e-12:
            violations.append(
                _violation(
                    name,
                    "completeness_check",
                    _completeness_text(expected_completeness, completeness),
                )
            )
        enabled, threshold, method = _drift_config(constraints, feature)
        base_stat = stats_by_name.get(name, {}).get("numerical_statistics", {})
        sketch = base_stat.get("distribution", {}).get("kll", {}).get("sketch", {}).get("data")
        if enabled and sketch and present.size:
            base_values, base_weights = sketch_points(sketch)
            distance = linf_distance(base_values, base_weights, present)
            n_base = int(base_stat.get("common", {}).get("num_present", base_weights.sum()))
            if _drifted(distance, threshold, method, n_base, present.size):
                violations.append(
                    _violation(
                        name,
                        "baseline_drift_check",
                        _drift_text(distance, threshold),
                    )
                )
    return violations


def _check_string(
    name: str,
    feature: dict[str, Any],
    stat: dict[str, Any] | None,
    table: FeatureTable,
    constraints: dict[str, Any],
    domain_threshold: float,
) -> list[dict[str, str]]:
    violations: list[dict[str, str]] = []
    values = table.predicted if name == PREDICTED_CLASS else []
    n = len(table)
    present = [v for v in values if v is not None]
    expected_completeness = float(feature.get("completeness", 1.0))
    completeness = len(present) / n if n else 1.0
    if completeness < expected_completeness - 1e-12:
        violations.append(
            _violation(
                name,
                "completeness_check",
                _completeness_text(expected_completeness, completeness),
            )
        )
    domains = (feature.get("string_constraints") or {}).get("domains")
    if domains and present:
        domain = set(domains)
        inside = sum(1 for v in present if v in domain)
        share = inside / len(present)
        if share < domain_threshold - 1e-12:
            unknown = sorted({v for v in present if v not in domain})
            violations.append(
                _violation(
                    name,
                    "categorical_values_check",
                    f"Data content match requirement is not met. Expected match: {_pct(domain_threshold)}%. "
                    f"Observed: Only {_pct(share)}% of data is in the baseline domain {sorted(domains)}; "
                    f"unknown values: {unknown[:10]}.",
                )
            )
    enabled, threshold, method = _drift_config(constraints, feature, categorical=True)
    buckets = ((stat or {}).get("string_statistics", {}).get("distribution", {}).get("categorical", {})).get(
        "buckets", []
    )
    if enabled and buckets and present:
        base = {b["value"]: float(b["count"]) for b in buckets}
        current: dict[str, float] = {}
        for v in present:
            current[v] = current.get(v, 0.0) + 1.0
        distance = categorical_distance(base, current)
        if _drifted(distance, threshold, method, int(sum(base.values())), len(present)):
            violations.append(
                _violation(
                    name,
                    "baseline_drift_check",
                    _drift_text(distance, threshold),
                )
            )
    return violations


# -- executions ---------------------------------------------------------------------------------


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z" if value else None


@dataclass(frozen=True)
class MonitoringExecution:
    arn: str
    execution_id: str
    schedule_name: str
    endpoint_name: str | None
    source_uri: str
    baseline_uri: str
    status: str
    exit_message: str | None
    failure_reason: str | None
    window_start: str | None
    window_end: str | None
    records: int
    violations: int
    report_uri: str | None
    created_at: str
    last_modified: str

    @property
    def exit_code(self) -> int:
        if self.status == "CompletedWithViolations":
            return VIOLATIONS_EXIT_CODE
        return 0 if self.status == "Completed" else 1

    def describe(self) -> dict[str, Any]:
        """A DescribeProcessingJob / ListMonitoringExecutions-like view."""
        return {
            "MonitoringScheduleName": self.schedule_name,
            "ProcessingJobArn": self.arn,
            "EndpointName": self.endpoint_name,
            "MonitoringExecutionStatus": self.status,
            "MonitoringType": "DataQuality",
            "ExitMessage": self.exit_message,
            "FailureReason": self.failure_reason,
            "WindowStart": self.window_start,
            "WindowEnd": self.window_end,
            "Records": self.records,
            "Violations": self.violations,
            "ReportUri": self.report_uri,
            "CreationTime": self.created_at,
            "LastModifiedTime": self.last_modified,
        }


class MonitoringExecutions:
    """Monitoring execution records in the metadata DB."""

    def __init__(self, settings: Settings, db: Database | None = None) -> None:
        self.settings = settings
        self.db = db or Database(settings.db_path)
        self.db.apply(MONITOR_SCHEMA)

    def create(
        self, *, schedule_name: str, endpoint_name: str | None, source_uri: str, baseline_uri: str
    ) -> MonitoringExecution:
        execution_id = uuid.uuid4().hex[:32]
        stamp = _now()
        job = f"model-monitoring-{stamp:%Y%m%d%H%M}-{execution_id[:8]}"
        arn = f"arn:aws:sagemaker:{self.settings.region}:{self.settings.account}:processing-job/{job}"
        now = _iso(stamp)
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT INTO monitoring_executions (arn, execution_id, schedule_name, endpoint_name,"
                " source_uri, baseline_uri, status, created_at, last_modified)"
                " VALUES (?, ?, ?, ?, ?, ?, 'Pending', ?, ?)",
                (arn, execution_id, schedule_name, endpoint_name, source_uri, baseline_uri, now, now),
            )
        return self.get(arn)

    def update(self, arn: str, **fields: Any) -> MonitoringExecution:
        if "status" in fields and fields["status"] not in STATUSES:
            raise ValueError(f"unknown MonitoringExecutionStatus {fields['status']!r}")
        fields["last_modified"] = _iso(_now())
        columns = ", ".join(f"{k} = ?" for k in fields)
        with self.db.transaction() as conn:
            conn.execute(f"UPDATE monitoring_executions SET {columns} WHERE arn = ?", (*fields.values(), arn))
        return self.get(arn)

    def get(self, arn: str) -> MonitoringExecution:
        row = self.db.query_one("SELECT * FROM monitoring_executions WHERE arn = ?", (arn,))
        if row is None:
            raise MonitoringFailed(f"no monitoring execution {arn}")
        return MonitoringExecution(**dict(row))

    def list(self, schedule_name: str | None = None, limit: int = 50) -> list[MonitoringExecution]:
        if schedule_name:
            rows = self.db.query(
                "SELECT * FROM monitoring_executions WHERE schedule_name = ?"
                " ORDER BY created_at DESC LIMIT ?",
                (schedule_name, limit),
            )
        else:
            rows = self.db.query(
                "SELECT * FROM monitoring_executions ORDER BY created_at DESC LIMIT ?", (limit,)
            )
        return [MonitoringExecution(**dict(r)) for r in rows]


def default_reports_uri(settings: Settings) -> str:
    return f"s3://{settings.bucket}/monitoring/reports"


@dataclass(frozen=True)
class MonitoringRun:
    execution: MonitoringExecution
    violations: list[dict[str, str]]
    table: FeatureTable | None
    baseline: Baseline | None
    malformed: int


def run_monitoring(
    settings: Settings,
    *,
    endpoint: str | None = None,
    source: str | None = None,
    baseline_uri: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    schedule_name: str = DEFAULT_SCHEDULE,
    output: str | None = None,
) -> MonitoringRun:
    """One monitoring execution over the captures in [since, until): violations plus a DB record."""
    capture_source = resolve_source(settings, endpoint=endpoint, source=source)
    executions = MonitoringExecutions(settings)
    baseline_location = baseline_uri or f"s3://{settings.bucket}/monitoring/baseline/"
    execution = executions.create(
        schedule_name=schedule_name,
        endpoint_name=endpoint,
        source_uri=capture_source.uri,
        baseline_uri=baseline_location,
    )
    execution = executions.update(
        execution.arn, status="InProgress", window_start=_iso(since), window_end=_iso(until or _now())
    )
    try:
        result = _execute(
            settings, capture_source, baseline_location, since, until, endpoint, schedule_name, output
        )
    except MonitoringFailed as exc:
        reason = str(exc)
    except SconeflowError as exc:
        reason = f"{exc.name}: {exc}"
    except Exception as exc:  # never leave an execution InProgress
        log.exception("monitoring execution %s failed unexpectedly", execution.arn)
        reason = f"InternalServerError: {type(exc).__name__}: {exc}"
    except BaseException:  # Ctrl-C, SIGTERM as SystemExit
        executions.update(execution.arn, status="Stopped", exit_message="Stopped: the run was interrupted")
        raise
    else:
        table, baseline, violations, report_uri, malformed = result
        if violations:
            status = "CompletedWithViolations"
            message = (
                f"CompletedWithViolations: Job completed successfully with {len(violations)} violations."
            )
        else:
            status = "Completed"
            message = "Completed: Job completed successfully with no violations."
        execution = executions.update(
            execution.arn,
            status=status,
            exit_message=message,
            records=len(table),
            violations=len(violations),
            report_uri=report_uri,
        )
        log.info("%s (%d records, report %s)", message, len(table), report_uri)
        return MonitoringRun(execution, violations, table, baseline, malformed)
    executions.update(execution.arn, status="Failed", failure_reason=reason, exit_message=f"Failed: {reason}")
    raise MonitoringFailed(f"monitoring execution failed: {reason}")


def _execute(
    settings: Settings,
    capture_source: CaptureSource,
    baseline_location: str,
    since: datetime | None,
    until: datetime | None,
    endpoint: str | None,
    schedule_name: str,
    output: str | None,
) -> tuple[FeatureTable, Baseline, list[dict[str, str]], str, int]:
    baseline = load_baseline(settings, baseline_location)
    table, captures = load_feature_table(
        settings, capture_source, since=since, until=until, classes=baseline.classes or None
    )
    if not len(table):
        reason = f"no captured traffic in the window under {capture_source.uri}"
        if captures.malformed:
            reason += f" ({len(captures.malformed)} malformed line(s) skipped)"
        raise MonitoringFailed(reason)
    violations = evaluate(baseline, table)
    statistics = compute_statistics(table)
    documents = {
        VIOLATIONS_FILE: {"violations": violations},
        STATISTICS_FILE: statistics,
        CONSTRAINTS_FILE: suggest_constraints(statistics),
    }
    stamp = (until or _now()).astimezone(UTC)
    report_uri = (
        f"{(output or default_reports_uri(settings)).rstrip('/')}/{endpoint or 'captures'}/{schedule_name}/"
        f"{stamp:%Y/%m/%d/%H}/"
    )
    write_documents(settings, report_uri, documents)
    return table, baseline, violations, report_uri, len(captures.malformed)


def violations_json(violations: list[dict[str, str]]) -> str:
    """``constraint_violations.json`` exactly as a run writes it (Jackson's pretty printer)."""
    return dumps({"violations": violations})
