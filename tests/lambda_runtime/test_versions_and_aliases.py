"""Function versions and aliases through the Lambda API (a real boto3 client against the in-process gateway):
Publish on CreateFunction/UpdateFunctionCode, PublishVersion, ListVersionsByFunction, qualified Invoke /
GetFunction / DeleteFunction, and the alias operations."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest

from sconeflow.config import Settings
from tests.gateway.support import register_code

ROLE = "arn:aws:iam::123456789012:role/lambda"
ARN = "arn:aws:lambda:us-east-1:123456789012:function"

# The handler reports which code ran, the variable GREETING and what the context says about the version.
SOURCE = """import os
def handler(event, context):
    return {{"code": "{tag}", "greeting": os.environ.get("GREETING"), "version": context.function_version,
            "arn": context.invoked_function_arn, "event": event}}
"""


def _zip(tag: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(zipfile.ZipInfo("app.py", (2026, 1, 1, 0, 0, 0)), SOURCE.format(tag=tag))
    return buffer.getvalue()


def _sha(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def _create(lam: Any, name: str = "fn", tag: str = "v1", **kwargs: Any) -> dict:
    return lam.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": _zip(tag)},
        Environment={"Variables": {"GREETING": "hello"}},
        **kwargs,
    )


def _call(lam: Any, name: str, **kwargs: Any) -> tuple[dict, dict]:
    response = lam.invoke(FunctionName=name, Payload=b"{}", **kwargs)
    assert "FunctionError" not in response, response["Payload"].read()
    return response, json.loads(response["Payload"].read())


def _code(exc: pytest.ExceptionInfo) -> tuple[str, int]:
    response = exc.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def test_publish_on_create_and_update_code_makes_immutable_numbered_versions(lam: Any) -> None:
    created = _create(lam, Publish=True)
    assert (created["Version"], created["FunctionArn"]) == ("1", f"{ARN}:fn:1")
    assert created["CodeSha256"] == _sha(_zip("v1"))
    updated = lam.update_function_code(FunctionName="fn", ZipFile=_zip("v2"), Publish=True)
    assert (updated["Version"], updated["FunctionArn"]) == ("2", f"{ARN}:fn:2")
    assert updated["CodeSha256"] == _sha(_zip("v2"))
    latest = lam.update_function_code(FunctionName="fn", ZipFile=_zip("v3"))  # no Publish: $LATEST only
    assert (latest["Version"], latest["FunctionArn"]) == ("$LATEST", f"{ARN}:fn")
    lam.update_function_configuration(FunctionName="fn", Environment={"Variables": {"GREETING": "bye"}})

    for qualifier, code, greeting in (("1", "v1", "hello"), ("2", "v2", "hello"), ("$LATEST", "v3", "bye")):
        response, result = _call(lam, "fn", Qualifier=qualifier)
        assert response["ExecutedVersion"] == qualifier
        assert response["ResponseMetadata"]["HTTPHeaders"]["x-amz-executed-version"] == qualifier
        assert (result["code"], result["greeting"], result["version"]) == (code, greeting, qualifier)
        assert result["arn"] == f"{ARN}:fn:{qualifier}"
    response, result = _call(lam, f"{ARN}:fn:1")  # the qualifier in the ARN
    assert (response["ExecutedVersion"], result["code"]) == ("1", "v1")
    response, result = _call(lam, "fn")
    assert (response["ExecutedVersion"], result["code"]) == ("$LATEST", "v3")

    v1 = lam.get_function_configuration(FunctionName="fn", Qualifier="1")
    assert (v1["Version"], v1["FunctionArn"], v1["Environment"]) == (
        "1",
        f"{ARN}:fn:1",
        {"Variables": {"GREETING": "hello"}},
    )
    assert v1["CodeSha256"] == _sha(_zip("v1"))
    assert lam.get_function(FunctionName="fn:2")["Configuration"]["CodeSha256"] == _sha(_zip("v2"))
    assert lam.get_function(FunctionName="fn")["Configuration"]["Version"] == "$LATEST"
    with pytest.raises(lam.exceptions.ResourceNotFoundException) as exc:
        lam.invoke(FunctionName="fn", Qualifier="3", Payload=b"{}")
    assert exc.value.response["Error"]["Message"] == f"Function not found: {ARN}:fn:3"


def test_publish_version_checks_and_deduplicates(lam: Any) -> None:
    _create(lam)
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as exc:
        lam.publish_version(FunctionName="fn", CodeSha256="AAAA")
    assert exc.value.response["Error"]["Message"].startswith(
        "CodeSHA256 (AAAA) is different from current CodeSHA256 in $LATEST"
    )
    with pytest.raises(lam.exceptions.PreconditionFailedException) as exc:
        lam.publish_version(FunctionName="fn", RevisionId="00000000-0000-0000-0000-000000000000")
    assert _code(exc) == ("PreconditionFailedException", 412)
    assert lam.list_versions_by_function(FunctionName="fn")["Versions"][-1]["Version"] == "$LATEST"

    revision = lam.get_function(FunctionName="fn")["Configuration"]["RevisionId"]
    first = lam.publish_version(
        FunctionName="fn", CodeSha256=_sha(_zip("v1")), RevisionId=revision, Description="first"
    )
    assert first["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert (first["Version"], first["Description"]) == ("1", "first")
    # nothing changed since version 1: publishing again returns it instead of a copy
    assert lam.publish_version(FunctionName="fn")["Version"] == "1"
    lam.update_function_configuration(FunctionName="fn", Timeout=7)
    assert lam.publish_version(FunctionName="fn")["Version"] == "2"
    lam.delete_function(FunctionName="fn", Qualifier="2")
    lam.update_function_code(FunctionName="fn", ZipFile=_zip("v9"))
    assert lam.publish_version(FunctionName="fn")["Version"] == "3"  # a deleted number is not reused


def test_list_versions_by_function_latest_first_with_paging(lam: Any) -> None:
    _create(lam, Publish=True)
    for tag in ("v2", "v3", "v4"):
        lam.update_function_code(FunctionName="fn", ZipFile=_zip(tag), Publish=True)
    first = lam.list_versions_by_function(FunctionName="fn", MaxItems=2)
    assert [v["Version"] for v in first["Versions"]] == ["$LATEST", "1"]
    assert first["Versions"][0]["FunctionArn"] == f"{ARN}:fn:$LATEST"
    assert first["Versions"][1]["FunctionArn"] == f"{ARN}:fn:1"
    rest = lam.list_versions_by_function(FunctionName="fn", Marker=first["NextMarker"])
    assert [v["Version"] for v in rest["Versions"]] == ["2", "3", "4"]
    assert "NextMarker" not in rest
    pages = lam.get_paginator("list_versions_by_function").paginate(
        FunctionName="fn", PaginationConfig={"PageSize": 1}
    )
    assert [v["Version"] for page in pages for v in page["Versions"]] == ["$LATEST", "1", "2", "3", "4"]
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.list_versions_by_function(FunctionName="nope")


def test_delete_function_with_a_version_deletes_that_version_only(lam: Any) -> None:
    _create(lam, Publish=True)
    lam.update_function_code(FunctionName="fn", ZipFile=_zip("v2"), Publish=True)
    lam.delete_function(FunctionName="fn", Qualifier="1")
    assert [v["Version"] for v in lam.list_versions_by_function(FunctionName="fn")["Versions"]] == [
        "$LATEST",
        "2",
    ]
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.delete_function(FunctionName="fn", Qualifier="1")
    assert _call(lam, "fn:2")[1]["code"] == "v2"
    lam.delete_function(FunctionName="fn")  # unqualified: the function and every version
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_function(FunctionName="fn", Qualifier="2")


def test_a_version_of_folder_code_keeps_its_code_when_the_folder_changes(
    lam: Any, settings: Settings, tmp_path: Path
) -> None:
    register_code(settings, tmp_path, "folder", SOURCE.format(tag="old"))
    assert lam.publish_version(FunctionName="folder")["Version"] == "1"
    (tmp_path / "code-folder" / "folder_fn.py").write_text(SOURCE.format(tag="new"))
    lam.update_function_configuration(FunctionName="folder", Description="new code")  # fresh workers
    assert _call(lam, "folder")[1]["code"] == "new"
    assert _call(lam, "folder:1")[1]["code"] == "old"
    assert lam.publish_version(FunctionName="folder")["Version"] == "2"  # the code changed
    assert _call(lam, "folder:2")[1]["code"] == "new"


def test_aliases(lam: Any) -> None:
    _create(lam, Publish=True)
    lam.update_function_code(FunctionName="fn", ZipFile=_zip("v2"), Publish=True)
    alias = lam.create_alias(FunctionName="fn", Name="prod", FunctionVersion="1", Description="live")
    assert alias["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert (alias["AliasArn"], alias["Name"], alias["FunctionVersion"], alias["Description"]) == (
        f"{ARN}:fn:prod",
        "prod",
        "1",
        "live",
    )
    response, result = _call(lam, "fn:prod")
    assert (response["ExecutedVersion"], result["code"], result["arn"]) == ("1", "v1", f"{ARN}:fn:prod")
    assert _call(lam, "fn", Qualifier="prod")[1]["code"] == "v1"
    assert lam.get_function_configuration(FunctionName="fn", Qualifier="prod")["Version"] == "1"

    with pytest.raises(lam.exceptions.ResourceConflictException) as exc:
        lam.create_alias(FunctionName="fn", Name="prod", FunctionVersion="2")
    assert exc.value.response["Error"]["Message"] == f"Alias already exists: {ARN}:fn:prod"
    with pytest.raises(lam.exceptions.ResourceNotFoundException) as exc:
        lam.create_alias(FunctionName="fn", Name="beta", FunctionVersion="9")
    assert exc.value.response["Error"]["Message"] == f"Function not found: {ARN}:fn:9"
    with pytest.raises(lam.exceptions.ResourceConflictException):  # an alias still points to it
        lam.delete_function(FunctionName="fn", Qualifier="1")
    split = lam.create_alias(  # weighted aliases: tests/lambda_runtime/test_weighted_aliases.py
        FunctionName="fn",
        Name="split",
        FunctionVersion="1",
        RoutingConfig={"AdditionalVersionWeights": {"2": 0.5}},
    )
    assert split["RoutingConfig"] == {"AdditionalVersionWeights": {"2": 0.5}}
    lam.delete_alias(FunctionName="fn", Name="split")

    with pytest.raises(lam.exceptions.PreconditionFailedException):
        lam.update_alias(FunctionName="fn", Name="prod", FunctionVersion="2", RevisionId="stale")
    updated = lam.update_alias(
        FunctionName="fn", Name="prod", FunctionVersion="2", RevisionId=alias["RevisionId"]
    )
    assert (updated["FunctionVersion"], updated["Description"]) == ("2", "live")
    assert updated["RevisionId"] != alias["RevisionId"]
    response, result = _call(lam, f"{ARN}:fn:prod")
    assert (response["ExecutedVersion"], result["code"]) == ("2", "v2")

    lam.create_alias(FunctionName="fn", Name="edge", FunctionVersion="$LATEST")
    assert [a["Name"] for a in lam.list_aliases(FunctionName="fn")["Aliases"]] == ["edge", "prod"]
    on_two = lam.list_aliases(FunctionName="fn", FunctionVersion="2")["Aliases"]
    assert [a["Name"] for a in on_two] == ["prod"]
    assert lam.get_alias(FunctionName="fn", Name="edge")["FunctionVersion"] == "$LATEST"
    lam.delete_alias(FunctionName="fn", Name="prod")
    with pytest.raises(lam.exceptions.ResourceNotFoundException) as exc:
        lam.get_alias(FunctionName="fn", Name="prod")
    assert exc.value.response["Error"]["Message"] == f"Cannot find alias arn: {ARN}:fn:prod"
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.invoke(FunctionName="fn:prod", Payload=b"{}")
    lam.delete_function(FunctionName="fn", Qualifier="1")  # no alias points to it any more
