"""Training-job records in the metadata database, shaped like SageMaker's DescribeTrainingJob."""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sconeflow.config import Settings
from sconeflow.db import Database, Migrations
from sconeflow.model.errors import TrainingJobNotFound
from sconeflow.services import process_alive_since

JOB_PREFIX = "image-classification"
STATUSES = ("InProgress", "Completed", "Failed", "Stopping", "Stopped")
# SageMaker's TrainingJobName pattern (CreateTrainingJob): 1-63 characters.
JOB_NAME_PATTERN = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
JOB_NAME_MAX = 63


def validate_job_name(name: str) -> str:
    """``name`` when it follows SageMaker's training-job naming rule, else :class:`InvalidTrainingJobName`."""
    from sconeflow.model.errors import InvalidTrainingJobName

    if not 1 <= len(name) <= JOB_NAME_MAX or not JOB_NAME_PATTERN.fullmatch(name):
        raise InvalidTrainingJobName(
            f"training-job name {name!r} must be 1-{JOB_NAME_MAX} characters of a-z, A-Z, 0-9 and "
            "hyphens, starting and ending with a letter or digit"
        )
    return name


TRAINING_SCHEMA = Migrations(
    "training",
    [
        """
        CREATE TABLE training_jobs (
            name TEXT PRIMARY KEY,
            status TEXT NOT NULL,
            secondary_status TEXT NOT NULL DEFAULT 'Starting',
            created_at TEXT NOT NULL,
            started_at TEXT,
            ended_at TEXT,
            last_modified TEXT NOT NULL,
            bucket TEXT NOT NULL,
            hyperparameters TEXT NOT NULL DEFAULT '{}',
            epoch_metrics TEXT NOT NULL DEFAULT '[]',
            final_metrics TEXT NOT NULL DEFAULT '{}',
            failure_reason TEXT,
            model_artifacts TEXT,
            classes TEXT NOT NULL DEFAULT '[]',
            pid INTEGER
        );
        CREATE INDEX training_jobs_created ON training_jobs (created_at);
        """
    ],
)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class TrainingJob:
    name: str
    status: str
    secondary_status: str
    created_at: str
    started_at: str | None
    ended_at: str | None
    last_modified: str
    bucket: str
    hyperparameters: dict[str, str]
    epoch_metrics: list[dict[str, Any]]
    final_metrics: dict[str, Any]
    failure_reason: str | None
    model_artifacts: str | None
    classes: list[str] = field(default_factory=list)

    @property
    def training_seconds(self) -> float | None:
        if not self.started_at or not self.ended_at:
            return None
        start = datetime.fromisoformat(self.started_at.replace("Z", "+00:00"))
        end = datetime.fromisoformat(self.ended_at.replace("Z", "+00:00"))
        return (end - start).total_seconds()

    def describe(self) -> dict[str, Any]:
        """DescribeTrainingJob-like fields (the ones that make sense locally)."""
        out: dict[str, Any] = {
            "TrainingJobName": self.name,
            "TrainingJobStatus": self.status,
            "SecondaryStatus": self.secondary_status,
            "AlgorithmSpecification": {
                "TrainingImage": "sconeflow/image-classification",
                "TrainingInputMode": "File",
            },
            "HyperParameters": self.hyperparameters,
            # The channels of SageMaker's image-classification in "lst" mode: the images under
            # train/ and the manifest, the object train.lst (an S3Prefix URI matches keys by prefix).
            "InputDataConfig": [
                {
                    "ChannelName": channel,
                    "DataSource": {
                        "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{self.bucket}/{where}"}
                    },
                }
                for channel, where in (("train", "train/"), ("train_lst", "train.lst"))
            ],
            "CreationTime": self.created_at,
            "TrainingStartTime": self.started_at,
            "TrainingEndTime": self.ended_at,
            "LastModifiedTime": self.last_modified,
            "FinalMetricDataList": [
                {"MetricName": k, "Value": v}
                for k, v in self.final_metrics.items()
                if isinstance(v, int | float) and not isinstance(v, bool)
            ],
            "Classes": self.classes,
            "EpochMetrics": self.epoch_metrics,
        }
        if self.model_artifacts:
            out["ModelArtifacts"] = {"S3ModelArtifacts": self.model_artifacts}
        if self.failure_reason:
            out["FailureReason"] = self.failure_reason
        if self.training_seconds is not None:
            out["TrainingTimeInSeconds"] = round(self.training_seconds)
        return out


def _row_to_job(row: Any) -> TrainingJob:
    return TrainingJob(
        name=row["name"],
        status=row["status"],
        secondary_status=row["secondary_status"],
        created_at=row["created_at"],
        started_at=row["started_at"],
        ended_at=row["ended_at"],
        last_modified=row["last_modified"],
        bucket=row["bucket"],
        hyperparameters=json.loads(row["hyperparameters"]),
        epoch_metrics=json.loads(row["epoch_metrics"]),
        final_metrics=json.loads(row["final_metrics"]),
        failure_reason=row["failure_reason"],
        model_artifacts=row["model_artifacts"],
        classes=json.loads(row["classes"]),
    )


class TrainingJobs:
    """Create, update and read training-job records of one sconeflow home."""

    def __init__(self, settings: Settings, db: Database | None = None) -> None:
        self.settings = settings
        self.db = db or Database(settings.db_path)
        self.db.apply(TRAINING_SCHEMA)

    def new_name(self, prefix: str = JOB_PREFIX) -> str:
        """``image-classification-YYYY-MM-DD-HH-MM-SS-mmm`` (UTC), unique in this home."""
        moment = datetime.now(UTC)
        while True:
            name = f"{prefix}-{moment:%Y-%m-%d-%H-%M-%S}-{moment.microsecond // 1000:03d}"
            if self.find(name) is None:
                return name
            moment += timedelta(milliseconds=1)

    def create(self, bucket: str, hyperparameters: dict[str, str], name: str | None = None) -> TrainingJob:
        import os

        if name is not None:
            validate_job_name(name)
        now = _now()
        for _ in range(50):
            job_name = name or self.new_name()
            with self.db.transaction() as conn:
                exists = conn.execute("SELECT 1 FROM training_jobs WHERE name = ?", (job_name,)).fetchone()
                if exists is None:
                    conn.execute(
                        "INSERT INTO training_jobs (name, status, secondary_status, created_at, started_at,"
                        " last_modified, bucket, hyperparameters, pid) VALUES (?, 'InProgress', 'Starting',"
                        " ?, ?, ?, ?, ?, ?)",
                        (job_name, now, now, now, bucket, json.dumps(hyperparameters), os.getpid()),
                    )
                    return self.get(job_name)
            if name:
                from sconeflow.model.errors import ResourceInUse

                raise ResourceInUse(
                    f"a training job named {name!r} already exists (training-job names are unique; "
                    "pick another --job-name)"
                )
            time.sleep(0.002)
        raise RuntimeError("could not allocate a unique training-job name")

    def _update(self, name: str, **fields: Any) -> None:
        fields["last_modified"] = _now()
        sets = ", ".join(f"{key} = ?" for key in fields)
        with self.db.transaction() as conn:
            conn.execute(f"UPDATE training_jobs SET {sets} WHERE name = ?", (*fields.values(), name))

    def set_secondary(self, name: str, secondary_status: str, classes: list[str] | None = None) -> None:
        extra = {"classes": json.dumps(classes)} if classes is not None else {}
        self._update(name, secondary_status=secondary_status, **extra)

    def add_epoch(self, name: str, metrics: dict[str, Any]) -> None:
        job = self.get(name)
        self._update(name, epoch_metrics=json.dumps([*job.epoch_metrics, metrics]))

    def complete(self, name: str, model_artifacts: str, final_metrics: dict[str, Any]) -> TrainingJob:
        self._update(
            name,
            status="Completed",
            secondary_status="Completed",
            ended_at=_now(),
            model_artifacts=model_artifacts,
            final_metrics=json.dumps(final_metrics),
        )
        return self.get(name)

    def fail(self, name: str, reason: str) -> TrainingJob:
        self._update(name, status="Failed", secondary_status="Failed", ended_at=_now(), failure_reason=reason)
        return self.get(name)

    def stop(self, name: str, reason: str = "Stopped by the user (interrupt)") -> TrainingJob:
        self._update(
            name, status="Stopped", secondary_status="Stopped", ended_at=_now(), failure_reason=reason
        )
        return self.get(name)

    def find(self, name: str) -> TrainingJob | None:
        row = self.db.query_one("SELECT * FROM training_jobs WHERE name = ?", (name,))
        if row is None:
            return None
        if self._reap(row):
            row = self.db.query_one("SELECT * FROM training_jobs WHERE name = ?", (name,))
        return _row_to_job(row)

    def _reap(self, row: Any) -> bool:
        """An InProgress job whose training process is gone (killed, crashed) becomes Failed."""
        if (
            row["status"] != "InProgress"
            or not row["pid"]
            or process_alive_since(row["pid"], row["created_at"])
        ):
            return False
        reason = f"the training process (pid {row['pid']}) exited before the job finished"
        with self.db.transaction() as conn:
            conn.execute(
                "UPDATE training_jobs SET status = 'Failed', secondary_status = 'Failed', ended_at = ?,"
                " last_modified = ?, failure_reason = ? WHERE name = ? AND status = 'InProgress'",
                (_now(), _now(), reason, row["name"]),
            )
        return True

    def get(self, name: str) -> TrainingJob:
        job = self.find(name)
        if job is None:
            raise TrainingJobNotFound(f"training job {name!r} does not exist")
        return job

    def list(self, status: str | None = None, limit: int = 100) -> list[TrainingJob]:
        if status is not None and status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}, got {status!r}")
        sql = "SELECT * FROM training_jobs"
        params: tuple[Any, ...] = ()
        if status:
            sql += " WHERE status = ?"
            params = (status,)
        sql += " ORDER BY created_at DESC, name DESC LIMIT ?"
        rows = self.db.query(sql, (*params, limit))
        if any(self._reap(row) for row in rows):
            rows = self.db.query(sql, (*params, limit))
        return [_row_to_job(row) for row in rows]
