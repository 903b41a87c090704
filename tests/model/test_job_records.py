"""Training-job records against SageMaker's DescribeTrainingJob / ListTrainingJobs, as botocore models them.

Real (tiny) training runs and the real TrainingJobs API; botocore's service model is the reference.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import re
from datetime import datetime
from typing import Any

import pytest
from typer.testing import CliRunner

from sconeflow.cli import app
from sconeflow.db import Database, Migrations
from sconeflow.model.errors import InvalidHyperparameter, ManifestMissing, TrainingStopped
from sconeflow.model.jobs import TRAINING_SCHEMA, TrainingJobs
from sconeflow.model.recipe import TrainConfig
from sconeflow.model.train import train

botocore_session = pytest.importorskip("botocore.session")

# sconeflow members SageMaker does not have (documented in docs/training.md, "Training jobs").
EXTRA_MEMBERS = {"Classes", "EpochMetrics"}
# A documented local value outside SageMaker's enum: SageMaker local mode's instance type.
LOCAL_ENUM_VALUES = {("ResourceConfig", "InstanceType"): {"local"}}


def sagemaker_model():
    return botocore_session.get_session().get_service_model("sagemaker")


def shape_errors(value: Any, shape: Any, path: str = "", extras: frozenset[str] = frozenset()) -> list[str]:
    """Where ``value`` breaks ``shape`` (botocore): required members, types, enums, lengths, ranges,
    patterns and members the shape does not have (``extras`` excepted at this level)."""
    errors: list[str] = []
    kind = shape.type_name
    meta = shape.metadata
    if kind == "structure":
        if not isinstance(value, dict):
            return [f"{path or '<top>'}: {type(value).__name__}, not a structure"]
        for name in shape.required_members:
            if name not in value:
                errors.append(f"{path}{name}: required member missing")
        for name, member in value.items():
            if name in extras:
                continue
            if name not in shape.members:
                errors.append(f"{path}{name}: not a member of {shape.name}")
                continue
            if member is None:
                errors.append(f"{path}{name}: null (an absent member is left out, never null)")
                continue
            errors += shape_errors(member, shape.members[name], f"{path}{name}.")
        return errors
    where = path.rstrip(".")
    if kind == "list":
        if not isinstance(value, list):
            return [f"{where}: {type(value).__name__}, not a list"]
        if not meta.get("min", 0) <= len(value) <= meta.get("max", math.inf):
            errors.append(f"{where}: {len(value)} items, outside {meta}")
        for i, item in enumerate(value):
            errors += shape_errors(item, shape.member, f"{where}[{i}].")
        return errors
    if kind == "map":
        if not isinstance(value, dict):
            return [f"{where}: {type(value).__name__}, not a map"]
        for key, item in value.items():
            errors += shape_errors(key, shape.key, f"{where}<key>.")
            errors += shape_errors(item, shape.value, f"{where}[{key}].")
        return errors
    if kind == "string":
        if not isinstance(value, str):
            return [f"{where}: {value!r} is not a string"]
        if not meta.get("min", 0) <= len(value) <= meta.get("max", math.inf):
            errors.append(f"{where}: length {len(value)} outside {meta.get('min')}..{meta.get('max')}")
        if "pattern" in meta and not re.fullmatch(meta["pattern"], value):
            errors.append(f"{where}: {value!r} does not match {meta['pattern']!r}")
        if "enum" in meta and value not in meta["enum"]:
            parts = where.split(".")
            allowed = LOCAL_ENUM_VALUES.get((parts[-2], parts[-1]) if len(parts) > 1 else ("", ""), set())
            if value not in allowed:
                errors.append(f"{where}: {value!r} is not one of {shape.name}'s values")
        return errors
    if kind in ("integer", "long"):
        if isinstance(value, bool) or not isinstance(value, int):
            return [f"{where}: {value!r} is not an integer"]
        if not meta.get("min", -math.inf) <= value <= meta.get("max", math.inf):
            errors.append(f"{where}: {value} outside {meta}")
        return errors
    if kind in ("float", "double"):
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            return [f"{where}: {value!r} is not a finite number"]
        return errors
    if kind == "boolean":
        return [] if isinstance(value, bool) else [f"{where}: {value!r} is not a boolean"]
    if kind == "timestamp":
        try:
            moment = datetime.fromisoformat(value)
        except (TypeError, ValueError):
            return [f"{where}: {value!r} is not an ISO 8601 timestamp"]
        return [] if moment.tzinfo is not None else [f"{where}: {value!r} has no time zone"]
    return [f"{where}: unchecked shape type {kind}"]


def assert_describe_shape(described: dict[str, Any]) -> None:
    output = sagemaker_model().operation_model("DescribeTrainingJob").output_shape
    assert shape_errors(described, output, extras=frozenset(EXTRA_MEMBERS)) == []


def assert_summary_shape(summary: dict[str, Any]) -> None:
    listed = sagemaker_model().operation_model("ListTrainingJobs").output_shape
    assert shape_errors(summary, listed.members["TrainingJobSummaries"].member) == []


def strict_json(text: str) -> Any:
    """``json.loads`` that refuses NaN/Infinity, as any strict JSON parser does."""

    def refuse(token: str) -> Any:
        raise ValueError(f"not JSON: {token}")

    return json.loads(text, parse_constant=refuse)


def test_the_validator_catches_what_it_must():
    """The shape check itself: a missing required member, a wrong type, a null, an unknown member."""
    output = sagemaker_model().operation_model("DescribeTrainingJob").output_shape
    errors = shape_errors(
        {
            "TrainingJobName": "x",
            "TrainingJobStatus": "Done",
            "CreationTime": "yesterday",
            "TrainingTimeInSeconds": 0,
            "FinalMetricDataList": [{"MetricName": "loss", "Value": "1"}],
            "TrainingEndTime": None,
            "Surprise": 1,
        },
        output,
    )
    text = "\n".join(errors)
    for expected in (
        "TrainingJobArn: required member missing",
        "ModelArtifacts: required member missing",
        "StoppingCondition: required member missing",
        "TrainingJobStatus: 'Done'",
        "CreationTime: 'yesterday'",
        "TrainingTimeInSeconds: 0 outside",
        "FinalMetricDataList[0].Value: '1'",
        "TrainingEndTime: null",
        "Surprise: not a member",
    ):
        assert expected in text, text


def test_real_jobs_describe_like_sagemaker(settings, prepared):
    """Completed, Failed, Stopped and InProgress jobs from real runs: DescribeTrainingJob's shape, the
    secondary-status transitions as they happened, FailureReason for Failed jobs only, ModelArtifacts
    always (the configured location), FinalMetricDataList with timestamps."""
    jobs = TrainingJobs(settings)

    completed = train(settings, TrainConfig.tiny(epochs=2), store=prepared, job_name="done")
    with pytest.raises(ManifestMissing):
        train(settings, TrainConfig.tiny(bucket="no-such-bucket"), store=prepared, job_name="broken")

    def interrupt(report):
        raise KeyboardInterrupt

    with pytest.raises(TrainingStopped):
        train(settings, TrainConfig.tiny(), store=prepared, job_name="halted", on_epoch=interrupt)
    running = jobs.create(settings.bucket, {"epochs": "1"}, name="running")
    jobs.set_secondary(running.name, "Downloading")

    described = {name: jobs.get(name).describe() for name in ("done", "broken", "halted", "running")}
    for doc in described.values():
        assert_describe_shape(doc)
    for job in jobs.list():
        assert_summary_shape(job.summary())

    arn = f"arn:aws:sagemaker:{settings.region}:{settings.account}:training-job/done"
    done = described["done"]
    assert done["TrainingJobArn"] == arn
    assert completed.model_artifacts == done["ModelArtifacts"]["S3ModelArtifacts"]
    assert done["OutputDataConfig"]["S3OutputPath"] == f"s3://{settings.bucket}/models/"
    assert done["ModelArtifacts"]["S3ModelArtifacts"].startswith(done["OutputDataConfig"]["S3OutputPath"])
    assert done["ResourceConfig"] == {"InstanceType": "local", "InstanceCount": 1}
    assert "RoleArn" not in done and "FailureReason" not in done
    assert done["TrainingTimeInSeconds"] == done["BillableTimeInSeconds"] >= 1
    metrics = done["FinalMetricDataList"]
    assert {m["MetricName"] for m in metrics} >= {"val_accuracy", "test_accuracy"}
    assert all(m["Timestamp"] == done["TrainingEndTime"] for m in metrics)

    def statuses(doc):
        return [t["Status"] for t in doc["SecondaryStatusTransitions"]]

    assert statuses(done) == ["Starting", "Downloading", "Training", "Uploading", "Completed"]
    assert statuses(described["broken"]) == ["Starting", "Downloading", "Failed"]
    assert statuses(described["halted"]) == ["Starting", "Downloading", "Training", "Stopped"]
    assert statuses(described["running"]) == ["Starting", "Downloading"]
    for doc in described.values():
        transitions = doc["SecondaryStatusTransitions"]
        assert transitions[0]["StartTime"] == doc["CreationTime"]
        assert all(t["StatusMessage"] for t in transitions)
        for before, after in itertools.pairwise(transitions):
            assert before["EndTime"] == after["StartTime"]  # each ends where the next begins
            assert before["StartTime"] <= before["EndTime"]
        last = transitions[-1]
        if doc["TrainingJobStatus"] == "InProgress":
            assert "EndTime" not in last and "TrainingEndTime" not in doc
            assert "TrainingTimeInSeconds" not in doc
        else:
            assert last["StartTime"] == last["EndTime"] == doc["TrainingEndTime"]
            assert last["Status"] == doc["SecondaryStatus"]

    broken = described["broken"]
    assert broken["FailureReason"].startswith("ManifestMissing: ")
    assert broken["FailureReason"] in broken["SecondaryStatusTransitions"][-1]["StatusMessage"]
    # Required in SageMaker's answer: the configured location, although nothing was written there.
    assert broken["ModelArtifacts"] == {
        "S3ModelArtifacts": "s3://no-such-bucket/models/broken/output/model.tar.gz"
    }
    halted = described["halted"]
    assert "FailureReason" not in halted  # SageMaker: Failed jobs only
    assert "Stopped by the user" in halted["SecondaryStatusTransitions"][-1]["StatusMessage"]
    assert halted["ModelArtifacts"]["S3ModelArtifacts"].endswith("models/halted/output/model.tar.gz")
    assert list(prepared.iter_objects(settings.bucket, prefix="models/halted/")) == []


def test_cli_describe_and_list_print_the_same_records(settings, prepared):
    train(settings, TrainConfig.tiny(epochs=1), store=prepared, job_name="cli")
    home = str(settings.home)
    runner = CliRunner()
    described = runner.invoke(app, ["train", "describe", "cli", "--home", home])
    assert described.exit_code == 0, described.output
    doc = strict_json(described.output)
    assert_describe_shape(doc)
    assert doc == strict_json(json.dumps(TrainingJobs(settings).get("cli").describe()))
    listed = runner.invoke(app, ["train", "list", "--json", "--home", home])
    assert listed.exit_code == 0, listed.output
    (summary,) = strict_json(listed.output)["TrainingJobSummaries"]
    assert_summary_shape(summary)
    assert summary["TrainingJobArn"] == doc["TrainingJobArn"]
    assert summary["SecondaryStatus"] == "Completed"


def test_non_finite_metrics_print_as_strict_json(settings):
    """Records written before the divergence fix hold NaN/Infinity: describe and list --json print
    valid JSON (null in EpochMetrics, left out of FinalMetricDataList) and the table prints "-"."""
    jobs = TrainingJobs(settings)
    job = jobs.create(settings.bucket, {"epochs": "2"}, name="old-metrics")
    jobs.add_epoch(job.name, {"epoch": 1, "loss": 0.5, "val_accuracy": 0.75})
    jobs.add_epoch(job.name, {"epoch": 2, "loss": float("nan"), "val_accuracy": float("inf")})
    jobs.complete(
        job.name,
        f"s3://{settings.bucket}/models/old-metrics/output/model.tar.gz",
        {"val_accuracy": float("nan"), "test_accuracy": 0.9, "test_ece": float("-inf")},
    )
    # the raw text an older version wrote into the database
    raw = jobs.db.query_one("SELECT epoch_metrics FROM training_jobs WHERE name = ?", (job.name,))
    assert "NaN" in raw["epoch_metrics"]

    home = str(settings.home)
    runner = CliRunner()
    described = runner.invoke(app, ["train", "describe", job.name, "--home", home])
    assert described.exit_code == 0, described.output
    doc = strict_json(described.output)
    assert_describe_shape(doc)
    assert doc["EpochMetrics"][1] == {"epoch": 2, "loss": None, "val_accuracy": None}
    assert [m["MetricName"] for m in doc["FinalMetricDataList"]] == ["test_accuracy"]
    listed = runner.invoke(app, ["train", "list", "--json", "--home", home])
    assert listed.exit_code == 0, listed.output
    strict_json(listed.output)
    table = runner.invoke(app, ["train", "list", "--home", home])
    assert table.exit_code == 0, table.output
    assert "nan" not in table.output.lower() and "90.0%" in table.output


def test_records_from_before_the_migration(settings):
    """A database written by the first schema (no ARN, no transitions; a Stopped job carrying a
    FailureReason): migrated in place, described validly, its ARN from the home's region and account."""
    db = Database(settings.db_path)
    db.apply(Migrations("training", TRAINING_SCHEMA.scripts[:1]))
    now = "2026-11-20T10:00:00.000Z"
    for name, status, reason in (
        ("old-stop", "Stopped", "Stopped by the user (interrupt)"),
        ("old", "Completed", None),
    ):
        db.execute(
            "INSERT INTO training_jobs (name, status, secondary_status, created_at, started_at, ended_at,"
            " last_modified, bucket, epoch_metrics, final_metrics, failure_reason, model_artifacts)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, 'b', '[{\"loss\": NaN}]', '{\"val_accuracy\": NaN}', ?, ?)",
            (name, status, status, now, now, now, now, reason, "s3://b/models/old/output/model.tar.gz"),
        )
    db.close()
    moved = dataclasses.replace(settings, region="eu-west-1", account="111122223333")
    jobs = TrainingJobs(moved)
    assert jobs.db.schema_versions()["training"] == len(TRAINING_SCHEMA.scripts)
    for job in jobs.list():
        doc = job.describe()
        assert_describe_shape(doc)
        strict_json(json.dumps(doc, allow_nan=False))
        assert doc["TrainingJobArn"] == f"arn:aws:sagemaker:eu-west-1:111122223333:training-job/{job.name}"
        assert doc["SecondaryStatusTransitions"] == []
        assert doc["TrainingTimeInSeconds"] == 1  # same instant: at least 1, as the API's minimum
    assert "FailureReason" not in jobs.get("old-stop").describe()


def test_arn_role_and_reaped_jobs(settings):
    """The ARN is fixed when the job is created (SageMaker lower-cases the name in it); RoleArn only
    when given, and checked; a job whose process died ends with a Failed transition."""
    jobs = TrainingJobs(dataclasses.replace(settings, region="ap-south-1", account="999988887777"))
    role = "arn:aws:iam::999988887777:role/service-role/AmazonSageMaker-ExecutionRole"
    job = jobs.create("bucket", {}, name="Mixed-Case-1", role_arn=role)
    doc = job.describe()
    assert doc["TrainingJobArn"] == "arn:aws:sagemaker:ap-south-1:999988887777:training-job/mixed-case-1"
    assert doc["RoleArn"] == role
    assert_describe_shape(doc)
    # read back from another home's settings, the ARN of record does not move
    assert TrainingJobs(settings).get(job.name).arn == doc["TrainingJobArn"]
    with pytest.raises(InvalidHyperparameter, match="role ARN"):
        jobs.create("bucket", {}, name="bad-role", role_arn="my-role")
    assert jobs.find("bad-role") is None

    jobs.db.execute("UPDATE training_jobs SET pid = ? WHERE name = ?", (2**22 + 12345, job.name))
    reaped = jobs.get(job.name).describe()
    assert reaped["TrainingJobStatus"] == "Failed" and "exited before" in reaped["FailureReason"]
    assert [t["Status"] for t in reaped["SecondaryStatusTransitions"]] == ["Starting", "Failed"]
    assert_describe_shape(reaped)
