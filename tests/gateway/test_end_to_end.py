"""End to end with a REAL endpoint (a model from the training stage's quick ``train(...)`` on a tiny
synthetic prepared dataset): SageMaker Runtime through the gateway with boto3, and the three functions
chained by hand through `sconeflow lambda invoke`."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from sconeflow.cli import app
from sconeflow.config import Settings, load_settings
from sconeflow.gateway.client import boto3_client
from sconeflow.gateway.server import InProcessGateway, start_in_process
from sconeflow.lambda_runtime.registry import FunctionRegistry
from sconeflow.store import LocalStore

CLASSES = ["bicycle", "motorcycle"]
CLASSIC_KEY = "test/bicycle_s_000513.png"
ENDPOINT = "scones-e2e"


@dataclass
class World:
    settings: Settings
    store: LocalStore
    gateway: InProcessGateway
    bucket: str


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    from sconeflow.data.prepare import prepare_dataset
    from sconeflow.data.synthetic import make_cifar_tarball
    from sconeflow.endpoint.registry import delete, deploy
    from sconeflow.model.recipe import TrainConfig
    from sconeflow.model.train import train

    tmp = tmp_path_factory.mktemp("lambda-e2e")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SCONEFLOW_HOME", str(tmp / "home"))
        for name in ("SCONEFLOW_STORE", "SCONEFLOW_BUCKET", "AWS_ENDPOINT_URL"):
            mp.delenv(name, raising=False)
        mp.setenv("AWS_ACCESS_KEY_ID", "testing")
        mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
        settings = load_settings(tmp / "home")
        settings.ensure_dirs()
        store = LocalStore(settings.buckets_dir)
        tarball = make_cifar_tarball(tmp / "synthetic.tar.gz", classes=CLASSES, n_train=24, n_test=8, seed=0)
        prepare_dataset(settings, source=tarball, classes=CLASSES, store=store)
        config = TrainConfig(
            epochs=2,
            widths=(8, 16, 16),
            ensemble_size=1,
            distill=False,
            evaluate_test=False,
            val_fraction=0.0,
        )
        job = train(settings, config, store=store)
        bicycle = next(i.key for i in store.iter_objects(settings.bucket, "test/") if "bicycle" in i.key)
        store.copy_object(settings.bucket, bicycle, settings.bucket, CLASSIC_KEY)
        deploy(settings, job.model_artifacts, name=ENDPOINT, capture_percent=100)
        gateway = start_in_process(settings)
        try:
            yield World(settings, store, gateway, settings.bucket)
        finally:
            gateway.close()
            delete(settings, ENDPOINT)


@pytest.fixture
def runtime_client(world: World) -> Any:
    return boto3_client(world.settings, "sagemaker-runtime", url=world.gateway.url)


def test_invoke_endpoint_through_the_gateway(world: World, runtime_client: Any) -> None:
    png = world.store.get_object(world.bucket, CLASSIC_KEY)
    response = runtime_client.invoke_endpoint(EndpointName=ENDPOINT, ContentType="image/png", Body=png)
    assert response["ContentType"] == "application/json"
    assert response["InvokedProductionVariant"] == "AllTraffic"
    probabilities = json.loads(response["Body"].read())
    assert len(probabilities) == 2 and abs(sum(probabilities) - 1.0) < 1e-4


def test_endpoint_errors_through_the_gateway(world: World, runtime_client: Any) -> None:
    with pytest.raises(runtime_client.exceptions.ValidationError) as exc:
        runtime_client.invoke_endpoint(EndpointName="no-such-endpoint", ContentType="image/png", Body=b"x")
    assert (
        exc.value.response["Error"]["Message"]
        == "Endpoint no-such-endpoint of account 123456789012 not found."
    )
    # the container's 415, passed through
    with pytest.raises(runtime_client.exceptions.ModelError) as refused:
        runtime_client.invoke_endpoint(EndpointName=ENDPOINT, ContentType="text/csv", Body=b"1,2,3")
    assert refused.value.response["OriginalStatusCode"] == 415
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 424


def test_a_target_model_on_a_single_model_endpoint_is_a_validation_error(
    world: World, runtime_client: Any
) -> None:
    png = world.store.get_object(world.bucket, CLASSIC_KEY)
    with pytest.raises(runtime_client.exceptions.ValidationError) as exc:
        runtime_client.invoke_endpoint(
            EndpointName=ENDPOINT, ContentType="image/png", Body=png, TargetModel="model.tar.gz"
        )
    assert exc.value.response["Error"]["Message"] == (
        f"Endpoint {ENDPOINT} is not a multi-model endpoint and does not support target model header."
    )


def test_an_endpoint_that_does_not_answer_is_sagemakers_timeout_model_error(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SageMaker gives the container 60 s (here 1 s), then answers 424 ModelError with status 0."""
    import os
    import signal

    from sconeflow.endpoint.registry import EndpointRegistry
    from sconeflow.gateway import sagemaker_runtime

    monkeypatch.setattr(sagemaker_runtime, "FORWARD_TIMEOUT_S", 1.0)
    pid = EndpointRegistry(world.settings).view(ENDPOINT).pid
    assert pid is not None
    gateway = start_in_process(world.settings)  # a fresh gateway: its connections take the short timeout
    os.kill(pid, signal.SIGSTOP)
    try:
        client = boto3_client(world.settings, "sagemaker-runtime", url=gateway.url)
        png = world.store.get_object(world.bucket, CLASSIC_KEY)
        with pytest.raises(client.exceptions.ModelError) as exc:
            client.invoke_endpoint(EndpointName=ENDPOINT, ContentType="image/png", Body=png)
    finally:
        os.kill(pid, signal.SIGCONT)
        gateway.close()
    error = exc.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert error["OriginalStatusCode"] == 0 and error["Error"]["Message"].startswith(
        'Received server error (0) from primary with message "Your invocation timed out while waiting'
    )


def _invoke(runner: CliRunner, name: str, payload: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["lambda", "invoke", name, "--payload", payload])
    return result.exit_code, result.stdout, result.stderr


def test_three_functions_chained_by_hand(world: World, tmp_path: Path) -> None:
    runner = CliRunner()
    updated = runner.invoke(app, ["lambda", "update", "classify_image", "--env", f"ENDPOINT_NAME={ENDPOINT}"])
    assert updated.exit_code == 0, updated.output
    classic = json.dumps({"image_data": "", "s3_bucket": world.bucket, "s3_key": CLASSIC_KEY})

    code, out, err = _invoke(runner, "serialize_image_data", classic)
    assert code == 0, err
    serialized = json.loads(out)
    assert serialized["statusCode"] == 200 and serialized["body"]["image_data"]
    (tmp_path / "serialized.json").write_text(out)

    code, out, err = _invoke(runner, "classify_image", f"@{tmp_path / 'serialized.json'}")
    assert code == 0, err
    classified = json.loads(out)
    inferences = classified["body"]["inferences"]
    assert len(inferences) == 2 and abs(sum(inferences) - 1.0) < 1e-4
    assert classified["body"]["s3_key"] == CLASSIC_KEY

    # the image passes with a threshold just under its confidence
    threshold = round(max(inferences) - 0.001, 6)
    runner.invoke(app, ["lambda", "update", "filter_inference", "--env", f"THRESHOLD={threshold}"])
    code, out, err = _invoke(runner, "filter_inference", json.dumps(classified))
    assert code == 0, err
    assert json.loads(out) == {"statusCode": 200, "body": classified["body"]}

    # a low-confidence input (a flat grey picture, under a threshold above its confidence) is refused
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), (128, 128, 128)).save(buffer, format="PNG")
    world.store.put_object(world.bucket, "test/grey.png", buffer.getvalue(), content_type="image/png")
    event = json.dumps({"s3_bucket": world.bucket, "s3_key": "test/grey.png"})
    code, out, err = _invoke(runner, "serialize_image_data", event)
    code, out, err = _invoke(runner, "classify_image", out)
    assert code == 0, err
    grey_max = max(json.loads(out)["body"]["inferences"])
    assert grey_max < 1.0
    limit = str(min(1.0, grey_max + 0.01))
    FunctionRegistry(world.settings).update("filter_inference", environment={"THRESHOLD": limit})
    code, out, err = _invoke(runner, "filter_inference", out)
    assert code == 1
    error = json.loads(out)
    assert error["errorType"] == "ThresholdConfidenceNotMet"
    assert error["errorMessage"].startswith("THRESHOLD_CONFIDENCE_NOT_MET: max confidence ")
    assert "ThresholdConfidenceNotMet" in err


def test_up_restarts_in_service_endpoints_and_down_stops_everything(world: World) -> None:
    """Runs last in this module: it leaves the endpoint's server stopped."""
    import os
    import subprocess
    import sys

    from sconeflow.endpoint.registry import resolve_endpoint_url, stop_all
    from sconeflow.gateway.client import gateway_url

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ, COLUMNS="200")
        return subprocess.run(
            [sys.executable, "-m", "sconeflow", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=180,
            check=False,
        )

    assert stop_all(world.settings) == [ENDPOINT]
    started = cli("up", "--port", "0")
    try:
        assert started.returncode == 0, started.stderr
        assert f"endpoint {ENDPOINT} started" in started.stdout
        client = boto3_client(world.settings, "sagemaker-runtime")  # the background gateway
        png = world.store.get_object(world.bucket, CLASSIC_KEY)
        body = client.invoke_endpoint(EndpointName=ENDPOINT, ContentType="image/png", Body=png)["Body"].read()
        assert len(json.loads(body)) == 2
    finally:
        stopped = cli("down")
    assert (
        stopped.returncode == 0 and f"endpoint {ENDPOINT}" in stopped.stdout and "gateway" in stopped.stdout
    )
    assert gateway_url(world.settings) is None
    with pytest.raises(Exception, match="no running server"):
        resolve_endpoint_url(world.settings, ENDPOINT)
