"""Bad CLI input: SageMaker's job-name rule, an unknown --status, a --threads below 1."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from sconeflow.cli import app
from sconeflow.model.errors import InvalidTrainingJobName
from sconeflow.model.jobs import TrainingJobs, validate_job_name
from sconeflow.model.recipe import TrainConfig
from sconeflow.model.train import train

runner = CliRunner()

BAD_NAMES = ["", "-lead", "trail-", "has_underscore", "dot.name", "space name", "é", "a" * 64]
GOOD_NAMES = ["a", "Job-1", "a--b", "x" * 63, "image-classification-2026-11-23-07-12-03-123"]


@pytest.mark.parametrize("name", GOOD_NAMES)
def test_good_job_names(name):
    assert validate_job_name(name) == name


@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_job_names_are_a_named_error_and_record_nothing(settings, name):
    with pytest.raises(InvalidTrainingJobName):
        train(settings, TrainConfig.tiny(), job_name=name)
    assert TrainingJobs(settings).list() == []


def test_cli_bad_job_name(settings):
    result = runner.invoke(app, ["train", "--fast", "--job-name", "bad_name", "--home", str(settings.home)])
    assert isinstance(result.exception, InvalidTrainingJobName)
    assert TrainingJobs(settings).list() == []


def test_train_list_unknown_status_is_a_usage_error(settings):
    result = runner.invoke(app, ["train", "list", "--status", "bogus", "--home", str(settings.home)])
    assert result.exit_code == 2
    assert "bogus" in result.output and "Completed" in result.output
    ok = runner.invoke(app, ["train", "list", "--status", "Completed", "--home", str(settings.home)])
    assert ok.exit_code == 0, ok.output
    with pytest.raises(ValueError):
        TrainingJobs(settings).list(status="bogus")


@pytest.mark.parametrize("command", [["evaluate"], ["predict", "x.png"]])
@pytest.mark.parametrize("threads", ["-1", "0"])
def test_threads_below_one_is_a_usage_error(settings, command, threads):
    result = runner.invoke(
        app, [*command, "--model", "nope", "--threads", threads, "--home", str(settings.home)]
    )
    assert result.exit_code == 2, result.output
    assert "--threads" in result.output
