"""Weighted aliases (RoutingConfig.AdditionalVersionWeights) through a real boto3 Lambda client against
the in-process gateway, and `sconeflow lambda alias create|update --route` through the CLI."""

from __future__ import annotations

import io
import json
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from typer.testing import CliRunner

from sconeflow.cli import app
from sconeflow.config import Settings

ROLE = "arn:aws:iam::123456789012:role/lambda"
ARN = "arn:aws:lambda:us-east-1:123456789012:function"
SOURCE = "def handler(event, context):\n    return {{'code': '{tag}', 'version': context.function_version}}\n"


def _zip(tag: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(zipfile.ZipInfo("app.py", (2026, 1, 1, 0, 0, 0)), SOURCE.format(tag=tag))
    return buffer.getvalue()


def _three_versions(lam: Any) -> None:
    """Function ``fn`` with versions 1, 2, 3 (code v1, v2, v3)."""
    lam.create_function(
        FunctionName="fn", Runtime="python3.11", Role=ROLE, Handler="app.handler",
        Code={"ZipFile": _zip("v1")}, Publish=True,
    )  # fmt: skip
    lam.update_function_code(FunctionName="fn", ZipFile=_zip("v2"), Publish=True)
    lam.update_function_code(FunctionName="fn", ZipFile=_zip("v3"), Publish=True)


def _error(exc: pytest.ExceptionInfo) -> tuple[str, int, str]:
    response = exc.value.response
    return (
        response["Error"]["Code"],
        response["ResponseMetadata"]["HTTPStatusCode"],
        response["Error"]["Message"],
    )


def test_weighted_alias_routes_by_weight_and_names_the_version_run(lam: Any) -> None:
    _three_versions(lam)
    created = lam.create_alias(
        FunctionName="fn",
        Name="live",
        FunctionVersion="1",
        RoutingConfig={"AdditionalVersionWeights": {"2": 0.3}},
    )
    assert created["RoutingConfig"] == {"AdditionalVersionWeights": {"2": 0.3}}
    assert lam.get_alias(FunctionName="fn", Name="live")["RoutingConfig"] == {
        "AdditionalVersionWeights": {"2": 0.3}
    }
    listed = lam.list_aliases(FunctionName="fn")["Aliases"]
    assert [(a["Name"], a["RoutingConfig"]) for a in listed] == [
        ("live", {"AdditionalVersionWeights": {"2": 0.3}})
    ]
    # both versions count as invoked by the alias
    assert [a["Name"] for a in lam.list_aliases(FunctionName="fn", FunctionVersion="2")["Aliases"]] == [
        "live"
    ]

    ran: Counter[str] = Counter()
    for _ in range(200):
        response = lam.invoke(FunctionName="fn:live", Payload=b"{}")
        body = json.loads(response["Payload"].read())
        version = response["ResponseMetadata"]["HTTPHeaders"]["x-amz-executed-version"]
        assert body == {"code": f"v{version}", "version": version}  # the header names the version run
        ran[version] += 1
    assert set(ran) == {"1", "2"}
    assert 30 <= ran["2"] <= 95, ran  # 30% of 200 = 60 expected; a generous band

    # weight 0 keeps the routing but sends nothing to version 2; {} removes the routing
    lam.update_alias(FunctionName="fn", Name="live", RoutingConfig={"AdditionalVersionWeights": {"2": 0.0}})
    for _ in range(20):
        response = lam.invoke(FunctionName="fn", Qualifier="live", Payload=b"{}")
        assert response["ExecutedVersion"] == "1"
    updated = lam.update_alias(FunctionName="fn", Name="live", FunctionVersion="3")  # routing is kept
    assert (updated["FunctionVersion"], updated["RoutingConfig"]) == (
        "3",
        {"AdditionalVersionWeights": {"2": 0.0}},
    )
    cleared = lam.update_alias(FunctionName="fn", Name="live", RoutingConfig={"AdditionalVersionWeights": {}})
    assert "RoutingConfig" not in cleared
    assert lam.invoke(FunctionName="fn:live", Payload=b"{}")["ExecutedVersion"] == "3"


def test_routing_config_is_validated_as_aws_does(lam: Any) -> None:
    _three_versions(lam)

    def create(version: str, weights: dict) -> pytest.ExceptionInfo:
        with pytest.raises(ClientError) as exc:
            lam.create_alias(
                FunctionName="fn", Name="bad", FunctionVersion=version,
                RoutingConfig={"AdditionalVersionWeights": weights},
            )  # fmt: skip
        return exc

    code, status, message = _error(create("1", {"2": 0.1, "3": 0.1}))
    assert (code, status) == ("InvalidParameterValueException", 400) and "cannot be greater than 1" in message
    code, status, message = _error(create("1", {"1": 0.1}))
    assert (code, status) == ("InvalidParameterValueException", 400)
    assert (
        message
        == "Invalid function version 1. Function version 1 is already included in routing configuration."
    )
    code, status, message = _error(create("$LATEST", {"2": 0.1}))
    assert (code, status, message) == (
        "InvalidParameterValueException",
        400,
        "$LATEST is not supported for an alias pointing to more than 1 version",
    )
    code, status, message = _error(create("1", {"9": 0.1}))  # both versions must be published
    assert (code, status, message) == ("ResourceNotFoundException", 404, f"Function not found: {ARN}:fn:9")
    code, status, message = _error(create("1", {"2": 1.5}))
    assert (code, status) == ("ValidationException", 400) and "less than or equal to 1.0" in message
    code, status, _ = _error(create("1", {"2": 1.0}))  # the primary version must keep a share
    assert (code, status) == ("InvalidParameterValueException", 400)
    code, status, message = _error(create("1", {"live": 0.1}))
    assert (code, status) == ("ValidationException", 400) and "[0-9]+" in message
    assert lam.list_aliases(FunctionName="fn")["Aliases"] == []  # nothing was created

    lam.create_alias(FunctionName="fn", Name="live", FunctionVersion="1")
    with pytest.raises(ClientError) as exc:  # UpdateAlias validates the same way
        lam.update_alias(
            FunctionName="fn", Name="live", RoutingConfig={"AdditionalVersionWeights": {"1": 0.5}}
        )
    assert _error(exc)[0] == "InvalidParameterValueException"
    lam.update_alias(FunctionName="fn", Name="live", RoutingConfig={"AdditionalVersionWeights": {"2": 0.5}})
    with pytest.raises(ClientError) as exc:  # pointing the alias at its additional version
        lam.update_alias(FunctionName="fn", Name="live", FunctionVersion="2")
    assert _error(exc)[0] == "InvalidParameterValueException"
    with pytest.raises(ClientError) as exc:  # the additional version is in use: it cannot be deleted
        lam.delete_function(FunctionName="fn", Qualifier="2")
    assert _error(exc)[:2] == ("ResourceConflictException", 409)


runner = CliRunner()


def _cli(*args: str) -> Any:
    result = runner.invoke(app, ["lambda", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def test_cli_alias_route_option(settings: Settings, tmp_path: Path) -> None:
    code = tmp_path / "hello"
    code.mkdir()
    for value in (1, 2):
        (code / "app.py").write_text(f"def handler(event, context):\n    return {{'v': {value}}}\n")
        if value == 1:
            _cli("register", "hello", "--handler", "app.handler", "--code", str(code))
        _cli("publish", "hello")
    shape = json.loads(
        _cli("alias", "create", "hello", "live", "--version", "2", "--route", "1=0.25", "--json").stdout
    )
    assert shape["RoutingConfig"] == {"AdditionalVersionWeights": {"1": 0.25}}
    shown = _cli("alias", "get", "hello:live").output
    assert "2 (75%), 1 (25%)" in shown
    updated = _cli("alias", "update", "hello:live", "--route", "1=10%")
    assert "-> version 2 (90%), 1 (10%)" in updated.output
    cleared = json.loads(_cli("alias", "update", "hello", "live", "--route", "none", "--json").stdout)
    assert "RoutingConfig" not in cleared and cleared["FunctionVersion"] == "2"
    bad = runner.invoke(app, ["lambda", "alias", "update", "hello:live", "--route", "1=1.5"])
    assert bad.exit_code != 0 and "VERSION=WEIGHT" in str(bad.exception)
