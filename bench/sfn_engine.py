"""Overhead of the ASL engine per state transition, and executions/s of the 3-step Scones workflow.

    python bench/sfn_engine.py [--n 1000] [--runs 200]

Measures, with a virtual clock and an in-process Integrations (no Lambda runtime, no database):
  * a chain of N Pass states (N transitions, each with its Entered/Exited history events);
  * a Map over N items whose iteration is one Pass state;
  * the Scones workflow shape (serialize -> classify -> filter, each an ``arn:aws:states:::lambda:invoke``
    Task with ``"Payload.$": "$"``, ``OutputPath: $.Payload`` and the console Retry) with echo Lambdas.
Next to a baseline measured in the same process: a plain Python loop doing one ``json.dumps`` +
``json.loads`` round trip of the same payload per step (what any interpreter must at least do to
record a state's input and output). Target: < 0.2 ms per transition.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

from sconeflow.stepfunctions.engine import (
    ExecutionContext,
    LambdaResponse,
    VirtualClock,
    run_execution,
)
from sconeflow.stepfunctions.parser import parse_definition

PAYLOAD = {
    "s3_bucket": "sconeflow-default",
    "s3_key": "test/bicycle_s_000513.png",
    "image_data": "iVBORw0KGgo" * 8,
    "inferences": [0.97, 0.03],
}
CONTEXT = ExecutionContext(
    execution_arn="arn:aws:states:us-east-1:123456789012:execution:bench:run",
    execution_name="run",
    state_machine_arn="arn:aws:states:us-east-1:123456789012:stateMachine:bench",
    state_machine_name="bench",
)
RETRY = [
    {
        "ErrorEquals": [
            "Lambda.ServiceException",
            "Lambda.AWSLambdaException",
            "Lambda.SdkClientException",
            "Lambda.TooManyRequestsException",
        ],
        "IntervalSeconds": 1,
        "MaxAttempts": 3,
        "BackoffRate": 2,
    }
]


class EchoLambdas:
    """In-process echo functions: the response payload is the request payload."""

    def invoke_lambda(
        self,
        function_name: str,
        payload: bytes,
        *,
        qualifier: str | None = None,
        invocation_type: str = "RequestResponse",
    ) -> LambdaResponse:
        return LambdaResponse(payload, request_id="00000000-0000-0000-0000-000000000000")

    def publish_sns(
        self,
        topic_arn: str,
        message: str,
        *,
        subject: str | None = None,
        message_attributes: dict | None = None,
    ) -> str:
        return "m"


def chain_definition(n: int) -> dict:
    states = {f"S{i}": {"Type": "Pass", "Next": f"S{i + 1}"} for i in range(n - 1)}
    states[f"S{n - 1}"] = {"Type": "Pass", "End": True}
    return {"StartAt": "S0", "States": states}


def map_definition() -> dict:
    return {
        "StartAt": "M",
        "States": {
            "M": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}},
                "End": True,
            }
        },
    }


def scones_definition() -> dict:
    def task(fn: str, nxt: str | None) -> dict:
        body = {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "OutputPath": "$.Payload",
            "Parameters": {
                "FunctionName": f"arn:aws:lambda:us-east-1:123456789012:function:{fn}:$LATEST",
                "Payload.$": "$",
            },
            "Retry": RETRY,
        }
        body.update({"Next": nxt} if nxt else {"End": True})
        return body

    return {
        "StartAt": "Serialize",
        "States": {
            "Serialize": task("serializeImageData", "Classify"),
            "Classify": task("classifyImage", "Filter"),
            "Filter": task("filterInferences", None),
        },
    }


def best_of(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def baseline_per_step(n: int) -> float:
    """Seconds per step of a plain loop: one JSON round trip of the payload (input and output text)."""

    def loop() -> None:
        data = PAYLOAD
        for _ in range(n):
            data = json.loads(json.dumps(data, separators=(",", ":")))

    return best_of(loop, 5) / n


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=1000, help="Pass states in the chain / Map items")
    parser.add_argument("--runs", type=int, default=200, help="executions of the 3-step workflow")
    args = parser.parse_args()
    n = args.n
    lambdas = EchoLambdas()
    input_text = json.dumps(PAYLOAD)
    base = baseline_per_step(n)

    chain = parse_definition(chain_definition(n))
    chain_s = best_of(lambda: run_execution(chain, input_text, CONTEXT, lambdas, clock=VirtualClock()), 3)
    chain_per = chain_s / n

    mapm = parse_definition(map_definition())
    map_input = json.dumps({"items": [PAYLOAD] * n})
    map_s = best_of(lambda: run_execution(mapm, map_input, CONTEXT, lambdas, clock=VirtualClock()), 3)
    map_per = map_s / n

    scones = parse_definition(scones_definition())
    samples = []
    for _ in range(args.runs):
        start = time.perf_counter()
        result = run_execution(scones, input_text, CONTEXT, lambdas, clock=VirtualClock())
        samples.append(time.perf_counter() - start)
    assert result.status == "SUCCEEDED", result
    per_exec = statistics.median(samples)

    print(f"baseline: JSON round trip of the payload per step: {base * 1e3:.4f} ms")
    print(
        f"chain of {n} Pass states: {chain_s * 1e3:.1f} ms total, {chain_per * 1e3:.4f} ms per transition "
        f"({chain_per / base:.1f}x baseline)"
    )
    print(
        f"Map over {n} items (1 Pass each): {map_s * 1e3:.1f} ms total, {map_per * 1e3:.4f} ms per item "
        f"({map_per / base:.1f}x baseline)"
    )
    print(
        f"3-step Scones workflow, echo Lambdas in process: median {per_exec * 1e3:.3f} ms per execution, "
        f"{1 / per_exec:.0f} executions/s ({per_exec / 3 * 1e3:.4f} ms per Task transition, "
        f"{per_exec / 3 / base:.1f}x baseline)"
    )
    target = 0.2e-3
    verdict = "OK" if max(chain_per, map_per) < target else "OVER TARGET"
    print(f"target < 0.2 ms per transition: {verdict}")


if __name__ == "__main__":
    main()
