"""Evaluation metrics on hand-made probabilities, the PNG, and training-job records."""

from __future__ import annotations

import re
import subprocess
import sys
import time

import numpy as np
import pytest

from sconeflow.model.errors import TrainingJobNotFound
from sconeflow.model.evaluate import expected_calibration_error, metrics_from_probs, render_png
from sconeflow.model.jobs import TrainingJobs


def test_metrics_from_probabilities():
    probs = np.array([[0.9, 0.1, 0.0], [0.2, 0.7, 0.1], [0.6, 0.3, 0.1], [0.1, 0.1, 0.8], [0.1, 0.8, 0.1]])
    labels = np.array([0, 1, 1, 2, 2])
    report = metrics_from_probs(probs, labels, ["a", "b", "c"], [f"k{i}" for i in range(5)])
    assert report.accuracy == pytest.approx(0.6)
    assert report.confusion == [[1, 0, 0], [1, 1, 0], [0, 1, 1]]
    assert report.precision == pytest.approx([0.5, 0.5, 1.0])
    assert report.recall == pytest.approx([1.0, 0.5, 0.5])
    assert report.f1 == pytest.approx([2 / 3, 0.5, 2 / 3])
    assert report.support == [1, 2, 2]
    assert [m["key"] for m in report.misclassified] == ["k2", "k4"]
    assert report.misclassified[0] == {"key": "k2", "true": "b", "predicted": "a", "confidence": 0.6}
    doc = report.as_dict()
    assert doc["per_class"]["c"]["recall"] == pytest.approx(0.5)
    png = render_png(report, title="t")
    assert png.startswith(b"\x89PNG")


def test_evaluate_refuses_a_model_of_other_classes():
    from types import SimpleNamespace

    from sconeflow.model.dataload import SplitData
    from sconeflow.model.errors import ClassMismatch
    from sconeflow.model.evaluate import evaluate

    split = SplitData(np.zeros((2, 32, 32, 3), np.uint8), np.array([0, 1]), ["a", "b"], ["bus", "train"])
    with pytest.raises(ClassMismatch, match="bicycle, motorcycle"):
        evaluate(SimpleNamespace(classes=["bicycle", "motorcycle"]), split)


def test_expected_calibration_error():
    # Confidence 0.8 everywhere, 80% right: perfectly calibrated.
    probs = np.tile([0.8, 0.2], (10, 1))
    labels = np.array([0] * 8 + [1] * 2)
    ece, bins = expected_calibration_error(probs, labels)
    assert ece == pytest.approx(0.0, abs=1e-9)
    assert sum(b["count"] for b in bins) == 10
    # Always confident and always wrong: ECE = confidence.
    ece, _ = expected_calibration_error(np.tile([0.1, 0.9], (4, 1)), np.zeros(4, dtype=int))
    assert ece == pytest.approx(0.9)


def test_job_names_statuses_and_reaping(settings):
    jobs = TrainingJobs(settings)
    a = jobs.create("bucket", {"epochs": "1"})
    b = jobs.create("bucket", {"epochs": "2"})
    assert a.name != b.name and re.match(r"^image-classification-\d{4}(-\d{2}){5}-\d{3}$", a.name)
    assert a.status == "InProgress"
    jobs.add_epoch(a.name, {"epoch": 1})
    done = jobs.complete(a.name, "s3://bucket/models/x/output/model.tar.gz", {"val_accuracy": 0.9})
    assert done.status == "Completed" and done.epoch_metrics == [{"epoch": 1}]
    assert done.describe()["FinalMetricDataList"] == [
        {"MetricName": "val_accuracy", "Value": 0.9, "Timestamp": done.ended_at}
    ]
    assert jobs.stop(b.name).status == "Stopped"
    with pytest.raises(TrainingJobNotFound):
        jobs.get("nope")
    # A job whose training process died is reported as Failed.
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    c = jobs.create("bucket", {})
    jobs.db.execute("UPDATE training_jobs SET pid = ? WHERE name = ?", (int(dead.stdout), c.name))
    reaped = jobs.get(c.name)
    assert reaped.status == "Failed" and "exited before the job finished" in reaped.failure_reason
    assert {j.name: j.status for j in jobs.list()} == {
        a.name: "Completed",
        b.name: "Stopped",
        c.name: "Failed",
    }


def test_a_job_whose_pid_went_to_a_later_process_is_failed(settings):
    """The training process died without a word (SIGKILL, a reboot) and its PID now runs something else:
    the job must read Failed, not InProgress for as long as that other process lives."""
    jobs = TrainingJobs(settings)
    job = jobs.create("bucket", {})
    time.sleep(1.5)  # the bystander starts clearly after the job was recorded
    bystander = subprocess.Popen(["sleep", "300"])
    try:
        # the kernel cannot be made to reuse a PID on demand: write the bystander's PID as the job's
        jobs.db.execute("UPDATE training_jobs SET pid = ? WHERE name = ?", (bystander.pid, job.name))
        reaped = jobs.get(job.name)
        assert reaped.status == "Failed" and "exited before the job finished" in reaped.failure_reason
        assert bystander.poll() is None  # and nothing was signalled
    finally:
        bystander.kill()
        bystander.wait()
