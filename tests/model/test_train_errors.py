"""Bad training input: each case is a named error and leaves a Failed job record with the reason."""

from __future__ import annotations

import pytest

from sconeflow.errors import SconeflowError
from sconeflow.model.errors import (
    CorruptImage,
    EmptySplit,
    InvalidHyperparameter,
    ManifestMissing,
    SingleClassSplit,
    TrainingStopped,
)
from sconeflow.model.jobs import TrainingJobs
from sconeflow.model.recipe import TrainConfig
from sconeflow.model.train import train


def only_job(settings):
    jobs = TrainingJobs(settings).list()
    assert len(jobs) == 1
    return jobs[0]


def assert_failed(settings, error: type[SconeflowError], *words: str) -> None:
    job = only_job(settings)
    assert job.status == "Failed"
    assert job.failure_reason.startswith(f"{error.__name__}: ")
    for word in words:
        assert word in job.failure_reason
    assert job.ended_at is not None and job.model_artifacts is None


def test_empty_split(settings, prepared):
    prepared.put_object(settings.bucket, "train.lst", b"")
    with pytest.raises(EmptySplit, match="holds no images"):
        train(settings, TrainConfig.tiny(), store=prepared)
    assert_failed(settings, EmptySplit, "train")


def test_single_class_split(settings, prepared):
    lines = prepared.get_object(settings.bucket, "train.lst").decode().splitlines()
    kept = "".join(line + "\n" for line in lines if line.split("\t")[1] == "1")
    prepared.put_object(settings.bucket, "train.lst", kept.encode())
    with pytest.raises(SingleClassSplit, match="motorcycle"):
        train(settings, TrainConfig.tiny(), store=prepared)
    assert_failed(settings, SingleClassSplit, "motorcycle")


def test_corrupt_png(settings, prepared):
    first = prepared.get_object(settings.bucket, "train.lst").decode().splitlines()[3].split("\t")[2]
    prepared.put_object(settings.bucket, f"train/{first}", b"\x89PNG\r\n\x1a\n this is not a png")
    with pytest.raises(CorruptImage, match=first):
        train(settings, TrainConfig.tiny(), store=prepared)
    assert_failed(settings, CorruptImage, first)


def test_missing_manifest(settings, prepared):
    prepared.delete_object(settings.bucket, "train.lst")
    with pytest.raises(ManifestMissing, match="train"):
        train(settings, TrainConfig.tiny(), store=prepared)
    assert_failed(settings, ManifestMissing, "train")


def test_missing_bucket(settings, store):
    with pytest.raises(ManifestMissing):
        train(settings, TrainConfig.tiny(), store=store)
    assert_failed(settings, ManifestMissing)


def test_num_classes_must_match_classes_json(settings, prepared):
    with pytest.raises(InvalidHyperparameter, match="num_classes=3"):
        train(settings, TrainConfig.tiny(num_classes=3), store=prepared)
    assert_failed(settings, InvalidHyperparameter, "num_classes")


@pytest.mark.parametrize(
    "changes",
    [
        {"epochs": 0},
        {"learning_rate": -1},
        {"image_shape": "3,64,64"},
        {"tta": "sideways"},
        {"quantize": "int4"},
        {"val_fraction": 0.7},
    ],
)
def test_bad_hyperparameters_are_refused_before_any_job(changes):
    with pytest.raises(InvalidHyperparameter):
        TrainConfig(**changes)


def test_interrupt_marks_the_job_stopped(settings, prepared):
    def interrupt(report):
        if report.epoch == 2:
            raise KeyboardInterrupt

    with pytest.raises(TrainingStopped):
        train(settings, TrainConfig.tiny(), store=prepared, on_epoch=interrupt)
    job = only_job(settings)
    assert job.status == "Stopped"
    assert len(job.epoch_metrics) == 2
    assert job.model_artifacts is None


def test_sigterm_stops_a_training_command_and_records_it(settings, prepared):
    """``kill <pid>`` on `sconeflow train` is handled like Ctrl-C: the job is recorded as Stopped."""
    import os
    import signal
    import subprocess
    import sys
    import time

    command = [sys.executable, "-m", "sconeflow", "train", "--fast", "--epochs", "400"]
    proc = subprocess.Popen(
        [*command, "--home", str(settings.home)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # wait until an epoch is on record
            jobs = TrainingJobs(settings).list()
            if jobs and jobs[0].epoch_metrics:
                break
            assert proc.poll() is None, proc.stderr.read().decode()
            time.sleep(0.2)
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=60) != 0
    finally:
        if proc.poll() is None:
            proc.kill()
    job = only_job(settings)
    assert job.status == "Stopped"
    assert job.model_artifacts is None
    assert "TrainingStopped" in proc.stderr.read().decode()
