"""workflow/step-function.json end to end: the three REAL Lambdas, a REAL endpoint serving a model from the
training stage's quick ``train(...)`` on synthetic data, the SNS topic log, and both pictures."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from sconeflow.cli import app
from sconeflow.config import Settings, load_settings
from sconeflow.stepfunctions.render import STATUS_STYLE, render_execution
from sconeflow.stepfunctions.service import StepFunctionsService
from sconeflow.stepfunctions.topic_log import TopicLog
from sconeflow.stepfunctions.validate import validate_definition
from sconeflow.store import LocalStore

from .sfn_helpers import WORKFLOW, Hook, close, hex_rgb, pixel, serve_hook

CLASSES = ("bicycle", "motorcycle")


@dataclass(frozen=True)
class Deployed:
    settings: Settings
    endpoint: str
    confident_key: str  # the bicycle image the model is surest about
    unsure_key: str  # the image the model is least sure about
    threshold: float


def _probabilities(settings: Settings, endpoint: str, png: bytes) -> list[float]:
    import urllib.request

    from sconeflow.endpoint.registry import resolve_endpoint_url

    url = resolve_endpoint_url(settings, endpoint)
    request = urllib.request.Request(
        f"{url}/invocations", data=png, headers={"Content-Type": "image/png"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return [float(v) for v in json.loads(response.read())]


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    from sconeflow.data.prepare import prepare_dataset
    from sconeflow.data.synthetic import make_cifar_tarball
    from sconeflow.endpoint.registry import delete, deploy
    from sconeflow.lambda_runtime.registry import FunctionRegistry
    from sconeflow.model.recipe import TrainConfig
    from sconeflow.model.train import train

    workdir = tmp_path_factory.mktemp("sfn-workflow")
    saved = {k: os.environ.get(k) for k in ("SCONEFLOW_HOME", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    os.environ["SCONEFLOW_HOME"] = str(workdir / "home")
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    settings = load_settings(workdir / "home")
    settings.ensure_dirs()
    store = LocalStore(settings.buckets_dir)
    tarball = make_cifar_tarball(workdir / "synthetic.tar.gz", classes=CLASSES, n_train=40, n_test=4, seed=0)
    prepare_dataset(settings, source=tarball, classes=list(CLASSES), store=store)
    config = TrainConfig.tiny(
        epochs=5, label_smoothing=0.0, augment=False, evaluate_test=False, val_fraction=0.0, seed=0
    )
    job = train(settings, config, store=store)
    view = deploy(settings, job.model_artifacts, name="scones-endpoint", capture_percent=100)
    try:
        bicycles = []
        for info in store.iter_objects(settings.bucket, "test/bicycle"):
            probs = _probabilities(settings, "scones-endpoint", store.get_object(settings.bucket, info.key))
            bicycles.append((max(probs), info.key))
        confident = max(bicycles)
        # a featureless grey picture: the model cannot be sure about it
        buffer = io.BytesIO()
        Image.fromarray(np.full((32, 32, 3), 128, np.uint8)).save(buffer, format="PNG")
        store.put_object(settings.bucket, "incoming/grey.png", buffer.getvalue())
        unsure = (max(_probabilities(settings, "scones-endpoint", buffer.getvalue())), "incoming/grey.png")
        assert confident[0] > unsure[0] + 0.01, (confident, unsure)
        threshold = (confident[0] + unsure[0]) / 2
        functions = FunctionRegistry(settings)
        functions.update("classify_image", environment={"ENDPOINT_NAME": view.endpoint.name})
        functions.update("filter_inference", environment={"THRESHOLD": f"{threshold:.6f}"})
        yield Deployed(settings, view.endpoint.name, confident[1], unsure[1], threshold)
    finally:
        try:
            delete(settings, view.endpoint.name)
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def test_workflow_definition_is_valid_and_deployable_as_is() -> None:
    text = WORKFLOW.read_text()
    assert validate_definition(text).result == "OK"
    spec = json.loads(text)
    tasks = [s for s in spec["States"].values() if s.get("Resource") == "arn:aws:states:::lambda:invoke"]
    assert len(tasks) == 3
    for task in tasks:
        assert task["Parameters"]["Payload.$"] == "$" and task["OutputPath"] == "$.Payload"
        assert task["Parameters"]["FunctionName"].startswith(
            "arn:aws:lambda:us-east-1:123456789012:function:"
        )
        retry = task["Retry"][0]
        assert retry["ErrorEquals"] == [
            "Lambda.ServiceException",
            "Lambda.AWSLambdaException",
            "Lambda.SdkClientException",
            "Lambda.TooManyRequestsException",
        ]
        assert (retry["IntervalSeconds"], retry["MaxAttempts"], retry["BackoffRate"]) == (1, 3, 2)
    catch = spec["States"]["FilterLowConfidence"]["Catch"][0]
    assert catch["ErrorEquals"] == ["ThresholdConfidenceNotMet"]
    assert spec["States"]["ThresholdConfidenceNotMet"]["Type"] == "Fail"


@pytest.mark.timeout(300)
def test_confident_image_succeeds_and_unsure_image_fails_and_notifies(
    deployed: Deployed, tmp_path: Path
) -> None:
    settings = deployed.settings
    service = StepFunctionsService(settings)
    service.create_state_machine("scones", WORKFLOW.read_text())

    good = service.run_to_end(
        "scones",
        json.dumps({"s3_bucket": settings.bucket, "s3_key": deployed.confident_key}),
        name="confident",
    )
    assert good.status == "SUCCEEDED", (good.error, good.cause)
    body = json.loads(good.output)["body"]
    assert body["s3_key"] == deployed.confident_key and max(body["inferences"]) >= deployed.threshold
    good_types = [e["type"] for e in service.history("confident")[1]]
    assert good_types == ["ExecutionStarted"] + [
        "TaskStateEntered",
        "TaskScheduled",
        "TaskStarted",
        "TaskSucceeded",
        "TaskStateExited",
    ] * 3 + ["ExecutionSucceeded"]

    bad = service.run_to_end(
        "scones", json.dumps({"s3_bucket": settings.bucket, "s3_key": deployed.unsure_key}), name="unsure"
    )
    assert bad.status == "FAILED"
    assert bad.error == "ThresholdConfidenceNotMet"
    # the failure was published to the errors topic before the execution failed
    messages = TopicLog(settings).read("sconeflow-workflow-errors")
    assert len(messages) == 1
    message = messages[0].message
    assert message["execution"] == bad.arn
    assert message["error"] == "ThresholdConfidenceNotMet"
    assert message["image_key"] == deployed.unsure_key
    assert "THRESHOLD_CONFIDENCE_NOT_MET" in message["cause"]
    # ... and `sconeflow notifications tail --webhook` delivers it like an SNS HTTP subscription
    with serve_hook() as url:
        tail = CliRunner().invoke(app, ["notifications", "tail", "--webhook", url])
    assert tail.exit_code == 0 and deployed.unsure_key in tail.output
    assert [json.loads(body)["MessageId"] for _, body in Hook.received] == [messages[0].body["MessageId"]]

    # both pictures, coloured by what happened
    for name, expected in (
        (
            "confident",
            {
                "SerializeImageData": "succeeded",
                "ClassifyImage": "succeeded",
                "FilterLowConfidence": "succeeded",
                "NotifyLowConfidence": "not_started",
                "ThresholdConfidenceNotMet": "not_started",
            },
        ),
        (
            "unsure",
            {
                "SerializeImageData": "succeeded",
                "ClassifyImage": "succeeded",
                "FilterLowConfidence": "caught",
                "NotifyLowConfidence": "succeeded",
                "ThresholdConfidenceNotMet": "failed",
                "WorkflowFailed": "not_started",
            },
        ),
    ):
        result = render_execution(service, name, tmp_path / f"{name}.png")
        for state, status in expected.items():
            assert result.statuses[state] == status, (name, state)
            fill = hex_rgb(STATUS_STYLE[status][0])
            assert close(pixel(result.path, result.boxes[state]), fill), (name, state, status)
