"""Deploying functions through the Lambda API (CreateFunction with a `sconeflow lambda package` zip)."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest

from sconeflow.config import Settings
from sconeflow.lambda_runtime.packaging import build_package
from sconeflow.lambda_runtime.registry import FunctionRegistry
from sconeflow.store import LocalStore


def _zip(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


def _invoke(lam: Any, name: str, event: dict) -> tuple[str | None, Any]:
    response = lam.invoke(FunctionName=name, Payload=json.dumps(event).encode())
    return response.get("FunctionError"), json.loads(response["Payload"].read())


def test_create_update_delete_a_packaged_function(lam: Any, settings: Settings, tmp_path: Path) -> None:
    package = tmp_path / "filter.zip"
    build_package(FunctionRegistry(settings).get("filter_inference"), package)
    created = lam.create_function(
        FunctionName="my-filter",
        Runtime="python3.11",
        Role="arn:aws:iam::123456789012:role/lambda",
        Handler="filter_inference.lambda_handler",
        Code={"ZipFile": package.read_bytes()},
        Environment={"Variables": {"THRESHOLD": "0.5"}},
        Timeout=5,
    )
    assert created["FunctionArn"] == "arn:aws:lambda:us-east-1:123456789012:function:my-filter"
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert _invoke(lam, "my-filter", {"inferences": [0.6, 0.4]})[0] is None

    lam.update_function_configuration(
        FunctionName="my-filter", Environment={"Variables": {"THRESHOLD": "0.7"}}
    )
    error, payload = _invoke(lam, "my-filter", {"inferences": [0.6, 0.4]})
    assert (error, payload["errorType"]) == ("Unhandled", "ThresholdConfidenceNotMet")

    lam.update_function_code(
        FunctionName="my-filter",
        ZipFile=_zip({"filter_inference.py": "def lambda_handler(e, c):\n    return 'v2'\n"}),
    )
    assert _invoke(lam, "my-filter", {}) == (None, "v2")

    with pytest.raises(lam.exceptions.ResourceConflictException):
        lam.create_function(
            FunctionName="my-filter",
            Runtime="python3.11",
            Role="r",
            Handler="a.b",
            Code={"ZipFile": package.read_bytes()},
        )
    lam.delete_function(FunctionName="my-filter")
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.invoke(FunctionName="my-filter", Payload=b"{}")


def test_create_from_s3(lam: Any, settings: Settings, store: LocalStore) -> None:
    store.create_bucket("code-bucket")
    store.put_object("code-bucket", "fn.zip", _zip({"app.py": "def handler(e, c):\n    return {'hi': e}\n"}))
    lam.create_function(
        FunctionName="from-s3",
        Runtime="python3.11",
        Role="r",
        Handler="app.handler",
        Code={"S3Bucket": "code-bucket", "S3Key": "fn.zip"},
    )
    assert _invoke(lam, "from-s3", {"x": 1}) == (None, {"hi": {"x": 1}})


@pytest.mark.parametrize(
    ("zip_bytes", "fragment"),
    [
        (b"this is not a zip", "Could not unzip uploaded file"),
        (_zip({"../escape.py": "x = 1\n"}), "unsafe path"),
        (_zip({"/abs.py": "x = 1\n"}), "unsafe path"),
    ],
)
def test_bad_packages_are_refused(lam: Any, settings: Settings, zip_bytes: bytes, fragment: str) -> None:
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as exc:
        lam.create_function(
            FunctionName="bad", Runtime="python3.11", Role="r", Handler="a.b", Code={"ZipFile": zip_bytes}
        )
    assert fragment in exc.value.response["Error"]["Message"]
    assert not FunctionRegistry(settings).exists("bad")
    assert not (settings.home / "escape.py").exists()


def test_delete_with_a_qualifier_never_deletes_the_function(lam: Any) -> None:
    code = {"ZipFile": _zip({"app.py": "def handler(e, c):\n    return 1\n"})}
    lam.create_function(FunctionName="keep", Runtime="python3.11", Role="r", Handler="app.handler", Code=code)
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as latest:
        lam.delete_function(FunctionName="keep", Qualifier="$LATEST")
    assert "$LATEST version cannot be deleted without deleting the function." in str(latest.value)
    for qualified in ({"FunctionName": "keep", "Qualifier": "7"}, {"FunctionName": "keep:prod"}):
        with pytest.raises(lam.exceptions.ResourceNotFoundException):
            lam.delete_function(**qualified)
    assert lam.get_function(FunctionName="keep")["Configuration"]["FunctionName"] == "keep"
    lam.delete_function(FunctionName="keep")  # no qualifier: the function goes
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_function(FunctionName="keep")


def test_reserved_environment_variables_are_refused_as_on_aws(lam: Any) -> None:
    code = {"ZipFile": _zip({"app.py": "def handler(e, c):\n    return 1\n"})}
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as exc:
        lam.create_function(
            FunctionName="env",
            Runtime="python3.11",
            Role="r",
            Handler="app.handler",
            Code=code,
            Environment={"Variables": {"AWS_REGION": "mars-1", "OK": "1", "TZ": "Asia/Tokyo"}},
        )
    assert "Reserved keys used in this request: AWS_REGION,TZ" in str(exc.value)
    lam.create_function(FunctionName="env", Runtime="python3.11", Role="r", Handler="app.handler", Code=code)
    with pytest.raises(lam.exceptions.InvalidParameterValueException):
        lam.update_function_configuration(
            FunctionName="env", Environment={"Variables": {"AWS_SECRET_ACCESS_KEY": "x"}}
        )


def test_runtime_role_and_code_hash_are_the_ones_deployed(lam: Any) -> None:
    import base64
    import hashlib

    package = _zip({"app.py": "import os\ndef handler(e, c):\n    return os.environ['AWS_EXECUTION_ENV']\n"})
    role = "arn:aws:iam::123456789012:role/scones-lambda"
    created = lam.create_function(
        FunctionName="facts",
        Runtime="python3.12",
        Role=role,
        Handler="app.handler",
        Code={"ZipFile": package},
    )
    assert (created["Runtime"], created["Role"]) == ("python3.12", role)
    assert created["CodeSha256"] == base64.b64encode(hashlib.sha256(package).digest()).decode()
    assert created["CodeSize"] == len(package)
    assert _invoke(lam, "facts", {}) == (None, "AWS_Lambda_python3.12")
    updated = lam.update_function_configuration(FunctionName="facts", Runtime="python3.13", Role="arn:r2")
    assert (updated["Runtime"], updated["Role"], updated["CodeSha256"]) == (
        "python3.13",
        "arn:r2",
        created["CodeSha256"],
    )
    assert _invoke(lam, "facts", {}) == (None, "AWS_Lambda_python3.13")
    v2 = _zip({"app.py": "def handler(e, c):\n    return 2\n"})
    code = lam.update_function_code(FunctionName="facts", ZipFile=v2)
    assert (code["CodeSha256"], code["CodeSize"]) == (
        base64.b64encode(hashlib.sha256(v2).digest()).decode(),
        len(v2),
    )
    for runtime in ("nodejs20.x", "python2.0"):  # the local runtime runs Python handlers only
        with pytest.raises(lam.exceptions.InvalidParameterValueException, match="Python"):
            lam.create_function(
                FunctionName="other",
                Runtime=runtime,
                Role=role,
                Handler="app.handler",
                Code={"ZipFile": package},
            )
