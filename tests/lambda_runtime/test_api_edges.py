"""Lambda API edges (a real boto3 client against the in-process gateway): operations the local service
does not implement, function ARNs of another region or account, a whitespace-only payload, and the
`sconeflow lambda delete/package/update` commands given an ARN or ``name:qualifier``."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from typer.testing import CliRunner

from sconeflow.cli import app
from sconeflow.config import Settings, load_settings
from sconeflow.gateway.client import boto3_client
from sconeflow.gateway.server import InProcessGateway, start_in_process
from sconeflow.lambda_runtime.registry import FunctionRegistry
from tests.gateway.support import register_code

ARN = "arn:aws:lambda:us-east-1:123456789012:function"
ECHO = "def handler(event, context):\n    return {'event': event, 'code': 'CODE'}\n"
runner = CliRunner()


def _code(exc: pytest.ExceptionInfo) -> tuple[str, int]:
    response = exc.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


@pytest.mark.parametrize(
    ("operation", "call"),
    [
        (
            "AddPermission",
            lambda lam: lam.add_permission(
                FunctionName="filter_inference",
                StatementId="s3",
                Action="lambda:InvokeFunction",
                Principal="s3.amazonaws.com",
            ),
        ),
        ("GetPolicy", lambda lam: lam.get_policy(FunctionName="filter_inference")),
        ("ListTags", lambda lam: lam.list_tags(Resource=f"{ARN}:filter_inference")),
        (
            "PutFunctionConcurrency",
            lambda lam: lam.put_function_concurrency(
                FunctionName="filter_inference", ReservedConcurrentExecutions=1
            ),
        ),
        ("GetAccountSettings", lambda lam: lam.get_account_settings()),
        ("ListEventSourceMappings", lambda lam: lam.list_event_source_mappings()),
    ],
)
def test_an_unimplemented_operation_is_501_not_a_validation_error(lam: Any, operation: str, call) -> None:
    """It was InvalidParameterValueException, which a client cannot tell from a real validation error."""
    before = lam.get_function_configuration(FunctionName="filter_inference")
    with pytest.raises(ClientError) as exc:
        call(lam)
    assert _code(exc) == ("NotImplemented", 501), operation
    message = exc.value.response["Error"]["Message"]
    assert "not implemented" in message
    assert "Implemented: Invoke, " in message
    after = lam.get_function_configuration(FunctionName="filter_inference")
    assert after["RevisionId"] == before["RevisionId"]


def test_an_arn_of_another_region_or_account_is_not_this_function(lam: Any) -> None:
    other_region = "arn:aws:lambda:us-west-2:123456789012:function:filter_inference"
    other_account = "arn:aws:lambda:us-east-1:999999999999:function:filter_inference"
    for call in (
        lambda name: lam.invoke(FunctionName=name, Payload=b'{"inferences": [0.99, 0.01]}'),
        lambda name: lam.get_function(FunctionName=name),
        lambda name: lam.get_function_configuration(FunctionName=name),
        lambda name: lam.update_function_configuration(FunctionName=name, Timeout=9),
        lambda name: lam.delete_function(FunctionName=name),
    ):
        with pytest.raises(lam.exceptions.ResourceNotFoundException) as exc:
            call(other_region)
        assert exc.value.response["Error"]["Message"] == (
            "Functions from 'us-west-2' are not reachable in this region ('us-east-1')"
        )
        with pytest.raises(lam.exceptions.ResourceNotFoundException) as exc:
            call(other_account)
        assert exc.value.response["Error"]["Message"] == (
            "Function not found: arn:aws:lambda:us-east-1:999999999999:function:filter_inference:$LATEST"
        )
        with pytest.raises(lam.exceptions.ResourceNotFoundException):
            call("999999999999:function:filter_inference")  # a partial ARN names an account too
    config = lam.get_function_configuration(FunctionName=f"{ARN}:filter_inference")  # the local ARN
    assert config["Timeout"] == 3  # nothing was updated or deleted through the foreign ARNs
    assert lam.invoke(FunctionName="123456789012:function:filter_inference:$LATEST", Payload=b"{}")


@pytest.fixture
def eu_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, settings: Settings) -> Settings:
    monkeypatch.setenv("SCONEFLOW_REGION", "eu-west-1")
    monkeypatch.setenv("SCONEFLOW_ACCOUNT", "210987654321")
    return load_settings(settings.home)


@pytest.fixture
def eu_gateway(eu_settings: Settings) -> Iterator[InProcessGateway]:
    gw = start_in_process(eu_settings)
    try:
        yield gw
    finally:
        gw.close()


def test_the_configured_region_and_account_are_the_local_ones(
    eu_settings: Settings, eu_gateway: InProcessGateway
) -> None:
    lam = boto3_client(eu_settings, "lambda", url=eu_gateway.url)
    local = "arn:aws:lambda:eu-west-1:210987654321:function:filter_inference"
    assert lam.get_function(FunctionName=local)["Configuration"]["FunctionArn"] == local
    assert lam.invoke(FunctionName=f"{local}:$LATEST", Payload=b"{}")["StatusCode"] == 200
    with pytest.raises(lam.exceptions.ResourceNotFoundException) as exc:
        lam.get_function(FunctionName=f"{ARN}:filter_inference")
    assert "('eu-west-1')" in exc.value.response["Error"]["Message"]


def test_a_whitespace_only_payload_is_an_empty_event(lam: Any, settings: Settings, tmp_path: Path) -> None:
    """It passed the gateway's JSON check, then the worker failed it as Runtime.UnmarshalError."""
    register_code(settings, tmp_path, "echo", ECHO)
    for payload in (b"", b"  ", b" \n\t\r\n"):
        response = lam.invoke(FunctionName="echo", Payload=payload)
        assert "FunctionError" not in response, payload
        assert json.loads(response["Payload"].read())["event"] == {}
    response = lam.invoke(FunctionName="echo", Payload=b"  ", InvocationType="Event")
    assert response["StatusCode"] == 202
    with pytest.raises(lam.exceptions.InvalidRequestContentException):
        lam.invoke(FunctionName="echo", Payload=b"  {")


# -- the CLI --------------------------------------------------------------------------------------------
def _publish_two_versions(settings: Settings, tmp_path: Path) -> FunctionRegistry:
    register_code(settings, tmp_path, "hello", ECHO.replace("CODE", "one"))
    registry = FunctionRegistry(settings)
    registry.publish_version("hello")
    (tmp_path / "code-hello" / "hello_fn.py").write_text(ECHO.replace("CODE", "two"))
    registry.update("hello", description="two")
    registry.publish_version("hello")
    return registry


def test_cli_delete_takes_an_arn_and_a_version(settings: Settings, tmp_path: Path) -> None:
    registry = _publish_two_versions(settings, tmp_path)
    result = runner.invoke(app, ["lambda", "delete", f"{ARN}:hello:1"])
    assert result.exit_code == 0, result.output
    assert "deleted version 1 of hello" in result.stdout
    assert [c.version for c in registry.list_versions("hello")] == ["$LATEST", "2"]

    latest = runner.invoke(app, ["lambda", "delete", "hello:$LATEST"])
    assert type(latest.exception).__name__ == "PayloadError"
    assert "$LATEST version cannot be deleted" in str(latest.exception)
    registry.create_alias("hello", "prod", "2")
    alias = runner.invoke(app, ["lambda", "delete", "hello:prod"])
    assert type(alias.exception).__name__ == "PayloadError"
    assert "alias" in str(alias.exception)
    foreign = runner.invoke(app, ["lambda", "delete", "arn:aws:lambda:us-west-2:123456789012:function:hello"])
    assert type(foreign.exception).__name__ == "FunctionNotFound"
    assert registry.exists("hello")

    result = runner.invoke(app, ["lambda", "delete", f"{ARN}:hello"])
    assert result.exit_code == 0, result.output
    assert "deleted hello" in result.stdout
    assert not registry.exists("hello")


def test_cli_package_takes_an_arn_and_a_version(settings: Settings, tmp_path: Path) -> None:
    _publish_two_versions(settings, tmp_path)
    for name, code in ((f"{ARN}:hello", "two"), ("hello:1", "one"), (f"{ARN}:hello:2", "two")):
        output = tmp_path / "hello.zip"
        result = runner.invoke(app, ["lambda", "package", name, "-o", str(output)])
        assert result.exit_code == 0, result.output
        with zipfile.ZipFile(output) as archive:
            assert f"'code': '{code}'" in archive.read("hello_fn.py").decode(), name
    missing = runner.invoke(app, ["lambda", "package", "hello:7", "-o", str(tmp_path / "x.zip")])
    assert type(missing.exception).__name__ == "FunctionNotFound"


def test_cli_update_takes_an_arn_but_refuses_a_version(settings: Settings, tmp_path: Path) -> None:
    registry = _publish_two_versions(settings, tmp_path)
    result = runner.invoke(app, ["lambda", "update", f"{ARN}:hello", "--timeout", "9"])
    assert result.exit_code == 0, result.output
    assert registry.get("hello").timeout == 9
    refused = runner.invoke(app, ["lambda", "update", "hello:1", "--timeout", "5"])
    assert type(refused.exception).__name__ == "PayloadError"
    assert registry.get("hello", "1").timeout == 3
