"""Training-job records in the metadata database, shaped like SageMaker's DescribeTrainingJob."""

from __future__ import annotations

import json
import math
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
        """,
        # 2: DescribeTrainingJob's TrainingJobArn (fixed when the job is created: the home's region and
        # account then), RoleArn (only when the caller gave one) and SecondaryStatusTransitions (a JSON
        # list, appended to as the job moves on; jobs recorded before this migration keep []).
        """
        ALTER TABLE training_jobs ADD COLUMN arn TEXT;
        ALTER TABLE training_jobs ADD COLUMN role_arn TEXT;
        ALTER TABLE training_jobs ADD COLUMN status_transitions TEXT NOT NULL DEFAULT '[]';
        """,
    ],
)

# SageMaker's RoleArn pattern (CreateTrainingJob).
ROLE_ARN_PATTERN = re.compile(r"^arn:aws[a-z\-]*:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+$")
# What each secondary status means here (SecondaryStatusTransition.StatusMessage); SageMaker's own messages
# talk about ML instances and training images, which a local job does not have.
STATUS_MESSAGES = {
    "Starting": "Starting the training job.",
    "Downloading": "Downloading input data (reading the train channel and train.lst from the bucket).",
    "Training": "Training in progress.",
    "Uploading": "Training is complete; exporting the model and uploading the artifact.",
    "Completed": "Training job completed.",
    "Failed": "Training job failed.",
    "Stopped": "Training job stopped.",
}
TERMINAL = ("Completed", "Failed", "Stopped")
# SageMaker's default output layout: <S3OutputPath>/<job>/output/model.tar.gz, with S3OutputPath models/.
OUTPUT_PREFIX = "models/"


def training_job_arn(region: str, account: str, name: str) -> str:
    """``arn:aws:sagemaker:<region>:<account>:training-job/<name>`` (SageMaker lower-cases the name)."""
    return f"arn:aws:sagemaker:{region}:{account}:training-job/{name.lower()}"


def json_safe(value: Any) -> Any:
    """``value`` with every non-finite float (NaN, +-Infinity) replaced by None, so it dumps as strict JSON.

    Records written before the divergence fix can hold NaN losses; ``json.dumps`` would print them as the
    bare token ``NaN``, which no strict JSON parser accepts.
    """
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


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
    arn: str = ""
    role_arn: str | None = None
    status_transitions: list[dict[str, Any]] = field(default_factory=list)

    @property
    def training_seconds(self) -> float | None:
        if not self.started_at or not self.ended_at:
            return None
        start = datetime.fromisoformat(self.started_at.replace("Z", "+00:00"))
        end = datetime.fromisoformat(self.ended_at.replace("Z", "+00:00"))
        return (end - start).total_seconds()

    @property
    def output_path(self) -> str:
        """OutputDataConfig.S3OutputPath: where the job writes (``<path><job>/output/model.tar.gz``)."""
        return f"s3://{self.bucket}/{OUTPUT_PREFIX}"

    def describe(self) -> dict[str, Any]:
        """The job as DescribeTrainingJob answers (the members that have a local value), plus two
        sconeflow members SageMaker does not have: ``Classes`` and ``EpochMetrics``.

        Strict JSON: non-finite metric values (records written before the divergence fix) are left out
        of ``FinalMetricDataList`` (its ``Value`` must be a number) and are ``null`` in ``EpochMetrics``.
        """
        out: dict[str, Any] = {
            "TrainingJobName": self.name,
            "TrainingJobArn": self.arn,
            # Required in SageMaker's answer, for every status: the location configured for the
            # artifact. An object is there only once the job is Completed.
            "ModelArtifacts": {
                "S3ModelArtifacts": self.model_artifacts
                or f"{self.output_path}{self.name}/output/model.tar.gz"
            },
            "TrainingJobStatus": self.status,
            "SecondaryStatus": self.secondary_status,
        }
        # SageMaker gives a FailureReason to Failed jobs only (older records gave one to Stopped jobs).
        if self.status == "Failed" and self.failure_reason:
            out["FailureReason"] = self.failure_reason[:1024]
        out["HyperParameters"] = self.hyperparameters
        out["AlgorithmSpecification"] = {
            "TrainingImage": "sconeflow/image-classification",
            "TrainingInputMode": "File",
        }
        if self.role_arn:
            out["RoleArn"] = self.role_arn
        # The channels of SageMaker's image-classification in "lst" mode: the images under train/ and
        # the manifest, the object train.lst (an S3Prefix URI matches keys by prefix).
        out["InputDataConfig"] = [
            {
                "ChannelName": channel,
                "DataSource": {
                    "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{self.bucket}/{where}"}
                },
            }
            for channel, where in (("train", "train/"), ("train_lst", "train.lst"))
        ]
        out["OutputDataConfig"] = {"S3OutputPath": self.output_path, "CompressionType": "GZIP"}
        # One local process: SageMaker local mode's instance type. No volume is provisioned.
        out["ResourceConfig"] = {"InstanceType": "local", "InstanceCount": 1}
        # Required in SageMaker's answer; no runtime limit is enforced locally, so no member is set.
        out["StoppingCondition"] = {}
        out["CreationTime"] = self.created_at
        if self.started_at:
            out["TrainingStartTime"] = self.started_at
        if self.ended_at:
            out["TrainingEndTime"] = self.ended_at
        out["LastModifiedTime"] = self.last_modified
        out["SecondaryStatusTransitions"] = [dict(t) for t in self.status_transitions]
        metrics_time = self.ended_at or self.last_modified
        out["FinalMetricDataList"] = [
            {"MetricName": k, "Value": float(v), "Timestamp": metrics_time}
            for k, v in self.final_metrics.items()
            if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
        ][:40]
        seconds = self.training_seconds
        if seconds is not None:
            # whole seconds, rounded up, at least 1 (the API's minimum); nothing is billed locally, and
            # without spot training SageMaker bills the training time.
            whole = max(1, math.ceil(seconds))
            out["TrainingTimeInSeconds"] = whole
            out["BillableTimeInSeconds"] = whole
        out["Classes"] = self.classes
        out["EpochMetrics"] = json_safe(self.epoch_metrics)
        return out

    def summary(self) -> dict[str, Any]:
        """The job as a ListTrainingJobs TrainingJobSummary."""
        out: dict[str, Any] = {
            "TrainingJobName": self.name,
            "TrainingJobArn": self.arn,
            "CreationTime": self.created_at,
        }
        if self.ended_at:
            out["TrainingEndTime"] = self.ended_at
        out["LastModifiedTime"] = self.last_modified
        out["TrainingJobStatus"] = self.status
        out["SecondaryStatus"] = self.secondary_status
        return out


def _row_to_job(row: Any, settings: Settings) -> TrainingJob:
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
        # jobs recorded before migration 2 have no ARN of record: the home's region and account now
        arn=row["arn"] or training_job_arn(settings.region, settings.account, row["name"]),
        role_arn=row["role_arn"],
        status_transitions=json.loads(row["status_transitions"]),
    )


def _transitioned(
    transitions: list[dict[str, Any]], status: str, now: str, message: str | None = None
) -> list[dict[str, Any]]:
    """``transitions`` with the open one ended at ``now`` and ``status`` entered at ``now``.

    A terminal status (Completed, Failed, Stopped) starts and ends at ``now``, as SageMaker reports it.
    Entering the status the job is already in changes nothing.
    """
    out = [dict(t) for t in transitions]
    if out and out[-1].get("Status") == status and "EndTime" not in out[-1]:
        return out
    if out and "EndTime" not in out[-1]:
        out[-1]["EndTime"] = now
    entry: dict[str, Any] = {"Status": status, "StartTime": now}
    if status in TERMINAL:
        entry["EndTime"] = now
    entry["StatusMessage"] = message or STATUS_MESSAGES.get(status, status)
    out.append(entry)
    return out


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

    def create(
        self,
        bucket: str,
        hyperparameters: dict[str, str],
        name: str | None = None,
        role_arn: str | None = None,
    ) -> TrainingJob:
        import os

        if name is not None:
            validate_job_name(name)
        if role_arn is not None and not ROLE_ARN_PATTERN.fullmatch(role_arn):
            from sconeflow.model.errors import InvalidHyperparameter

            raise InvalidHyperparameter(
                f"role ARN {role_arn!r} is not an IAM role ARN (arn:aws:iam::<12-digit account>:role/<name>)"
            )
        now = _now()
        for _ in range(50):
            job_name = name or self.new_name()
            arn = training_job_arn(self.settings.region, self.settings.account, job_name)
            transitions = json.dumps(_transitioned([], "Starting", now))
            with self.db.transaction() as conn:
                exists = conn.execute("SELECT 1 FROM training_jobs WHERE name = ?", (job_name,)).fetchone()
                if exists is None:
                    conn.execute(
                        "INSERT INTO training_jobs (name, status, secondary_status, created_at, started_at,"
                        " last_modified, bucket, hyperparameters, pid, arn, role_arn, status_transitions)"
                        " VALUES (?, 'InProgress', 'Starting', ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            job_name,
                            now,
                            now,
                            now,
                            bucket,
                            json.dumps(hyperparameters),
                            os.getpid(),
                            arn,
                            role_arn,
                            transitions,
                        ),
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

    def _update(
        self,
        name: str,
        secondary: str | None = None,
        message: str | None = None,
        end: bool = False,
        **fields: Any,
    ) -> None:
        """Write ``fields``; with ``secondary``, also enter that secondary status (and its transition)."""
        now = _now()
        fields["last_modified"] = now
        if end:
            fields["ended_at"] = now  # the same instant as the terminal transition
        with self.db.transaction() as conn:
            if secondary is not None:
                row = conn.execute(
                    "SELECT status_transitions FROM training_jobs WHERE name = ?", (name,)
                ).fetchone()
                before = json.loads(row["status_transitions"]) if row is not None else []
                fields["secondary_status"] = secondary
                fields["status_transitions"] = json.dumps(_transitioned(before, secondary, now, message))
            sets = ", ".join(f"{key} = ?" for key in fields)
            conn.execute(f"UPDATE training_jobs SET {sets} WHERE name = ?", (*fields.values(), name))

    def set_secondary(
        self, name: str, secondary_status: str, classes: list[str] | None = None, message: str | None = None
    ) -> None:
        extra = {"classes": json.dumps(classes)} if classes is not None else {}
        self._update(name, secondary=secondary_status, message=message, **extra)

    def add_epoch(self, name: str, metrics: dict[str, Any]) -> None:
        job = self.get(name)
        self._update(name, epoch_metrics=json.dumps([*job.epoch_metrics, metrics]))

    def complete(self, name: str, model_artifacts: str, final_metrics: dict[str, Any]) -> TrainingJob:
        self._update(
            name,
            secondary="Completed",
            status="Completed",
            end=True,
            model_artifacts=model_artifacts,
            final_metrics=json.dumps(final_metrics),
        )
        return self.get(name)

    def fail(self, name: str, reason: str) -> TrainingJob:
        self._update(
            name,
            secondary="Failed",
            message=f"Training job failed. Reason: {reason}",
            status="Failed",
            end=True,
            failure_reason=reason,
        )
        return self.get(name)

    def stop(self, name: str, reason: str = "Stopped by the user (interrupt)") -> TrainingJob:
        """Stopped, with ``reason`` in the Stopped transition's StatusMessage (SageMaker gives a
        FailureReason to Failed jobs only)."""
        self._update(
            name,
            secondary="Stopped",
            message=f"Training job stopped. {reason}",
            status="Stopped",
            end=True,
        )
        return self.get(name)

    def find(self, name: str) -> TrainingJob | None:
        row = self.db.query_one("SELECT * FROM training_jobs WHERE name = ?", (name,))
        if row is None:
            return None
        if self._reap(row):
            row = self.db.query_one("SELECT * FROM training_jobs WHERE name = ?", (name,))
        return _row_to_job(row, self.settings)

    def _reap(self, row: Any) -> bool:
        """An InProgress job whose training process is gone (killed, crashed) becomes Failed."""
        if (
            row["status"] != "InProgress"
            or not row["pid"]
            or process_alive_since(row["pid"], row["created_at"])
        ):
            return False
        reason = f"the training process (pid {row['pid']}) exited before the job finished"
        now = _now()
        with self.db.transaction() as conn:
            current = conn.execute(
                "SELECT status, status_transitions FROM training_jobs WHERE name = ?", (row["name"],)
            ).fetchone()
            if current is None or current["status"] != "InProgress":
                return True
            transitions = _transitioned(
                json.loads(current["status_transitions"]),
                "Failed",
                now,
                f"Training job failed. Reason: {reason}",
            )
            conn.execute(
                "UPDATE training_jobs SET status = 'Failed', secondary_status = 'Failed', ended_at = ?,"
                " last_modified = ?, failure_reason = ?, status_transitions = ?"
                " WHERE name = ? AND status = 'InProgress'",
                (now, now, reason, json.dumps(transitions), row["name"]),
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
        return [_row_to_job(row, self.settings) for row in rows]
