"""A Task naming a Lambda version or alias runs that version, as on AWS (it used to run $LATEST)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sconeflow.config import Settings
from sconeflow.lambda_runtime.registry import FunctionConfig, FunctionRegistry

from .sfn_helpers import dumps, wait_for

ROLE = "arn:aws:iam::123456789012:role/service-role/StepFunctions-test"


def _code(tmp_path: Path, label: str) -> str:
    folder = tmp_path / f"code-{label}"
    folder.mkdir()
    (folder / "fn.py").write_text(f"def handler(event, context):\n    return {label!r}\n")
    return str(folder)


def _run(sfn, state: dict) -> dict:
    definition = {"StartAt": "T", "States": {"T": {**state, "End": True}}}
    name = f"q{abs(hash(dumps(definition))) % 10**8}"
    arn = sfn.create_state_machine(name=name, definition=dumps(definition), roleArn=ROLE)["stateMachineArn"]
    started = sfn.start_execution(stateMachineArn=arn, input="{}")
    done = wait_for(
        lambda: (
            (d := sfn.describe_execution(executionArn=started["executionArn"]))["status"] != "RUNNING" and d
        ),
        timeout=60,
    )
    assert done["status"] == "SUCCEEDED", done
    return json.loads(done["output"])


@pytest.fixture
def versioned(settings: Settings, tmp_path: Path) -> None:
    """Function ``versioned``: version 1 (and alias ``live``) answer "v1", $LATEST answers "v2"."""
    registry = FunctionRegistry(settings)
    registry.register(FunctionConfig(name="versioned", handler="fn.handler", code_dir=_code(tmp_path, "v1")))
    registry.publish_version("versioned")
    registry.create_alias("versioned", "live", "1")
    registry.register(
        FunctionConfig(name="versioned", handler="fn.handler", code_dir=_code(tmp_path, "v2")),
        replace_existing=True,
    )


@pytest.mark.parametrize(
    ("function", "payload", "version"),
    [
        ("versioned:1", "v1", "1"),
        ("versioned:live", "v1", "1"),
        ("versioned", "v2", "$LATEST"),
        ("versioned:$LATEST", "v2", "$LATEST"),
        # an ARN exported from another account still names the local function, with its qualifier
        ("arn:aws:lambda:us-east-1:999999999999:function:versioned:1", "v1", "1"),
    ],
)
def test_lambda_invoke_runs_the_version_it_names(
    sfn, versioned: None, function: str, payload: str, version: str
) -> None:
    out = _run(
        sfn,
        {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": function},
        },
    )
    assert (out["Payload"], out["ExecutedVersion"]) == (payload, version)


@pytest.mark.parametrize(("qualifier", "payload"), [(":1", "v1"), (":live", "v1"), ("", "v2")])
def test_a_lambda_arn_resource_runs_the_version_it_names(
    sfn, versioned: None, qualifier: str, payload: str
) -> None:
    resource = f"arn:aws:lambda:us-east-1:123456789012:function:versioned{qualifier}"
    assert _run(sfn, {"Type": "Task", "Resource": resource}) == payload
