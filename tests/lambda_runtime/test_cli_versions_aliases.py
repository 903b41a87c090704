"""`sconeflow lambda publish / versions / alias ...` and the versions in `lambda list`, via the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from sconeflow.cli import app
from sconeflow.config import Settings

runner = CliRunner()
ARN = "arn:aws:lambda:us-east-1:123456789012:function:hello"


def lam(*args: str) -> object:
    result = runner.invoke(app, ["lambda", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def lam_error(*args: str) -> BaseException:
    result = runner.invoke(app, ["lambda", *args])
    assert result.exit_code != 0 and result.exception is not None, result.output
    return result.exception


def _hello(code: Path, value: int) -> None:
    code.mkdir(exist_ok=True)
    (code / "app.py").write_text(f"def handler(event, context):\n    return {{'v': {value}}}\n")


def _two_versions(tmp_path: Path) -> Path:
    """Function ``hello``: version 1 returns v=1, version 2 and $LATEST v=2."""
    code = tmp_path / "hello"
    _hello(code, 1)
    lam("register", "hello", "--handler", "app.handler", "--code", str(code))
    lam("publish", "hello", "--description", "first")
    _hello(code, 2)
    lam("publish", "hello")
    return code


def test_publish_and_versions(settings: Settings, tmp_path: Path) -> None:
    code = tmp_path / "hello"
    _hello(code, 1)
    lam("register", "hello", "--handler", "app.handler", "--code", str(code))
    first = lam("publish", "hello", "--description", "first")
    assert f"published version 1 of hello: {ARN}:1" in first.output
    unchanged = lam("publish", ARN)  # $LATEST as published: nothing new, as PublishVersion answers
    assert "unchanged since version 1" in unchanged.output
    _hello(code, 2)
    shape = json.loads(lam("publish", "hello:$LATEST", "--json").stdout)
    assert (shape["Version"], shape["FunctionArn"]) == ("2", f"{ARN}:2")

    listed = json.loads(lam("versions", "hello", "--json").stdout)["Versions"]
    assert [v["Version"] for v in listed] == ["$LATEST", "1", "2"]
    assert listed[0]["FunctionArn"] == f"{ARN}:$LATEST" and listed[1]["Description"] == "first"
    assert "first" in lam("versions", "hello").output

    _hello(code, 3)  # editing the folder changes $LATEST only
    assert json.loads(lam("invoke", "hello:1").stdout) == {"v": 1}
    assert json.loads(lam("invoke", "hello").stdout) == {"v": 3}


def test_alias_lifecycle(settings: Settings, tmp_path: Path) -> None:
    _two_versions(tmp_path)
    created = lam("alias", "create", "hello", "live", "--version", "1", "--description", "prod")
    assert "alias live of hello -> version 1" in created.output
    beta = json.loads(lam("alias", "create", "hello:beta", "--version", "$LATEST", "--json").stdout)
    assert (beta["AliasArn"], beta["FunctionVersion"]) == (f"{ARN}:beta", "$LATEST")
    got = json.loads(lam("alias", "get", f"{ARN}:live", "--json").stdout)
    assert (got["Name"], got["FunctionVersion"], got["Description"]) == ("live", "1", "prod")
    assert json.loads(lam("invoke", "hello:live").stdout) == {"v": 1}

    lam("alias", "update", "hello", "live", "--version", "2")
    assert json.loads(lam("invoke", "hello:live").stdout) == {"v": 2}
    lam("alias", "update", "hello:live", "--description", "production")
    shown = lam("alias", "get", "hello", "live").output
    assert "production" in shown and f"{ARN}:live" in shown

    names = [a["Name"] for a in json.loads(lam("alias", "list", "hello", "--json").stdout)["Aliases"]]
    assert names == ["beta", "live"]
    only_v2 = json.loads(lam("alias", "list", "hello", "--version", "2", "--json").stdout)["Aliases"]
    assert [a["Name"] for a in only_v2] == ["live"]
    table = lam("versions", "hello").output
    assert "beta" in table and "live" in table

    in_use = lam_error("delete", "hello:2")
    assert type(in_use).__name__ == "ResourceConflict" and "live" in str(in_use)
    assert "deleted alias beta of hello" in lam("alias", "delete", "hello", "beta").output
    assert "alias delete" in str(lam_error("delete", "hello:live"))  # the hint names the command
    assert type(lam_error("alias", "get", "hello:beta")).__name__ == "FunctionNotFound"


def test_list_shows_published_versions_and_aliases(settings: Settings, tmp_path: Path) -> None:
    """`lambda list` showed $LATEST's settings only, never a function's versions or aliases."""
    from sconeflow.lambda_runtime.registry import FunctionConfig, FunctionRegistry

    code = tmp_path / "hello"
    registry = FunctionRegistry(settings)  # set up without the new commands: only `list` is tested
    _hello(code, 1)
    registry.register(FunctionConfig(name="hello", handler="app.handler", code_dir=str(code)))
    for value in (1, 2, 3, 4):  # versions 1-4, then 3 deleted: "1-2, 4"
        _hello(code, value)
        registry.publish_version("hello")
    registry.delete_version("hello", "3")
    registry.create_alias("hello", "live", "2")
    env = {**os.environ, "COLUMNS": "250", "SCONEFLOW_HOME": str(settings.home)}
    listed = subprocess.run(
        [sys.executable, "-m", "sconeflow", "lambda", "list"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=120,
    ).stdout
    header = next(line for line in listed.splitlines() if "handler" in line)
    assert "versions" in header and "aliases" in header
    row = next(line for line in listed.splitlines() if line.startswith("│ hello "))
    cells = [c.strip() for c in row.split("│")[1:-1]]
    assert cells[-2:] == ["1-2, 4", "live -> 2"]
    builtin = next(line for line in listed.splitlines() if line.startswith("│ filter_inference "))
    assert [c.strip() for c in builtin.split("│")[1:-1]][-2:] == ["-", "-"]


def test_version_and_alias_arguments_are_named_errors(settings: Settings, tmp_path: Path) -> None:
    _two_versions(tmp_path)
    lam("alias", "create", "hello", "live", "--version", "1")
    cases = {
        ("publish", "hello:1"): "UsageProblem",
        ("publish", "nope"): "FunctionNotFound",
        ("versions", "hello:live"): "UsageProblem",
        ("versions", "nope"): "FunctionNotFound",
        ("alias", "create", "hello", "x"): "UsageProblem",  # no --version
        ("alias", "create", "hello", "live", "--version", "2"): "ResourceConflict",
        ("alias", "create", "hello", "x", "--version", "9"): "FunctionNotFound",
        ("alias", "create", "hello", "123", "--version", "1"): "InvalidParameterValue",
        ("alias", "update", "hello", "live"): "UsageProblem",  # nothing to change
        ("alias", "update", "hello", "nope", "--version", "1"): "FunctionNotFound",
        ("alias", "get", "hello"): "UsageProblem",  # which alias?
        ("alias", "get", "hello:1"): "UsageProblem",  # a version, not an alias
        ("alias", "get", "hello:live", "live"): "UsageProblem",
        ("alias", "delete", "hello", "nope"): "FunctionNotFound",
        ("alias", "list", "hello:live"): "UsageProblem",
    }
    for args, expected in cases.items():
        assert type(lam_error(*args)).__name__ == expected, args
