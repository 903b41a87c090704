"""The endpoint server through boto3 ``sagemaker-runtime`` (and raw HTTP), with a real trained model."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import boto3
import numpy as np
import pytest
from botocore.config import Config

from sconeflow.config import Settings, load_settings
from sconeflow.endpoint.registry import delete, deploy, resolve_endpoint_url
from sconeflow.endpoint.server import ServingOptions
from sconeflow.model.artifact import load_classifier
from sconeflow.store import LocalStore

from .capture_shape import describe_record
from .conftest import TrainedModel
from .helpers import encode, png_bomb

NAME = "scones-ep"


@pytest.fixture(scope="module")
def live(
    tmp_path_factory: pytest.TempPathFactory, trained_model: TrainedModel
) -> Iterator[tuple[Settings, str]]:
    """One endpoint (100% capture) shared by this module's read-only tests."""
    mp = pytest.MonkeyPatch()
    home = tmp_path_factory.mktemp("live") / "home"
    mp.setenv("SCONEFLOW_HOME", str(home))
    settings = load_settings(home)
    settings.ensure_dirs()
    view = deploy(settings, str(trained_model.artifact), name=NAME, capture_percent=100)
    assert view.url is not None
    yield settings, view.url
    delete(settings, NAME)
    mp.undo()


def runtime(url: str):
    return boto3.client(
        "sagemaker-runtime",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"max_attempts": 1}),
    )


def test_boto3_invoke_matches_the_classifier_on_prepared_test_images(
    live: tuple[Settings, str], trained_model: TrainedModel
) -> None:
    settings, url = live
    client = runtime(url)
    classifier = load_classifier(trained_model.artifact.read_bytes())
    pngs = [png for _, png in trained_model.test_pngs]
    expected = classifier.predict_images(pngs)
    for png, want in zip(pngs, expected, strict=True):
        response = client.invoke_endpoint(EndpointName=NAME, ContentType="image/png", Body=png)
        body = response["Body"].read().decode()
        probs = json.loads(body)
        assert body == json.dumps([float(p) for p in np.asarray(want, dtype=np.float32)])  # ", " separator
        assert np.argmax(probs) == np.argmax(want)
        assert response["ContentType"] == "application/json"
        assert response["InvokedProductionVariant"] == "AllTraffic"
        headers = response["ResponseMetadata"]["HTTPHeaders"]
        assert json.loads(headers["x-sconeflow-classes"]) == list(trained_model.classes)
        assert response["ResponseMetadata"]["RequestId"]
    assert resolve_endpoint_url(settings, NAME) == url


def test_endpoint_agrees_with_sconeflow_predict_and_needs_no_torch(
    live: tuple[Settings, str], trained_model: TrainedModel, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from sconeflow.cli import app

    settings, url = live
    files = []
    for key, png in trained_model.test_pngs[:6]:
        path = tmp_path / key.rsplit("/", 1)[-1]
        path.write_bytes(png)
        files.append(path)
    result = CliRunner().invoke(
        app,
        [
            "predict",
            "--json",
            "--model",
            str(trained_model.artifact),
            *map(str, files),
            "--home",
            str(settings.home),
        ],
    )
    assert result.exit_code == 0, result.output
    predicted = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert len(predicted) == len(files)
    client = runtime(url)
    for path, row in zip(files, predicted, strict=True):
        body = client.invoke_endpoint(EndpointName=NAME, ContentType="image/png", Body=path.read_bytes())[
            "Body"
        ]
        probs = json.loads(body.read())
        classes = list(row["probabilities"])
        assert classes[int(np.argmax(probs))] == row["class"]
        assert probs == pytest.approx(list(row["probabilities"].values()), abs=1e-6)
    with urllib.request.urlopen(f"{url}/-/info", timeout=5) as response:
        info = json.loads(response.read())
    assert info["TorchLoaded"] is False
    assert info["InferenceWorkers"] == ServingOptions().inference_workers >= 1
    assert info["EventLoop"].startswith("asyncio")  # not uvloop: it starved new connections under overload


def test_any_size_jpeg_and_x_image(live: tuple[Settings, str], trained_model: TrainedModel) -> None:
    _, url = live
    client = runtime(url)
    big = np.random.default_rng(1).integers(0, 256, (120, 90, 3), dtype=np.uint8)
    classifier = load_classifier(trained_model.artifact.read_bytes())
    for content_type, fmt in (("image/jpeg", "JPEG"), ("application/x-image", "PNG")):
        payload = encode(big, fmt)
        response = client.invoke_endpoint(EndpointName=NAME, ContentType=content_type, Body=payload)
        probs = json.loads(response["Body"].read())
        assert np.allclose(probs, classifier.predict_images([payload])[0], atol=1e-6)


def test_custom_attributes_pass_through(live: tuple[Settings, str], trained_model: TrainedModel) -> None:
    _, url = live
    png = trained_model.test_pngs[0][1]
    response = runtime(url).invoke_endpoint(
        EndpointName=NAME,
        ContentType="image/png",
        Body=png,
        CustomAttributes="trace=abc-123",
        InferenceId="inf-1",
    )
    assert response["CustomAttributes"] == "trace=abc-123"


@pytest.mark.parametrize(
    ("content_type", "body", "status", "match"),
    [
        ("text/csv", b"1,2,3", 415, "Unsupported content type 'text/csv'"),
        ("image/png", b"this is not a png", 400, "not a PNG or JPEG"),
        ("image/png", png_bomb(), 400, "decompression bomb"),
    ],
    ids=["content-type", "undecodable", "bomb"],
)
def test_what_the_container_refuses_is_a_model_error(
    live: tuple[Settings, str], content_type: str, body: bytes, status: int, match: str
) -> None:
    """SageMaker's runtime does not look inside the body: the container refuses it, the client gets a
    424 ModelError with the container's status (e.g. built-in algorithms' 415 for a content type)."""
    _, url = live
    client = runtime(url)
    with pytest.raises(client.exceptions.ModelError, match=match) as info:
        client.invoke_endpoint(EndpointName=NAME, ContentType=content_type, Body=body)
    error = info.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert error["OriginalStatusCode"] == status
    assert match in error["OriginalMessage"]
    message = error["Error"]["Message"]
    assert message.startswith(f"Received client error ({status}) from primary with message ")
    assert message.endswith(
        "group=/aws/sagemaker/Endpoints/scones-ep in account 123456789012 for more information."
    )


def test_a_body_over_6_mib_is_the_runtime_apis_validation_error(live: tuple[Settings, str]) -> None:
    _, url = live
    client = runtime(url)
    body = b"\x89PNG" + b"\x00" * (6 * 1024 * 1024 + 10)
    for content_type in ("image/png", "text/csv"):  # refused before any container sees its content type
        with pytest.raises(client.exceptions.ValidationError, match="exceeds the maximum") as info:
            client.invoke_endpoint(EndpointName=NAME, ContentType=content_type, Body=body)
        assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_empty_body_is_a_model_error(live: tuple[Settings, str]) -> None:
    _, url = live
    request = urllib.request.Request(
        f"{url}/endpoints/{NAME}/invocations", data=b"", headers={"Content-Type": "image/png"}, method="POST"
    )
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=10)
    assert info.value.code == 424
    assert info.value.headers["x-amzn-ErrorType"] == "ModelError"
    body = json.loads(info.value.read())
    assert body["ErrorCode"] == "CLIENT_ERROR_FROM_MODEL" and body["OriginalStatusCode"] == 400
    assert "empty" in body["OriginalMessage"]


def test_unknown_endpoint_name_and_model_error(
    live: tuple[Settings, str], trained_model: TrainedModel
) -> None:
    _, url = live
    client = runtime(url)
    png = trained_model.test_pngs[0][1]
    with pytest.raises(
        client.exceptions.ValidationError, match="Endpoint nope of account 123456789012 not found"
    ):
        client.invoke_endpoint(EndpointName="nope", ContentType="image/png", Body=png)
    with pytest.raises(client.exceptions.ModelError) as info:
        client.invoke_endpoint(EndpointName=NAME, ContentType="image/png", Body=png, Accept="text/csv")
    error = info.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert error["OriginalStatusCode"] == 406
    assert error["LogStreamArn"].endswith(f"/aws/sagemaker/Endpoints/{NAME}")


def test_ping_and_metrics(live: tuple[Settings, str]) -> None:
    _, url = live
    with urllib.request.urlopen(f"{url}/ping", timeout=5) as response:
        assert response.status == 200
    with urllib.request.urlopen(f"{url}/metrics", timeout=5) as response:
        text = response.read().decode()
    for name in (
        "Invocations{",
        "Invocation4XXErrors{",
        "Invocation5XXErrors{",
        "ModelLatency_bucket{",
        "OverheadLatency_bucket{",
        "sconeflow_queue_depth{",
        "sconeflow_batch_size_bucket{",
        "sconeflow_capture_records_written{",
        "sconeflow_capture_records_dropped{",
    ):
        assert name in text
    assert 'Invocation5XXErrors{EndpointName="scones-ep",VariantName="AllTraffic"} 0' in text


def test_n_requests_give_exactly_n_capture_records_after_stop(
    settings: Settings, trained_model: TrainedModel, shared_dir: Path
) -> None:
    view = deploy(settings, str(trained_model.artifact), name="capture-ep", capture_percent=100)
    client = runtime(view.url)
    pngs = [png for _, png in trained_model.test_pngs]
    n = 37
    sent = []
    for i in range(n):
        png = pngs[i % len(pngs)]
        kwargs = {"InferenceId": f"id-{i}"} if i % 2 else {}
        out = client.invoke_endpoint(EndpointName="capture-ep", ContentType="image/png", Body=png, **kwargs)
        sent.append((png, out["Body"].read().decode(), kwargs.get("InferenceId")))
    with pytest.raises(client.exceptions.ModelError):  # failed requests are not captured
        client.invoke_endpoint(EndpointName="capture-ep", ContentType="image/png", Body=b"junk")
    delete(settings, "capture-ep")  # graceful stop flushes the writer
    store = LocalStore(settings.buckets_dir)
    keys = [info.key for info in store.iter_objects(settings.bucket, "data_capture/capture-ep/AllTraffic/")]
    assert keys
    lines = [
        line for key in keys for line in store.get_object(settings.bucket, key).splitlines(keepends=True)
    ]
    assert len(lines) == n
    aws = next((shared_dir / "fixtures" / "sagemaker-data-capture").glob("idarapatrick*.jsonl")).read_bytes()
    reference = describe_record(aws.splitlines(keepends=True)[0])
    records = []
    for line in lines:
        assert describe_record(line) == reference
        records.append(json.loads(line))
    import base64

    got = sorted(
        (
            base64.b64decode(r["captureData"]["endpointInput"]["data"]),
            r["captureData"]["endpointOutput"]["data"],
            r["eventMetadata"].get("inferenceId"),
        )
        for r in records
    )
    assert got == sorted(sent)


def test_n_classes(settings: Settings, three_class_model: TrainedModel) -> None:
    """Three classes: three probabilities in class order, the names in the response header."""
    view = deploy(settings, str(three_class_model.artifact), name="three-ep", capture_percent=0)
    classifier = load_classifier(three_class_model.artifact.read_bytes())
    assert len(classifier.classes) == 3
    client = runtime(view.url)
    for _, png in three_class_model.test_pngs[:5]:
        response = client.invoke_endpoint(EndpointName="three-ep", ContentType="image/png", Body=png)
        probs = json.loads(response["Body"].read())
        assert len(probs) == 3 and abs(sum(probs) - 1) < 1e-4
        assert probs == pytest.approx(classifier.predict_images([png])[0].tolist(), abs=1e-6)
        header = response["ResponseMetadata"]["HTTPHeaders"]["x-sconeflow-classes"]
        assert json.loads(header) == classifier.classes
    delete(settings, "three-ep")


def test_raw_http_keep_alive_pipelined_and_chunked_invocations(
    live: tuple[Settings, str], trained_model: TrainedModel
) -> None:
    """Clients other than boto3: pipelined keep-alive requests and a chunked body get the same answer."""
    import socket

    from .test_httpserver import read_response

    _, url = live
    host, port = url.removeprefix("http://").split(":")
    png = trained_model.test_pngs[0][1]
    expected = runtime(url).invoke_endpoint(EndpointName=NAME, ContentType="image/png", Body=png)
    want = expected["Body"].read()
    plain = (
        "POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
        f"Content-Length: {len(png)}\r\n\r\n"
    ).encode() + png
    chunked = (
        b"POST /endpoints/" + NAME.encode() + b"/invocations HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: image/png\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"".join(
            f"{len(png[i : i + 100]):x}\r\n".encode() + png[i : i + 100] + b"\r\n"
            for i in range(0, len(png), 100)
        )
        + b"0\r\n\r\n"
    )
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        buffer = bytearray()
        sock.sendall(plain + chunked + plain)
        for _ in range(3):
            status, headers, body = read_response(sock, buffer)
            assert status == 200 and body == want
            assert headers["x-amzn-invoked-production-variant"] == "AllTraffic"


@pytest.mark.parametrize("header", ["ContentType", "Accept"])
def test_content_type_or_accept_over_1024_characters_is_a_validation_error(
    live: tuple[Settings, str], trained_model: TrainedModel, header: str
) -> None:
    """InvokeEndpoint models both headers with max 1024; the value would also land in the capture."""
    _, url = live
    client = runtime(url)
    png = trained_model.test_pngs[0][1]
    too_long = {"ContentType": "image/png;x=" + "a" * 1100, "Accept": "application/json, " + "a/b, " * 300}
    kwargs = {"ContentType": "image/png", header: too_long[header]}
    with pytest.raises(client.exceptions.ValidationError, match="less than or equal to 1024"):
        client.invoke_endpoint(EndpointName=NAME, Body=png, **kwargs)
    at_limit = {"ContentType": "image/png;x=" + "a" * (1024 - 12)}
    assert (
        client.invoke_endpoint(EndpointName=NAME, Body=png, **at_limit)["ContentType"] == "application/json"
    )


@pytest.mark.parametrize(
    ("accept", "served"),
    [
        ("application/json;q=0", False),  # RFC 9110: q=0 is "not acceptable"
        ("application/json;q=0, */*", False),  # the most specific range decides
        ("text/csv,", False),  # an empty list element admits nothing
        ("text/csv;q=1, application/json;q=0.5", True),
        ("*/*;q=0, application/json", True),
        ("Application/JSON; charset=utf-8", True),
    ],
)
def test_accept_q_values_decide_whether_json_is_acceptable(
    live: tuple[Settings, str], trained_model: TrainedModel, accept: str, served: bool
) -> None:
    _, url = live
    client = runtime(url)
    png = trained_model.test_pngs[0][1]
    if served:
        response = client.invoke_endpoint(EndpointName=NAME, ContentType="image/png", Body=png, Accept=accept)
        assert response["ContentType"] == "application/json"
        return
    with pytest.raises(client.exceptions.ModelError) as info:
        client.invoke_endpoint(EndpointName=NAME, ContentType="image/png", Body=png, Accept=accept)
    assert info.value.response["OriginalStatusCode"] == 406


def test_target_variant_must_name_the_endpoints_variant(
    live: tuple[Settings, str], trained_model: TrainedModel
) -> None:
    """A TargetVariant the endpoint does not have is refused (before: ignored, the request served anyway)."""
    _, url = live
    client = runtime(url)
    png = trained_model.test_pngs[0][1]
    served = client.invoke_endpoint(
        EndpointName=NAME, ContentType="image/png", Body=png, TargetVariant="AllTraffic"
    )
    assert served["InvokedProductionVariant"] == "AllTraffic"
    with pytest.raises(
        client.exceptions.ValidationError, match="Variant blue is not a production variant"
    ) as info:
        client.invoke_endpoint(EndpointName=NAME, ContentType="image/png", Body=png, TargetVariant="blue")
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


@pytest.mark.parametrize(
    ("content_type", "body", "accept", "status"),
    [
        ("text/csv", b"1,2,3", None, 415),
        ("image/png", b"not an image", None, 400),
        ("image/png", b"", None, 400),
        ("image/png", None, "text/csv", 406),
    ],
    ids=["content-type", "undecodable", "empty", "accept"],
)
def test_the_container_contract_answers_its_own_status(
    live: tuple[Settings, str],
    trained_model: TrainedModel,
    content_type: str,
    body: bytes | None,
    accept: str | None,
    status: int,
) -> None:
    """POST /invocations is the container, not the runtime API: no 424 wrapping, no x-amzn-ErrorType."""
    _, url = live
    headers = {"Content-Type": content_type, **({"Accept": accept} if accept else {})}
    data = trained_model.test_pngs[0][1] if body is None else body
    request = urllib.request.Request(f"{url}/invocations", data=data, headers=headers, method="POST")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=10)
    assert info.value.code == status
    assert "x-amzn-ErrorType" not in info.value.headers
    assert json.loads(info.value.read())["message"]
