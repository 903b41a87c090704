"""Numbers a float cannot hold in a Lambda result, and the math intrinsics' documented limits, through a
real boto3 client, the real gateway and the real local Lambda runtime.

* A Lambda result holding ``1e999`` (or Python's ``Infinity``) was read as ``inf`` and written into the
  execution output as ``Infinity``, which is not JSON. The engine refuses such numbers wherever they
  enter (execution input: ``States.Runtime``), so such a result fails the execution with States.Runtime.
* States.MathRandom returns a number in [start, end) (AWS: start inclusive, end exclusive, non-integers
  rounded); a range with no integer fails with States.IntrinsicFailure. States.MathAdd takes integers
  between -2147483648 and 2147483647 (AWS's documented range); others fail with States.IntrinsicFailure.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sconeflow.config import Settings
from sconeflow.lambda_runtime.registry import FunctionConfig, FunctionRegistry

from .sfn_helpers import dumps, wait_for

ROLE = "arn:aws:iam::123456789012:role/service-role/StepFunctions-test"
FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:{name}"


def _register(settings: Settings, tmp_path: Path, name: str, body: str) -> None:
    """A real Lambda function ``name`` whose handler returns ``body``'s value."""
    folder = tmp_path / f"code-{name}"
    folder.mkdir()
    (folder / "fn.py").write_text(f"def handler(event, context):\n    return {body}\n")
    FunctionRegistry(settings).register(
        FunctionConfig(name=name, handler="fn.handler", code_dir=str(folder)), replace_existing=True
    )


def _run(sfn, definition: dict, data: object = None) -> dict:
    name = f"m{abs(hash(dumps(definition))) % 10**8}"
    arn = sfn.create_state_machine(name=name, definition=dumps(definition), roleArn=ROLE)["stateMachineArn"]
    started = sfn.start_execution(stateMachineArn=arn, input=json.dumps({} if data is None else data))
    return wait_for(
        lambda: (
            (d := sfn.describe_execution(executionArn=started["executionArn"]))["status"] != "RUNNING" and d
        ),
        timeout=60,
    )


def _lambda_invoke(name: str) -> dict:
    return {
        "StartAt": "Call",
        "States": {
            "Call": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": FUNCTION_ARN.format(name=name), "Payload.$": "$"},
                "End": True,
            }
        },
    }


def _legacy(name: str) -> dict:
    return {
        "StartAt": "Call",
        "States": {"Call": {"Type": "Task", "Resource": FUNCTION_ARN.format(name=name), "End": True}},
    }


@pytest.mark.parametrize(
    ("body", "integration"),
    [
        ('b"[1e999]"', _lambda_invoke),  # raw bytes: the JSON text [1e999]
        ('b"[1e999]"', _legacy),
        ('{"x": float("inf")}', _lambda_invoke),  # the runtime writes {"x": Infinity}, as json.dumps does
    ],
)
def test_a_lambda_result_a_float_cannot_hold_fails_instead_of_writing_infinity(
    sfn, settings: Settings, tmp_path: Path, body: str, integration
) -> None:
    _register(settings, tmp_path, "huge", body)
    done = _run(sfn, integration("huge"))
    assert done["status"] == "FAILED", done.get("output")
    assert done["error"] == "States.Runtime"
    assert "The Lambda function returned a result that is not valid JSON here" in done["cause"]
    assert "output" not in done


def test_a_lambda_result_with_big_but_finite_numbers_still_succeeds(
    sfn, settings: Settings, tmp_path: Path
) -> None:
    _register(settings, tmp_path, "big", 'b"[1e308, 123456789012345678901234567890]"')
    done = _run(sfn, _lambda_invoke("big"))
    assert done["status"] == "SUCCEEDED"
    output = json.loads(done["output"], parse_constant=pytest.fail)
    assert output["Payload"] == [1e308, 123456789012345678901234567890]


def _intrinsic(expression: str) -> dict:
    return {"StartAt": "P", "States": {"P": {"Type": "Pass", "Parameters": {"r.$": expression}, "End": True}}}


@pytest.mark.parametrize(
    ("expression", "data"),
    [
        ("States.MathRandom($.a, $.b)", {"a": 10, "b": 5}),  # start > end
        ("States.MathRandom($.a, $.b)", {"a": 7, "b": 7}),  # [7, 7) holds no integer
        ("States.MathRandom($.a, $.b, 3)", {"a": 10, "b": 1}),
        ("States.MathAdd($.a, $.b)", {"a": 2147483648, "b": 0}),
        ("States.MathAdd($.a, $.b)", {"a": 1, "b": -2147483649}),
        ("States.MathAdd($.a, $.b)", {"a": 1e12, "b": 1}),
    ],
)
def test_math_intrinsics_outside_their_documented_range_fail(sfn, expression: str, data: dict) -> None:
    done = _run(sfn, _intrinsic(expression), data)
    assert (done["status"], done["error"]) == ("FAILED", "States.IntrinsicFailure")


@pytest.mark.parametrize(
    ("expression", "data", "check"),
    [
        ("States.MathAdd($.a, $.b)", {"a": 2147483647, "b": -2147483648}, lambda r: r == -1),
        ("States.MathAdd($.a, $.b)", {"a": 2147483647.4, "b": 0}, lambda r: r == 2147483647),
        ("States.MathRandom($.a, $.b)", {"a": 5, "b": 6}, lambda r: r == 5),  # end exclusive
        ("States.MathRandom($.a, $.b)", {"a": 0.6, "b": 1.6}, lambda r: r == 1),  # rounded: [1, 2)
        ("States.MathRandom($.a, $.b, 7)", {"a": -3, "b": 3}, lambda r: -3 <= r < 3),
    ],
)
def test_math_intrinsics_inside_their_range(sfn, expression: str, data: dict, check) -> None:
    done = _run(sfn, _intrinsic(expression), data)
    assert done["status"] == "SUCCEEDED", done.get("cause")
    assert check(json.loads(done["output"])["r"])
