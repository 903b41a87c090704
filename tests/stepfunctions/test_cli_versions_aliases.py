"""``sconeflow sfn publish / versions / alias ...`` and starting a version or alias, through the real CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sconeflow.cli import app
from sconeflow.config import Settings
from sconeflow.stepfunctions.service import StepFunctionsService

from .sfn_helpers import wait_for

runner = CliRunner()
ARN = "arn:aws:states:us-east-1:123456789012:stateMachine:m"


def sfn(*args: str) -> object:
    result = runner.invoke(app, ["sfn", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def sfn_error(*args: str) -> BaseException:
    """The named error a command ends with (printed as ``Name: message`` by ``sconeflow``)."""
    result = runner.invoke(app, ["sfn", *args])
    assert result.exit_code != 0 and result.exception is not None, result.output
    return result.exception


def _machine(tmp_path: Path, result: str) -> Path:
    """A one-state machine whose output names its revision, so a test sees which one ran."""
    path = tmp_path / f"{result}.json"
    path.write_text(
        json.dumps({"StartAt": "A", "States": {"A": {"Type": "Pass", "Result": result, "End": True}}})
    )
    return path


def _two_versions_by_service(settings: Settings, tmp_path: Path) -> StepFunctionsService:
    """As :func:`_two_versions` plus alias ``OLD`` -> version 1, set up with the service (so a test of
    ``sfn start`` alone also runs against a CLI that had no version commands)."""
    service = StepFunctionsService(settings)
    service.create_state_machine("m", _machine(tmp_path, "v1").read_text())
    service.publish_version("m")
    service.create_state_machine("m", _machine(tmp_path, "v2").read_text(), update=True)
    service.publish_version("m")
    service.create_alias("OLD", [{"stateMachineVersionArn": f"{ARN}:1", "weight": 100}])
    return service


def _two_versions(tmp_path: Path) -> None:
    """State machine ``m``: version 1 outputs "v1", version 2 and the current revision "v2"."""
    sfn("create", "m", str(_machine(tmp_path, "v1")))
    sfn("publish", "m", "--description", "first")
    sfn("create", "m", str(_machine(tmp_path, "v2")), "--update")
    sfn("publish", "m")


def test_publish_numbers_versions_and_versions_lists_them(settings: Settings, tmp_path: Path) -> None:
    sfn("create", "m", str(_machine(tmp_path, "v1")))
    first = sfn("publish", "m", "--description", "first")
    assert "published version 1 of m (revision 1)" in first.output
    again = sfn("publish", ARN)  # the same revision: answered with its version, nothing new
    assert "already version 1" in again.output
    sfn("create", "m", str(_machine(tmp_path, "v2")), "--update")
    published = json.loads(sfn("publish", "m", "--json").output)
    assert published["stateMachineVersionArn"] == f"{ARN}:2"
    assert isinstance(published["creationDate"], float)

    listed = json.loads(sfn("versions", "m", "--json").output)["stateMachineVersions"]
    assert [v["stateMachineVersionArn"] for v in listed] == [f"{ARN}:2", f"{ARN}:1"]  # newest first
    table = sfn("versions", "m").output
    assert "first" in table and "2 (current)" in table

    ran = sfn("start", "m:1", "--wait", "--name", "old").output
    assert '"v1"' in ran and f"{ARN}:1" in ran
    shape = json.loads(sfn("describe", "old", "--json").output)
    assert shape["stateMachineVersionArn"] == f"{ARN}:1" and shape["output"] == '"v1"'
    latest = sfn("start", "m", "--wait", "--name", "new").output
    assert '"v2"' in latest


def test_alias_lifecycle_and_executions_through_it(settings: Settings, tmp_path: Path) -> None:
    _two_versions(tmp_path)
    created = sfn("alias", "create", "m", "PROD", "--route", "1=90", "--route", "2=10")
    assert f"{ARN}:PROD" in created.output and "version 1 (90%) + version 2 (10%)" in created.output
    same = sfn("alias", "create", "m:PROD", "--route", "1=90", "--route", "2=10")  # idempotent as on AWS
    assert "already exists" in same.output
    shape = json.loads(sfn("alias", "describe", "m", "PROD", "--json").output)
    assert shape["routingConfiguration"] == [
        {"stateMachineVersionArn": f"{ARN}:1", "weight": 90},
        {"stateMachineVersionArn": f"{ARN}:2", "weight": 10},
    ]
    assert "PROD (90%)" in sfn("versions", "m").output

    sfn("alias", "update", f"{ARN}:PROD", "--route", "2")  # one version: all of the traffic
    sfn("alias", "update", "m:PROD", "--description", "production")
    described = sfn("alias", "describe", "m:PROD").output
    assert "version 2 (100%)" in described and "production" in described
    listed = json.loads(sfn("alias", "list", "m", "--json").output)["stateMachineAliases"]
    assert [a["stateMachineAliasArn"] for a in listed] == [f"{ARN}:PROD"]
    assert json.loads(sfn("alias", "list", "m:1", "--json").output)["stateMachineAliases"] == []

    ran = sfn("start", "m:PROD", "--wait", "--name", "via-alias").output
    assert '"v2"' in ran and f"{ARN}:PROD" in ran
    sfn("start", "m:1", "--wait", "--name", "direct")
    sfn("start", "m", "--wait", "--name", "plain")
    table = sfn("list").output
    rows = {line.split("│")[1].strip(): line for line in table.splitlines() if line.startswith("│")}
    assert "2 via PROD" in rows["via-alias"]
    assert "│ 1 " in rows["direct"] and "│ - " in rows["plain"]
    through = json.loads(sfn("list", "--machine", "m:PROD", "--json").output)["executions"]
    assert [e["name"] for e in through] == ["via-alias"]
    assert through[0]["stateMachineAliasArn"] == f"{ARN}:PROD"
    of_v1 = json.loads(sfn("list", "-m", "m:1", "--json").output)["executions"]
    assert [e["name"] for e in of_v1] == ["direct"]

    in_use = sfn_error("delete", "m:2")  # an alias routes to it
    assert type(in_use).__name__ == "ConflictException" and "PROD" in str(in_use)
    assert "deleted alias" in sfn("alias", "delete", "m", "PROD").output
    assert "nothing deleted" in sfn("alias", "delete", "m:PROD").output  # no error, as on AWS
    assert f"deleted version {ARN}:2" in sfn("delete", "m:2").output
    assert [
        v["stateMachineVersionArn"]
        for v in json.loads(sfn("versions", "m", "--json").output)["stateMachineVersions"]
    ] == [f"{ARN}:1"]
    assert sfn("describe", "via-alias").exit_code == 0  # its execution stays readable


@pytest.mark.timeout(120)
def test_start_without_wait_runs_the_version_or_alias_it_was_given(
    settings: Settings, tmp_path: Path
) -> None:
    """The background runner was handed the unqualified ARN: a version ARN ran the latest revision (and
    was not recorded), an alias ARN was StateMachineDoesNotExist."""
    service = _two_versions_by_service(settings, tmp_path)
    started = sfn("start", f"{ARN}:1", "--name", "bg-version")
    assert "RUNNING" in started.output and "background" in started.output
    for name, ref in (("bg-version", f"{ARN}:1"), ("bg-alias", f"{ARN}:OLD")):
        if name != "bg-version":
            sfn("start", ref, "--name", name)
        record = wait_for(lambda n=name: (r := service.describe_execution(n)).status != "RUNNING" and r)
        assert (record.status, record.output, record.version_arn) == ("SUCCEEDED", '"v1"', f"{ARN}:1")
    assert service.describe_execution("bg-alias").alias_arn == f"{ARN}:OLD"


@pytest.mark.timeout(120)
def test_start_through_the_gateway_runs_the_alias(settings: Settings, tmp_path: Path) -> None:
    from sconeflow.services import free_port

    _two_versions_by_service(settings, tmp_path)
    up = runner.invoke(app, ["up", "--port", str(free_port()), "--no-endpoints"])
    assert up.exit_code == 0, up.output
    try:
        started = sfn("start", f"{ARN}:1", "--name", "gw")
        assert "gateway" in started.output
        service = StepFunctionsService(settings)
        record = wait_for(lambda: (r := service.describe_execution("gw")).status != "RUNNING" and r)
        assert (record.output, record.version_arn, record.alias_arn) == ('"v1"', f"{ARN}:1", None)
        sfn("start", "m:OLD", "--name", "gw-alias")
        record = wait_for(lambda: (r := service.describe_execution("gw-alias")).status != "RUNNING" and r)
        assert (record.output, record.version_arn, record.alias_arn) == ('"v1"', f"{ARN}:1", f"{ARN}:OLD")
    finally:
        assert runner.invoke(app, ["down"]).exit_code == 0


def test_version_and_alias_arguments_are_named_errors(settings: Settings, tmp_path: Path) -> None:
    _two_versions(tmp_path)
    cases = {
        ("alias", "create", "m", "A", "--route", "1=50", "--route", "2=40"): "ValidationException",
        ("alias", "create", "m", "A", "--route", "1=50", "--route", "2=40", "--route", "3=10"): (
            "UsageProblem"
        ),
        ("alias", "create", "m", "A", "--route", "one=100"): "UsageProblem",
        ("alias", "create", "m", "A", "--route", "1=lots"): "UsageProblem",
        ("alias", "create", "m", "A"): "UsageProblem",  # no routing
        ("alias", "create", "m", "A", "--route", "7=100"): "ResourceNotFound",  # no version 7
        ("alias", "create", "nope", "A", "--route", "1=100"): "StateMachineDoesNotExist",
        ("alias", "describe", "m:NOPE"): "ResourceNotFound",
        ("alias", "describe", "m"): "UsageProblem",  # which alias?
        ("alias", "describe", "m:1"): "UsageProblem",  # a version, not an alias
        ("alias", "update", "m", "NOPE", "--route", "1"): "ResourceNotFound",
        ("publish", "m:1"): "UsageProblem",
        ("versions", "nope"): "StateMachineDoesNotExist",
        ("start", "m:9", "--wait"): "StateMachineDoesNotExist",
        ("start", "m:NOPE"): "StateMachineDoesNotExist",
        ("start", "m:1:2"): "UsageProblem",
        ("delete", "m:9"): "UsageProblem",  # no such version
        ("delete", "m:PROD"): "UsageProblem",  # an alias: `sfn alias delete`
    }
    sfn("alias", "create", "m", "PROD", "--route", "1")
    assert type(sfn_error("alias", "update", "m:PROD")).__name__ == "UsageProblem"  # nothing to change
    for args, expected in cases.items():
        assert type(sfn_error(*args)).__name__ == expected, args
    assert "alias delete" in str(sfn_error("delete", "m:PROD"))


def test_the_service_lists_a_machines_aliases_by_name_arn_or_version(
    settings: Settings, tmp_path: Path
) -> None:
    """By name it used to answer [] (a name was taken for a version ARN to filter by)."""
    service = _two_versions_by_service(settings, tmp_path)
    service.create_alias("NEW", [{"stateMachineVersionArn": f"{ARN}:2", "weight": 100}])
    assert [a.name for a in service.list_aliases("m")] == ["OLD", "NEW"]
    assert [a.name for a in service.list_aliases(ARN)] == ["OLD", "NEW"]
    assert [a.name for a in service.list_aliases(f"{ARN}:1")] == ["OLD"]
