"""State machine versions and aliases as AWS models them, with a real boto3 client and the real gateway.

AWS numbers only published versions (1, 2, 3 ... per state machine, a deleted number is never reused),
publishing an already published revision answers with its version, and an alias routes StartExecution
to one or two versions by weight. Shapes and messages follow the API reference (and AWS-recorded
responses where the reference gives no wording).
"""

from __future__ import annotations

from collections import Counter

import pytest
from botocore.config import Config

from sconeflow.config import Settings

from .sfn_helpers import dumps, wait_for

ROLE = "arn:aws:iam::123456789012:role/service-role/StepFunctions-test"
ARN = "arn:aws:states:us-east-1:123456789012:stateMachine:vm"


def _machine(result: str) -> str:
    return dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": result, "End": True}}})


def _error(exc_info: pytest.ExceptionInfo) -> tuple[str, str]:
    error = exc_info.value.response["Error"]
    return error["Code"], error["Message"]


def _finished(sfn, arn: str) -> dict:
    return wait_for(lambda: (d := sfn.describe_execution(executionArn=arn))["status"] != "RUNNING" and d)


def _versions(sfn, **kwargs) -> list[str]:
    listed = sfn.list_state_machine_versions(stateMachineArn=ARN, **kwargs)["stateMachineVersions"]
    return [v["stateMachineVersionArn"] for v in listed]


# -- versions --------------------------------------------------------------------------------------


def test_only_published_revisions_are_numbered(sfn) -> None:
    """An unpublished update takes no version number: publishing after it gives :1, as on AWS."""
    sfn.create_state_machine(name="vm", definition=_machine("r1"), roleArn=ROLE)
    updated = sfn.update_state_machine(stateMachineArn=ARN, definition=_machine("r2"))
    assert "stateMachineVersionArn" not in updated
    assert _versions(sfn) == []
    with pytest.raises(sfn.exceptions.StateMachineDoesNotExist):  # revisions are not versions
        sfn.describe_state_machine(stateMachineArn=f"{ARN}:1")

    published = sfn.publish_state_machine_version(stateMachineArn=ARN, description="first release")
    assert published["stateMachineVersionArn"] == f"{ARN}:1"
    assert published["creationDate"]
    described = sfn.describe_state_machine(stateMachineArn=f"{ARN}:1")
    assert described["stateMachineArn"] == f"{ARN}:1"
    assert described["definition"] == _machine("r2")
    assert described["description"] == "first release"
    assert described["revisionId"] == updated["revisionId"]
    assert described["name"] == "vm" and described["status"] == "ACTIVE"
    # the unqualified ARN still describes the machine (no version description)
    assert "description" not in sfn.describe_state_machine(stateMachineArn=ARN)


def test_publish_is_idempotent_and_checks_the_revision_id(sfn) -> None:
    sfn.create_state_machine(name="vm", definition=_machine("r1"), roleArn=ROLE)
    first = sfn.publish_state_machine_version(stateMachineArn=ARN)
    again = sfn.publish_state_machine_version(stateMachineArn=ARN, description="ignored")
    assert again["stateMachineVersionArn"] == first["stateMachineVersionArn"] == f"{ARN}:1"
    assert again["creationDate"] == first["creationDate"]
    assert _versions(sfn) == [f"{ARN}:1"]

    r2 = sfn.update_state_machine(stateMachineArn=ARN, definition=_machine("r2"))["revisionId"]
    r3 = sfn.update_state_machine(stateMachineArn=ARN, definition=_machine("r3"))["revisionId"]
    with pytest.raises(sfn.exceptions.ConflictException) as info:
        sfn.publish_state_machine_version(stateMachineArn=ARN, revisionId=r2)
    assert _error(info) == (
        "ConflictException",
        f"Failed to publish the State Machine version for revision {r2}. "
        f"The current State Machine revision is {r3}.",
    )
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 409
    ok = sfn.publish_state_machine_version(stateMachineArn=ARN, revisionId=r3)
    assert ok["stateMachineVersionArn"] == f"{ARN}:2"
    assert sfn.describe_state_machine(stateMachineArn=f"{ARN}:2")["definition"] == _machine("r3")
    with pytest.raises(sfn.exceptions.StateMachineDoesNotExist):
        sfn.publish_state_machine_version(stateMachineArn=ARN.replace(":vm", ":nope"))


def test_create_and_update_with_publish_and_version_description(sfn) -> None:
    created = sfn.create_state_machine(
        name="vm", definition=_machine("r1"), roleArn=ROLE, publish=True, versionDescription="v one"
    )
    assert created["stateMachineVersionArn"] == f"{ARN}:1"
    assert sfn.describe_state_machine(stateMachineArn=f"{ARN}:1")["description"] == "v one"
    # an update that changes nothing, published: the revision already has version 1
    same = sfn.update_state_machine(stateMachineArn=ARN, definition=_machine("r1"), publish=True)
    assert same["stateMachineVersionArn"] == f"{ARN}:1"
    changed = sfn.update_state_machine(
        stateMachineArn=ARN, definition=_machine("r2"), publish=True, versionDescription="v two"
    )
    assert changed["stateMachineVersionArn"] == f"{ARN}:2"
    v2 = sfn.describe_state_machine(stateMachineArn=f"{ARN}:2")
    assert (v2["definition"], v2["description"], v2["revisionId"]) == (
        _machine("r2"),
        "v two",
        changed["revisionId"],
    )
    for call in (
        lambda: sfn.create_state_machine(
            name="other", definition=_machine("x"), roleArn=ROLE, versionDescription="no publish"
        ),
        lambda: sfn.update_state_machine(
            stateMachineArn=ARN, definition=_machine("r3"), versionDescription="no publish"
        ),
    ):
        with pytest.raises(sfn.exceptions.ValidationException) as info:
            call()
        assert _error(info)[1] == "Version description can only be set when publish is true"
    with pytest.raises(sfn.exceptions.StateMachineDoesNotExist):  # refused before anything was created
        sfn.describe_state_machine(stateMachineArn=ARN.replace(":vm", ":other"))
    with pytest.raises(sfn.exceptions.ValidationException):
        sfn.publish_state_machine_version(stateMachineArn=ARN, description="d" * 257)


def test_list_versions_newest_first_with_pages_and_delete(sfn) -> None:
    sfn.create_state_machine(name="vm", definition=_machine("r1"), roleArn=ROLE, publish=True)
    for n in (2, 3, 4):
        sfn.update_state_machine(stateMachineArn=ARN, definition=_machine(f"r{n}"), publish=True)
    assert _versions(sfn) == [f"{ARN}:{n}" for n in (4, 3, 2, 1)]
    page = sfn.list_state_machine_versions(stateMachineArn=ARN, maxResults=3)
    assert [v["stateMachineVersionArn"] for v in page["stateMachineVersions"]] == [
        f"{ARN}:{n}" for n in (4, 3, 2)
    ]
    assert _versions(sfn, maxResults=3, nextToken=page["nextToken"]) == [f"{ARN}:1"]

    sfn.delete_state_machine_version(stateMachineVersionArn=f"{ARN}:4")
    sfn.delete_state_machine_version(stateMachineVersionArn=f"{ARN}:4")  # again: no error, as on AWS
    assert _versions(sfn) == [f"{ARN}:{n}" for n in (3, 2, 1)]
    with pytest.raises(sfn.exceptions.StateMachineDoesNotExist):
        sfn.start_execution(stateMachineArn=f"{ARN}:4")
    # version numbers are never reused: the next version after deleting 4 is 5
    sfn.update_state_machine(stateMachineArn=ARN, definition=_machine("r5"))
    assert sfn.publish_state_machine_version(stateMachineArn=ARN)["stateMachineVersionArn"] == f"{ARN}:5"
    with pytest.raises(sfn.exceptions.InvalidArn):
        sfn.delete_state_machine_version(stateMachineVersionArn=ARN)
    # deleting the state machine deletes its versions
    sfn.delete_state_machine(stateMachineArn=ARN)
    sfn.create_state_machine(name="vm", definition=_machine("new"), roleArn=ROLE)
    assert _versions(sfn) == []


def test_executions_of_versions_still_run_and_are_listed_per_version(sfn) -> None:
    sfn.create_state_machine(name="vm", definition=_machine("r1"), roleArn=ROLE, publish=True)
    sfn.update_state_machine(stateMachineArn=ARN, definition=_machine("r2"))  # unpublished revision 2
    sfn.update_state_machine(stateMachineArn=ARN, definition=_machine("r3"), publish=True)  # version 2
    v1 = sfn.start_execution(stateMachineArn=f"{ARN}:1", name="on-v1")["executionArn"]
    v2 = sfn.start_execution(stateMachineArn=f"{ARN}:2", name="on-v2")["executionArn"]
    assert _finished(sfn, v1)["output"] == '"r1"'
    done = _finished(sfn, v2)
    assert done["output"] == '"r3"' and done["stateMachineVersionArn"] == f"{ARN}:2"
    listed = sfn.list_executions(stateMachineArn=f"{ARN}:2")["executions"]
    assert [e["name"] for e in listed] == ["on-v2"]
    history = sfn.get_execution_history(executionArn=v2)["events"]
    started = history[0]["executionStartedEventDetails"]
    assert started["stateMachineVersionArn"] == f"{ARN}:2" and "stateMachineAliasArn" not in started
    # deleting a version leaves its executions readable
    sfn.delete_state_machine_version(stateMachineVersionArn=f"{ARN}:1")
    assert sfn.describe_execution(executionArn=v1)["stateMachineVersionArn"] == f"{ARN}:1"
    assert sfn.describe_state_machine_for_execution(executionArn=v1)["definition"] == _machine("r1")


# -- aliases ---------------------------------------------------------------------------------------


def _two_versions(sfn) -> tuple[str, str]:
    sfn.create_state_machine(name="vm", definition=_machine("one"), roleArn=ROLE, publish=True)
    sfn.update_state_machine(stateMachineArn=ARN, definition=_machine("two"), publish=True)
    return f"{ARN}:1", f"{ARN}:2"


def test_alias_lifecycle(sfn) -> None:
    v1, v2 = _two_versions(sfn)
    assert sfn.list_state_machine_aliases(stateMachineArn=ARN)["stateMachineAliases"] == []
    created = sfn.create_state_machine_alias(
        name="PROD", description="live", routingConfiguration=[{"stateMachineVersionArn": v1, "weight": 100}]
    )
    alias = created["stateMachineAliasArn"]
    assert alias == f"{ARN}:PROD" and created["creationDate"]
    # the same request again is idempotent; another description or routing is a conflict
    again = sfn.create_state_machine_alias(
        name="PROD", description="live", routingConfiguration=[{"stateMachineVersionArn": v1, "weight": 100}]
    )
    assert again == {**again, "stateMachineAliasArn": alias, "creationDate": created["creationDate"]}
    with pytest.raises(sfn.exceptions.ConflictException) as info:
        sfn.create_state_machine_alias(
            name="PROD", routingConfiguration=[{"stateMachineVersionArn": v2, "weight": 100}]
        )
    assert _error(info)[1] == (
        "Failed to create alias because an alias with the same name and a different routing "
        "configuration already exists."
    )
    described = sfn.describe_state_machine_alias(stateMachineAliasArn=alias)
    assert {k: described[k] for k in ("stateMachineAliasArn", "name", "description")} == {
        "stateMachineAliasArn": alias,
        "name": "PROD",
        "description": "live",
    }
    assert described["routingConfiguration"] == [{"stateMachineVersionArn": v1, "weight": 100}]
    assert described["creationDate"] and described["updateDate"]

    sfn.create_state_machine_alias(
        name="beta", routingConfiguration=[{"stateMachineVersionArn": v2, "weight": 100}]
    )
    listed = sfn.list_state_machine_aliases(stateMachineArn=ARN)["stateMachineAliases"]
    assert [a["stateMachineAliasArn"] for a in listed] == [alias, f"{ARN}:beta"]  # oldest first
    page = sfn.list_state_machine_aliases(stateMachineArn=ARN, maxResults=1)
    assert [a["stateMachineAliasArn"] for a in page["stateMachineAliases"]] == [alias]
    rest = sfn.list_state_machine_aliases(stateMachineArn=ARN, maxResults=1, nextToken=page["nextToken"])
    assert [a["stateMachineAliasArn"] for a in rest["stateMachineAliases"]] == [f"{ARN}:beta"]
    # given a version ARN: the aliases routing to that version
    by_v2 = sfn.list_state_machine_aliases(stateMachineArn=v2)["stateMachineAliases"]
    assert [a["stateMachineAliasArn"] for a in by_v2] == [f"{ARN}:beta"]

    updated = sfn.update_state_machine_alias(
        stateMachineAliasArn=alias,
        routingConfiguration=[
            {"stateMachineVersionArn": v1, "weight": 50},
            {"stateMachineVersionArn": v2, "weight": 50},
        ],
    )
    assert updated["updateDate"]
    after = sfn.describe_state_machine_alias(stateMachineAliasArn=alias)
    assert after["description"] == "live"  # kept: only the routing changed
    assert [r["weight"] for r in after["routingConfiguration"]] == [50, 50]
    sfn.update_state_machine_alias(stateMachineAliasArn=alias, description="new description")
    assert sfn.describe_state_machine_alias(stateMachineAliasArn=alias)["description"] == "new description"
    with pytest.raises(sfn.exceptions.ResourceNotFound) as missing:
        sfn.update_state_machine_alias(stateMachineAliasArn=f"{ARN}:nope", description="x")
    assert _error(missing)[1] == "Request references a resource that does not exist."
    with pytest.raises(sfn.exceptions.ResourceNotFound):
        sfn.describe_state_machine_alias(stateMachineAliasArn=f"{ARN}:nope")

    sfn.delete_state_machine_alias(stateMachineAliasArn=f"{ARN}:beta")
    sfn.delete_state_machine_alias(stateMachineAliasArn=f"{ARN}:beta")  # a missing alias: no error
    assert [
        a["stateMachineAliasArn"]
        for a in sfn.list_state_machine_aliases(stateMachineArn=ARN)["stateMachineAliases"]
    ] == [alias]
    assert _versions(sfn) == [v2, v1]  # deleting an alias keeps its versions


def test_a_version_an_alias_routes_to_cannot_be_deleted(sfn) -> None:
    v1, v2 = _two_versions(sfn)
    sfn.create_state_machine_alias(
        name="PROD", routingConfiguration=[{"stateMachineVersionArn": v1, "weight": 100}]
    )
    with pytest.raises(sfn.exceptions.ConflictException) as info:
        sfn.delete_state_machine_version(stateMachineVersionArn=v1)
    assert _error(info)[1] == (
        "Version to be deleted must not be referenced by an alias. "
        "Current list of aliases referencing this version: [PROD]"
    )
    sfn.update_state_machine_alias(
        stateMachineAliasArn=f"{ARN}:PROD",
        routingConfiguration=[{"stateMachineVersionArn": v2, "weight": 100}],
    )
    sfn.delete_state_machine_version(stateMachineVersionArn=v1)
    assert _versions(sfn) == [v2]
    # deleting the state machine deletes its aliases too
    sfn.delete_state_machine(stateMachineArn=ARN)
    sfn.create_state_machine(name="vm", definition=_machine("new"), roleArn=ROLE)
    assert sfn.list_state_machine_aliases(stateMachineArn=ARN)["stateMachineAliases"] == []


def test_executions_through_an_alias_run_a_version_chosen_by_weight(sfn) -> None:
    v1, v2 = _two_versions(sfn)
    alias = sfn.create_state_machine_alias(
        name="canary",
        routingConfiguration=[
            {"stateMachineVersionArn": v1, "weight": 50},
            {"stateMachineVersionArn": v2, "weight": 50},
        ],
    )["stateMachineAliasArn"]
    runs = [sfn.start_execution(stateMachineArn=alias, name=f"c{i}")["executionArn"] for i in range(40)]
    described = [_finished(sfn, arn) for arn in runs]
    for d in described:
        assert d["stateMachineArn"] == ARN and d["stateMachineAliasArn"] == alias
        # the version actually run: its definition produced the output
        assert d["output"] == {v1: '"one"', v2: '"two"'}[d["stateMachineVersionArn"]]
    counts = Counter(d["stateMachineVersionArn"] for d in described)
    assert set(counts) == {v1, v2}  # 50/50 over 40 runs: both (a miss has probability 2**-39)
    started = sfn.get_execution_history(executionArn=runs[0])["events"][0]["executionStartedEventDetails"]
    assert started["stateMachineAliasArn"] == alias
    assert started["stateMachineVersionArn"] == described[0]["stateMachineVersionArn"]

    # a weight of 0 never runs; listing by alias ARN lists only the alias's executions
    sfn.update_state_machine_alias(
        stateMachineAliasArn=alias,
        routingConfiguration=[
            {"stateMachineVersionArn": v1, "weight": 0},
            {"stateMachineVersionArn": v2, "weight": 100},
        ],
    )
    later = [sfn.start_execution(stateMachineArn=alias)["executionArn"] for _ in range(10)]
    assert {_finished(sfn, arn)["stateMachineVersionArn"] for arn in later} == {v2}
    plain = sfn.start_execution(stateMachineArn=ARN, name="plain")["executionArn"]
    _finished(sfn, plain)
    by_alias = sfn.list_executions(stateMachineArn=alias, maxResults=1000)["executions"]
    assert len(by_alias) == 50 and all(e["stateMachineAliasArn"] == alias for e in by_alias)
    everything = sfn.list_executions(stateMachineArn=ARN, maxResults=1000)["executions"]
    assert len(everything) == 51
    item = next(e for e in everything if e["name"] == "plain")
    assert "stateMachineAliasArn" not in item and "stateMachineVersionArn" not in item
    # a name already used through the alias is taken for the whole state machine
    with pytest.raises(sfn.exceptions.ExecutionAlreadyExists):
        sfn.start_execution(stateMachineArn=alias, name="plain", input='{"other": 1}')
    with pytest.raises(sfn.exceptions.StateMachineDoesNotExist):
        sfn.start_execution(stateMachineArn=f"{ARN}:missing")


@pytest.mark.parametrize(
    ("name", "routing", "message"),
    [
        (
            "123",
            [(1, 100)],
            "1 validation error detected: Value '123' at 'name' failed to satisfy constraint: Member must "
            "satisfy regular expression pattern: ^(?=.*[a-zA-Z_\\-\\.])[a-zA-Z0-9_\\-\\.]+$",
        ),
        (
            "INVALID ALIAS",
            [(1, 100)],
            "1 validation error detected: Value 'INVALID ALIAS' at 'name' failed to satisfy constraint: "
            "Member must satisfy regular expression pattern: ^(?=.*[a-zA-Z_\\-\\.])[a-zA-Z0-9_\\-\\.]+$",
        ),
        (
            "A" * 81,
            [(1, 100)],
            f"1 validation error detected: Value '{'A' * 81}' at 'name' failed to satisfy constraint: "
            "Member must have length less than or equal to 80",
        ),
        (
            "ok",
            [(1, 50), (2, 30), (1, 20)],
            "1 validation error detected: Value '[RoutingConfigurationListItem(stateMachineVersionArn="
            f"{ARN}:1, weight=50), RoutingConfigurationListItem(stateMachineVersionArn={ARN}:2, weight=30), "
            f"RoutingConfigurationListItem(stateMachineVersionArn={ARN}:1, weight=20)]' at "
            "'routingConfiguration' failed to satisfy constraint: Member must have length less than or "
            "equal to 2",
        ),
        (
            "ok",
            [(1, 50), (1, 50)],
            f"Routing configuration must contain distinct state machine version ARNs. Received: [{ARN}:1, "
            f"{ARN}:1]",
        ),
        (
            "ok",
            [(1, 101)],
            "1 validation error detected: Value '101' at 'routingConfiguration.1.member.weight' failed to "
            "satisfy constraint: Member must have value less than or equal to 100",
        ),
        ("ok", [(1, 70), (2, 29)], "Sum of routing configuration weights must equal 100. Received: [70, 29]"),
        ("ok", [(1, 70), (2, 31)], "Sum of routing configuration weights must equal 100. Received: [70, 31]"),
        (
            "ok",
            [(None, 100)],
            f"Routing configuration must contain state machine version ARNs. Received: [{ARN}]",
        ),
    ],
)
def test_alias_validation_errors_as_aws_words_them(sfn, name: str, routing: list, message: str) -> None:
    _two_versions(sfn)
    config = [{"stateMachineVersionArn": ARN if n is None else f"{ARN}:{n}", "weight": w} for n, w in routing]
    with pytest.raises(sfn.exceptions.ValidationException) as info:
        sfn.create_state_machine_alias(name=name, routingConfiguration=config)
    assert _error(info)[1] == message
    assert sfn.list_state_machine_aliases(stateMachineArn=ARN)["stateMachineAliases"] == []


def test_alias_of_a_version_that_does_not_exist(sfn) -> None:
    _two_versions(sfn)
    with pytest.raises(sfn.exceptions.ResourceNotFound):
        sfn.create_state_machine_alias(
            name="ghost", routingConfiguration=[{"stateMachineVersionArn": f"{ARN}:9", "weight": 100}]
        )
    with pytest.raises(sfn.exceptions.ValidationException):  # versions of two state machines
        sfn.create_state_machine_alias(
            name="mixed",
            routingConfiguration=[
                {"stateMachineVersionArn": f"{ARN}:1", "weight": 50},
                {"stateMachineVersionArn": f"{ARN}x:1", "weight": 50},
            ],
        )


def test_a_database_from_before_versions_keeps_its_version_arns(settings: Settings) -> None:
    """Before migration 5 every revision was addressable as ``<ARN>:<revision>``; an upgraded home
    keeps those version ARNs (and executions started through them), and numbering goes on after them."""
    import boto3

    from sconeflow.db import Database, Migrations
    from sconeflow.gateway.server import running_gateway
    from sconeflow.stepfunctions.executions import SCHEMA

    old = Database(settings.db_path)
    old.apply(Migrations(SCHEMA.component, SCHEMA.scripts[:4]))  # the schema before this change
    with old.transaction() as conn:
        conn.execute(
            "INSERT INTO sfn_state_machines (arn, name, type, role_arn, revision, created, updated)"
            " VALUES (?, 'vm', 'STANDARD', ?, 2, 1.0, 2.0)",
            (ARN, ROLE),
        )
        for revision in (1, 2):
            conn.execute(
                "INSERT INTO sfn_state_machine_versions VALUES (?, ?, ?, ?, ?)",
                (ARN, revision, f"rev-{revision}", _machine(f"r{revision}"), float(revision)),
            )
    old.close()

    with running_gateway(settings) as gateway:
        sfn = boto3.client(
            "stepfunctions",
            endpoint_url=gateway.url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(inject_host_prefix=False, retries={"max_attempts": 1}),
        )
        assert _versions(sfn) == [f"{ARN}:2", f"{ARN}:1"]
        assert sfn.describe_state_machine(stateMachineArn=f"{ARN}:1")["definition"] == _machine("r1")
        run = sfn.start_execution(stateMachineArn=f"{ARN}:1")["executionArn"]
        assert _finished(sfn, run)["output"] == '"r1"'
        sfn.update_state_machine(stateMachineArn=ARN, definition=_machine("r3"))
        assert sfn.publish_state_machine_version(stateMachineArn=ARN)["stateMachineVersionArn"] == f"{ARN}:3"
