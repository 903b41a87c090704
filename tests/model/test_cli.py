"""The training CLI: train, train list/describe, evaluate, predict, and named errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from PIL import Image
from typer.testing import CliRunner

from sconeflow.cli import app
from sconeflow.model.artifact import read_artifact, resolve_model
from sconeflow.model.errors import InvalidHyperparameter, ManifestMissing

runner = CliRunner()
ROLE = "arn:aws:iam::123456789012:role/service-role/AmazonSageMaker-ExecutionRole"


def invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=True)


def test_train_list_describe_evaluate_predict(settings, prepared, tmp_path):
    home = str(settings.home)
    result = invoke(
        "train",
        "--fast",
        "--epochs",
        "4",
        "--widths",
        "8,16,16",
        "--mini-batch-size",
        "16",
        "--threads",
        "1",
        "--seed",
        "3",
        "--role-arn",
        ROLE,
        "--home",
        home,
    )
    assert result.exit_code == 0, result.output
    listed = invoke("train", "list", "--json", "--home", home)
    assert listed.exit_code == 0, listed.output
    summaries = json.loads(listed.output)["TrainingJobSummaries"]
    assert len(summaries) == 1 and summaries[0]["TrainingJobStatus"] == "Completed"
    name = summaries[0]["TrainingJobName"]
    assert name in result.output
    described = json.loads(invoke("train", "describe", name, "--home", home).output)
    assert described["TrainingJobName"] == name
    assert described["RoleArn"] == ROLE
    assert described["HyperParameters"]["epochs"] == "4" and described["HyperParameters"]["seed"] == "3"
    assert described["ModelArtifacts"]["S3ModelArtifacts"].endswith(f"models/{name}/output/model.tar.gz")

    png = tmp_path / "eval.png"
    evaluated = invoke("evaluate", "--model", name, "--png", str(png), "--json", "--home", home)
    assert evaluated.exit_code == 0, evaluated.output
    report = json.loads(evaluated.output)
    assert report["accuracy"] >= 0.9 and len(report["confusion_matrix"]["matrix"]) == 2
    assert set(report["per_class"]) == {"bicycle", "motorcycle"}
    assert png.read_bytes().startswith(b"\x89PNG")

    image = tmp_path / "big.jpg"
    Image.new("RGB", (64, 48), (200, 30, 30)).save(image)
    predicted = invoke("predict", "--model", name, "--json", str(image), "--home", home)
    assert predicted.exit_code == 0, predicted.output
    line = json.loads(predicted.output.strip().splitlines()[0])
    assert line["class"] in ("bicycle", "motorcycle")
    assert abs(sum(line["probabilities"].values()) - 1) < 1e-5


@pytest.mark.parametrize(("option", "exported"), [("same", [8, 8, 8]), ("4,8,8", [4, 8, 8])])
def test_student_widths_option(settings, prepared, option, exported):
    home = str(settings.home)
    args = ["train", "--fast", "--epochs", "1", "--widths", "8,8,8", "--ensemble-size", "2", "--distill"]
    result = invoke(*args, "--student-widths", option, "--threads", "1", "--home", home)
    assert result.exit_code == 0, result.output
    name = json.loads(invoke("train", "list", "--json", "--home", home).output)["TrainingJobSummaries"][0]
    _, meta = read_artifact(resolve_model(settings, name["TrainingJobName"]).data)
    assert meta["architecture"]["widths"] == exported


def test_train_without_a_dataset_is_a_named_error(settings):
    result = invoke("train", "--fast", "--epochs", "1", "--widths", "8,8,8", "--home", str(settings.home))
    assert isinstance(result.exception, ManifestMissing)
    described = invoke("train", "list", "--json", "--home", str(settings.home))
    jobs = json.loads(described.output)["TrainingJobSummaries"]
    assert [j["TrainingJobStatus"] for j in jobs] == ["Failed"]


def test_errors_print_one_line(settings):
    out = subprocess.run(
        [sys.executable, "-m", "sconeflow", "train", "describe", "nope", "--home", str(settings.home)],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 1
    assert out.stderr.strip() == "TrainingJobNotFound: training job 'nope' does not exist"
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "sconeflow",
            "predict",
            "--model",
            "nope",
            "x.png",
            "--home",
            str(settings.home),
        ],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 1 and out.stderr.startswith("ModelNotFound: ")


def test_precision_option(settings, prepared):
    home = str(settings.home)
    args = ["train", "--fast", "--epochs", "1", "--widths", "8,8,8", "--threads", "1", "--home", home]
    result = invoke(*args, "--precision", "float32")
    assert result.exit_code == 0, result.output
    name = json.loads(invoke("train", "list", "--json", "--home", home).output)["TrainingJobSummaries"][0]
    job = json.loads(invoke("train", "describe", name["TrainingJobName"], "--home", home).output)
    assert job["HyperParameters"]["precision"] == "float32"
    _, meta = read_artifact(resolve_model(settings, name["TrainingJobName"]).data)
    assert meta["training"]["precision"] == "float32"
    bad = invoke(*args, "--precision", "float16")
    assert isinstance(bad.exception, InvalidHyperparameter)
    assert "precision must be one of auto, float32, bfloat16" in str(bad.exception)
    listed = json.loads(invoke("train", "list", "--json", "--home", home).output)
    assert len(listed["TrainingJobSummaries"]) == 1  # a bad option records no job


def test_color_jitter_option(settings, prepared):
    home = str(settings.home)
    args = ["train", "--fast", "--epochs", "1", "--widths", "8,8,8", "--threads", "1", "--home", home]
    assert invoke(*args, "--color-jitter").exit_code == 0
    name = json.loads(invoke("train", "list", "--json", "--home", home).output)["TrainingJobSummaries"][0]
    job = json.loads(invoke("train", "describe", name["TrainingJobName"], "--home", home).output)
    assert job["HyperParameters"]["color_jitter"] == "true"


def test_a_malformed_role_arn_is_refused_before_any_work(settings):
    result = invoke("train", "--fast", "--role-arn", "admin", "--home", str(settings.home))
    assert result.exit_code != 0
    assert isinstance(result.exception, InvalidHyperparameter), result.output
