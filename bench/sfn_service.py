"""Benchmark the Step Functions SERVICE layer: what persistence and threads cost on top of the engine.

Baseline, measured in the same process: the bare engine (``run_execution`` with no listener, no
database) on the same definitions. Then the service (``StepFunctionsService.run_to_end``: execution row,
buffered history events in SQLite WAL, heartbeat thread, final write) and, for the 3-step workflow,
background executions started together (``start_execution`` + ``wait``). Lambdas are in-process echo
functions, so the numbers are the service's own overhead, not Lambda start-up.

    python bench/sfn_service.py [--executions N] [--chain N]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from sconeflow.config import load_settings
from sconeflow.stepfunctions.engine import ExecutionContext, LambdaResponse, parse_definition, run_execution
from sconeflow.stepfunctions.service import StepFunctionsService

WORKFLOW = Path(__file__).resolve().parents[1] / "workflow" / "step-function.json"


class Echo:
    def invoke_lambda(self, function_name, payload, *, qualifier=None, invocation_type="RequestResponse"):
        event = json.loads(payload)
        return LambdaResponse(
            json.dumps({"statusCode": 200, "body": {**event, "inferences": [0.99, 0.01]}}).encode()
        )

    def publish_sns(self, topic_arn, message, *, subject=None, message_attributes=None):
        return "id"


def chain(n: int) -> str:
    states = {f"S{i}": {"Type": "Pass", "Next": f"S{i + 1}"} for i in range(n - 1)}
    states[f"S{n - 1}"] = {"Type": "Pass", "End": True}
    return json.dumps({"StartAt": "S0", "States": states})


def bare(definition: str, runs: int, input_text: str) -> float:
    machine = parse_definition(definition)
    began = time.perf_counter()
    for i in range(runs):
        ctx = ExecutionContext(
            f"arn:aws:states:us-east-1:1:execution:m:{i}",
            str(i),
            "arn:aws:states:us-east-1:1:stateMachine:m",
            "m",
        )
        result = run_execution(machine, input_text, ctx, Echo())
        assert result.status == "SUCCEEDED", result
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--executions", type=int, default=200)
    parser.add_argument("--chain", type=int, default=1000)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="sfn-bench-"))
    settings = load_settings(home)
    settings.ensure_dirs()
    echo = Echo()
    service = StepFunctionsService(settings, integrations=lambda machine: echo)
    workflow = WORKFLOW.read_text()
    service.create_state_machine("workflow", workflow)
    service.create_state_machine("chain", chain(args.chain))
    image = json.dumps({"s3_bucket": "sconeflow-default", "s3_key": "test/bicycle_s_000001.png"})

    n = args.executions
    bare(workflow, 5, image)  # warm-up
    t_bare = bare(workflow, n, image)
    began = time.perf_counter()
    for i in range(n):
        assert service.run_to_end("workflow", image, name=f"seq-{i}").status == "SUCCEEDED"
    t_service = time.perf_counter() - began
    began = time.perf_counter()
    started = [service.start_execution("workflow", image, name=f"bg-{i}") for i in range(n)]
    for record in started:
        assert service.wait(record.arn, timeout=120).status == "SUCCEEDED"
    t_background = time.perf_counter() - began
    print(f"3-step workflow, echo Lambdas, {n} executions")
    print(f"  bare engine (baseline)        {n / t_bare:8.1f} executions/s  {t_bare / n * 1000:7.2f} ms each")
    print(
        f"  service, run_to_end           {n / t_service:8.1f} executions/s  "
        f"{t_service / n * 1000:7.2f} ms each  ({t_service / t_bare:.2f}x the baseline)"
    )
    print(
        f"  service, {n} started at once  {n / t_background:8.1f} executions/s  "
        f"({t_background / t_bare:.2f}x the baseline)"
    )

    t_chain_bare = bare(chain(args.chain), 1, "{}")
    began = time.perf_counter()
    record = service.run_to_end("chain", "{}", name="chain-1")
    t_chain = time.perf_counter() - began
    events = len(service.history(record.arn)[1])
    transitions = args.chain
    print(f"chain of {transitions} Pass states ({events} history events stored)")
    print(f"  bare engine (baseline)        {t_chain_bare / transitions * 1000:7.3f} ms per transition")
    print(
        f"  service                       {t_chain / transitions * 1000:7.3f} ms per transition"
        f"  ({t_chain / t_chain_bare:.2f}x the baseline)"
    )


if __name__ == "__main__":
    main()
