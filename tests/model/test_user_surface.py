"""What a user meets at `train`, `train list|describe`, `evaluate` and `predict` when things go wrong:
named one-line errors instead of tracebacks, no silently wrong results, nothing overwritten."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from sconeflow.cli import app
from sconeflow.model.artifact import OnnxClassifier, build_artifact, read_artifact
from sconeflow.model.errors import (
    InvalidHyperparameter,
    InvalidImage,
    InvalidModelArtifact,
    ResourceInUse,
    TrainingDiverged,
)
from sconeflow.model.jobs import TrainingJobs
from sconeflow.model.recipe import TrainConfig
from sconeflow.model.train import train

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=True)


def make_artifact(seed: int = 0, *, nan_weights: bool = False) -> bytes:
    """A small untrained net exported like a real job."""
    import torch

    from sconeflow.model.export import export_onnx
    from sconeflow.model.net import AirbenchNet, ProbabilityModel
    from sconeflow.model.train import FitResult, build_metadata

    torch.manual_seed(seed)
    net = AirbenchNet(2, (8, 8, 8))
    if nan_weights:
        with torch.no_grad():
            for p in net.parameters():
                p.fill_(float("nan"))
    model = ProbabilityModel([net]).eval()
    result = FitResult(model, [0.5, 0.5, 0.5], [0.25, 0.25, 0.25], ["bicycle", "motorcycle"])
    meta = build_metadata(result, TrainConfig.tiny(), "job", "bucket", {})
    return build_artifact(export_onnx(model), meta)


@pytest.fixture(scope="module")
def artifact() -> bytes:
    return make_artifact()


def tar_gz(onnx_bytes: bytes, meta: dict) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        for name, data in (("model.onnx", onnx_bytes), ("model.json", json.dumps(meta).encode())):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return raw.getvalue()


@pytest.mark.parametrize(
    "change",
    [
        {"preprocessing": "bilinear"},
        {"output": None},
        {"output": ["probabilities"]},
        {"input.std": [float("nan"), 0.2, 0.2]},
        {"input.mean": [True, 0.5, 0.5]},
    ],
)
def test_a_malformed_model_json_is_an_invalid_artifact_not_a_traceback(artifact, change):
    onnx_bytes, meta = read_artifact(artifact)
    meta = json.loads(json.dumps(meta))
    for key, value in change.items():
        if key.startswith("input."):
            meta["input"]["normalization"][key.split(".")[1]] = value
        else:
            meta[key] = value
    with pytest.raises(InvalidModelArtifact, match=r"model\.json"):
        read_artifact(tar_gz(onnx_bytes, meta))


def test_model_json_input_shape_must_be_the_graphs(artifact):
    onnx_bytes, meta = read_artifact(artifact)
    meta = json.loads(json.dumps(meta))
    meta["input"]["shape"] = [3, 64, 64]
    # Before: loaded fine, and every prediction then died inside onnxruntime with an untyped error.
    with pytest.raises(InvalidModelArtifact, match=r"input.shape is \[3, 64, 64\]"):
        OnnxClassifier(onnx_bytes, meta, intra_op_threads=1)


def test_predict_names_the_file_that_is_not_an_image(settings, artifact, tmp_path):
    model = tmp_path / "model.tar.gz"
    model.write_bytes(artifact)
    good = tmp_path / "good.jpg"
    Image.new("RGB", (40, 30), (10, 200, 10)).save(good)
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    home = str(settings.home)
    result = invoke("predict", "--model", str(model), str(good), str(bad), "--home", home)
    assert isinstance(result.exception, InvalidImage)
    message = str(result.exception)
    assert str(bad) in message and "BytesIO" not in message
    ok = invoke("predict", "--model", str(model), "--json", str(good), "--home", home)
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.output)["file"] == str(good)


def test_a_model_with_nan_outputs_is_refused_not_reported(settings, prepared, tmp_path):
    model = tmp_path / "nan" / "model.tar.gz"
    model.parent.mkdir()
    model.write_bytes(make_artifact(nan_weights=True))
    image = tmp_path / "x.png"
    Image.new("RGB", (32, 32), (1, 2, 3)).save(image)
    home = str(settings.home)
    # Before: predict printed {"bicycle": NaN, ...} (not JSON) and evaluate an accuracy (argmax of NaN = 0).
    predicted = invoke("predict", "--model", str(model), "--json", str(image), "--home", home)
    assert isinstance(predicted.exception, InvalidModelArtifact), predicted.output
    assert "NaN" in str(predicted.exception)
    evaluated = invoke("evaluate", "--model", str(model), "--json", "--home", home)
    assert isinstance(evaluated.exception, InvalidModelArtifact), evaluated.output


def test_evaluate_reports_of_two_artifacts_do_not_overwrite_each_other(settings, prepared, tmp_path):
    pngs = []
    for seed, folder in ((1, "a"), (2, "b")):
        path = tmp_path / "models" / folder / "model.tar.gz"
        path.parent.mkdir(parents=True)
        path.write_bytes(make_artifact(seed))
        result = invoke("evaluate", "--model", str(path), "--json", "--home", str(settings.home))
        assert result.exit_code == 0, result.output
        pngs.append(Path(json.loads(result.output)["png"]))
    # Before: both were <home>/reports/models-test.png (the folder two levels up), the second replacing
    # the first.
    assert pngs[0] != pngs[1]
    assert all(p.is_file() and p.name.startswith("model-") for p in pngs)


@pytest.mark.parametrize(
    "changes",
    [{"learning_rate": float("inf")}, {"learning_rate": float("nan")}, {"seed": -1}, {"seed": 2**70}],
)
def test_non_finite_learning_rate_and_out_of_range_seed_are_refused(changes):
    with pytest.raises(InvalidHyperparameter):
        TrainConfig.tiny(**changes)


def test_cli_seed_out_of_range_is_a_named_error_and_records_no_job(settings, prepared):
    home = str(settings.home)
    result = invoke("train", "--fast", "--epochs", "1", "--widths", "8,8,8", "--seed", "-1", "--home", home)
    assert isinstance(result.exception, InvalidHyperparameter), result.output
    assert TrainingJobs(settings).list() == []


def test_a_diverging_training_fails_instead_of_shipping_a_nan_model(settings, prepared):
    config = TrainConfig.tiny(epochs=3, learning_rate=1e6)
    with pytest.raises(TrainingDiverged, match="learning_rate"):
        train(settings, config, store=prepared, job_name="diverges")
    job = TrainingJobs(settings).get("diverges")
    assert job.status == "Failed" and job.model_artifacts is None
    assert job.failure_reason.startswith("TrainingDiverged: ")
    assert all(np.isfinite(e["loss"]) for e in job.epoch_metrics)
    assert list(prepared.iter_objects(settings.bucket, prefix="models/diverges/")) == []


def test_a_taken_job_name_is_resource_in_use(settings, prepared):
    jobs = TrainingJobs(settings)
    jobs.fail(jobs.create(settings.bucket, {}, name="mine").name, "x")
    result = invoke("train", "--fast", "--epochs", "1", "--job-name", "mine", "--home", str(settings.home))
    assert isinstance(result.exception, ResourceInUse), result.output
    assert "already exists" in str(result.exception)
    assert TrainingJobs(settings).get("mine").failure_reason == "x"  # untouched


def test_describe_input_channels_name_the_objects_training_read(settings, prepared):
    jobs = TrainingJobs(settings)
    jobs.create(settings.bucket, {}, name="channels")
    described = json.loads(invoke("train", "describe", "channels", "--home", str(settings.home)).output)
    uris = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in described["InputDataConfig"]}
    assert uris == {
        "train": f"s3://{settings.bucket}/train/",
        "train_lst": f"s3://{settings.bucket}/train.lst",
    }
    prepared.head_object(settings.bucket, "train.lst")  # the manifest really is there


def test_train_list_never_cuts_a_job_name(settings):
    jobs = TrainingJobs(settings)
    long_name = "image-classification-2026-11-24-19-36-55-905"
    jobs.create("b", {}, name=long_name)
    result = runner.invoke(app, ["train", "list", "--home", str(settings.home)], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    # Before: "image-classif…" on an 80-column terminal, the one thing describe/evaluate/predict need.
    assert long_name in result.output
    assert "InProgress" in result.output


def test_train_summary_shows_the_whole_artifact_uri(settings, prepared):
    home = str(settings.home)
    args = ["train", "--fast", "--epochs", "1", "--widths", "8,8,8", "--threads", "1", "--job-name", "whole"]
    result = runner.invoke(app, [*args, "--home", home], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    rows = [line for line in result.output.splitlines() if line.startswith("│")]
    start = next(i for i, line in enumerate(rows) if "model artifact" in line)
    # The value column's pieces, from the artifact row until the next named row.
    pieces = [rows[start].split("│")[2].strip()]
    for line in rows[start + 1 :]:
        what, value = line.split("│")[1:3]
        if what.strip():
            break
        pieces.append(value.strip())
    # Before: "s3://<bucket>/models/image-class…", which no one can copy.
    assert "".join(pieces) == f"s3://{settings.bucket}/models/whole/output/model.tar.gz"
