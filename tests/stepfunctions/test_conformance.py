"""Run every case of ../shared/asl-conformance (937 executions recorded on real AWS) through the engine.

Lambdas are simulated as data (the README's behaviour list) by an Integrations that stands in for AWS
Lambda; time is virtual. Status, output, error and cause are compared (snapshot placeholders are
wildcards), and the event-type list where one was recorded. Cases that cannot pass are listed with a
reason in ``conformance_known_failures.txt``; an unlisted failure fails the test, and a listed case that
passes is reported.

Run ``python tests/stepfunctions/test_conformance.py [-v] [name-substring]`` for a detailed report.
"""

from __future__ import annotations

import json
import re
import sys
import threading
import uuid
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from sconeflow.stepfunctions.engine import (
    ExecutionContext,
    LambdaResponse,
    VirtualClock,
    run_execution,
)
from sconeflow.stepfunctions.errors import LambdaFunctionNotFound
from sconeflow.stepfunctions.parser import parse_definition

CASES_DIR = Path(__file__).resolve().parents[3] / "shared" / "asl-conformance" / "cases"
KNOWN_FAILURES = Path(__file__).with_name("conformance_known_failures.txt")
JSONPATH_CATEGORIES_TARGET = 1.0
OVERALL_TARGET = 0.95

ACCOUNT = "111111111111"
REGION = "us-east-1"
SM_NAME = "sfn-conformance-machine"
EXEC_NAME = "sfn-conformance-execution"


def _stack_trace(error_type: str, message: str) -> list[str]:
    if error_type == "Exception":
        return [f'  File "/var/task/handler.py", line 2, in handler\n    raise Exception("{message}")\n']
    return [f'  File "/var/task/handler.py", line 9, in handler\n    raise {error_type}()\n']


class SimulatedLambdas:
    """Lambda functions described as data in a case (stands in for AWS Lambda)."""

    def __init__(self, lambdas: dict[str, dict], clock: VirtualClock) -> None:
        self.lambdas = lambdas
        self.clock = clock

    def invoke_lambda(
        self,
        function_name: str,
        payload: bytes,
        *,
        qualifier: str | None = None,
        invocation_type: str = "RequestResponse",
    ) -> LambdaResponse:
        spec = self.lambdas.get(function_name)
        if spec is None:
            raise LambdaFunctionNotFound(function_name)
        request_id = str(uuid.uuid4())
        behavior = spec["behavior"]
        event = json.loads(payload) if payload else None
        if behavior == "identity":
            body = json.dumps(event).encode()
        elif behavior == "constant":
            body = json.dumps(spec.get("returns", {"Return": "HelloWorld"})).encode()
        elif behavior == "raise":
            error = {
                "errorMessage": spec.get("errorMessage", ""),
                "errorType": spec.get("errorType", "Exception"),
                "requestId": request_id,
                "stackTrace": _stack_trace(spec.get("errorType", "Exception"), spec.get("errorMessage", "")),
            }
            return LambdaResponse(json.dumps(error).encode(), "Unhandled", request_id=request_id)
        elif behavior == "return_bytes":
            body = spec["returns_python_bytes"].encode()
        elif behavior == "python_format":
            body = json.dumps("input-event-" + str(event)).encode()
        elif behavior == "sleep_then_identity":
            self.clock.sleep(spec.get("sleep_seconds", 60))
            body = json.dumps(event).encode()
        elif behavior == "large_output":
            body = b"a" * spec.get("returns_bytes_len", 263168)
        else:
            raise AssertionError(f"unknown behaviour {behavior}")
        return LambdaResponse(body, None, request_id=request_id)

    def publish_sns(
        self,
        topic_arn: str,
        message: str,
        *,
        subject: str | None = None,
        message_attributes: dict | None = None,
    ) -> str:
        return str(uuid.uuid4())


# --- comparison with placeholders ---------------------------------------------------------------

_TOKEN_RE = re.compile(r"<[A-Za-z_\-]+(?::\d+)?>|<[A-Za-z]+_0idx>|arn:<partition>:")
_UUID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def _string_matches(expected: str, actual: str, placeholders: set[str]) -> bool:
    """Equal, or equal once the case's own placeholders (and only those) are taken as wildcards."""
    if expected == actual or expected in placeholders:
        return True
    pattern = ""
    pos = 0
    for m in _TOKEN_RE.finditer(expected):
        token = m.group(0)
        if token not in placeholders:
            continue
        pattern += re.escape(expected[pos : m.start()])
        if token == "arn:<partition>:":
            pattern += "arn:aws[a-z-]*:"
        elif token.startswith("<uuid:"):
            pattern += _UUID
        else:
            pattern += "(.+?)"
        pos = m.end()
    if not pos:
        return False
    pattern += re.escape(expected[pos:])
    return re.fullmatch(pattern, actual, re.DOTALL) is not None


def matches(expected: Any, actual: Any, placeholders: set[str]) -> bool:
    if isinstance(expected, str):
        if expected in placeholders:
            if expected == "RandomNumberGenerated":
                return isinstance(actual, int | float) and not isinstance(actual, bool)
            return True
        return isinstance(actual, str) and _string_matches(expected, actual, placeholders)
    if isinstance(expected, bool) or isinstance(actual, bool):
        return expected is actual
    if isinstance(expected, int | float) and isinstance(actual, int | float):
        return expected == actual
    if isinstance(expected, dict):
        return (
            isinstance(actual, dict)
            and set(expected) == set(actual)
            and all(matches(expected[k], actual[k], placeholders) for k in expected)
        )
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(expected) == len(actual)
            and all(matches(e, a, placeholders) for e, a in zip(expected, actual, strict=True))
        )
    return expected == actual


def run_case(case: dict) -> tuple[bool, str]:
    """Run one case; return (passed, reason)."""
    clock = VirtualClock(datetime(2025, 1, 1, tzinfo=UTC))
    integrations = SimulatedLambdas(case.get("lambdas") or {}, clock)
    context = ExecutionContext(
        execution_arn=f"arn:aws:states:{REGION}:{ACCOUNT}:execution:{SM_NAME}:{EXEC_NAME}",
        execution_name=EXEC_NAME,
        state_machine_arn=f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{SM_NAME}",
        state_machine_name=SM_NAME,
        role_arn=f"arn:aws:iam::{ACCOUNT}:role/sfn-role",
        start_time=clock.now(),
    )
    try:
        machine = parse_definition(json.dumps(case["definition"]))
    except Exception as exc:  # a rejected definition is a failure with a reason
        return False, f"definition rejected: {exc}"
    result = run_execution(
        machine, json.dumps(case["input"]), context, integrations, cancel=threading.Event(), clock=clock
    )
    expected = case["expected"]
    placeholders = set(expected.get("placeholders") or [])
    if result.status != expected["status"]:
        return False, f"status {result.status} != {expected['status']} ({result.error}: {result.cause})"
    if expected["status"] == "SUCCEEDED":
        actual_output = json.loads(result.output) if result.output is not None else None
        if not matches(expected.get("output"), actual_output, placeholders):
            return (
                False,
                f"output {(result.output or '')[:300]} != {json.dumps(expected.get('output'))[:300]}",
            )
    else:
        if expected.get("error") != result.error:
            return False, f"error {result.error!r} != {expected.get('error')!r} (cause {result.cause})"
        if "cause_json" in expected:
            try:
                actual_cause = json.loads(result.cause or "")
            except ValueError:
                return False, f"cause not JSON: {result.cause}"
            if not matches(expected["cause_json"], actual_cause, placeholders):
                return False, f"cause {result.cause} != {json.dumps(expected['cause_json'])}"
        elif expected.get("cause") is None:
            if result.cause not in (None, ""):
                return False, f"cause {result.cause!r} != None"
        elif result.cause is None or not _string_matches(expected["cause"], result.cause, placeholders):
            return False, f"cause {result.cause!r} != {expected['cause']!r}"
    if "events" in expected:
        actual_types = [e["type"] for e in result.events]
        want = expected["events"]
        sorted_note = any("sorted" in n or "normalised" in n for n in case.get("notes") or [])
        if sorted_note:
            # The recording sorted (and, when nested, merged) the events inside the Parallel block:
            # compare them as a multiset, or else compare the order outside the block (README).
            if Counter(actual_types) != Counter(want) and _outside_parallel(
                actual_types
            ) != _outside_parallel(want):
                return False, f"events {actual_types} != {want}"
        elif actual_types != want:
            return False, f"events {actual_types} != {want}"
    return True, ""


def _outside_parallel(types: list[str]) -> tuple[list[str], list[str]]:
    """Events before the first ParallelStateStarted and from the last Parallel exit/failure on."""
    if "ParallelStateStarted" not in types:
        return types, []
    start = types.index("ParallelStateStarted") + 1
    ends = [i for i, t in enumerate(types) if t in ("ParallelStateExited", "ParallelStateFailed")]
    return types[:start], types[ends[-1] :] if ends else []


def load_cases() -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(CASES_DIR.glob("*/*.json"))]


def load_known_failures() -> dict[str, str]:
    known: dict[str, str] = {}
    if KNOWN_FAILURES.is_file():
        for line in KNOWN_FAILURES.read_text().splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            name, _, reason = line.partition(" ")
            known[name] = reason.strip()
    return known


def run_all(cases: list[dict]) -> tuple[dict[str, tuple[bool, str]], str]:
    results: dict[str, tuple[bool, str]] = {}
    for case in cases:
        key = f"{case['category']}/{case['name']}"
        try:
            results[key] = run_case(case)
        except Exception as exc:  # an engine crash is a failure, reported with its type
            results[key] = (False, f"crash {type(exc).__name__}: {exc}")
    by_cat: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    by_ql: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for case in cases:
        key = f"{case['category']}/{case['name']}"
        ok = results[key][0]
        for table, label in ((by_cat, case["category"]), (by_ql, case["query_language"])):
            table[label][0] += ok
            table[label][1] += 1
    lines = ["ASL conformance (real-AWS recordings): pass rate by category"]
    for label, (ok, total) in sorted(by_cat.items()):
        lines.append(f"  {label:22s} {ok:4d}/{total:<4d} {100.0 * ok / total:6.1f}%")
    for label, (ok, total) in sorted(by_ql.items()):
        lines.append(f"  [{label}] {ok}/{total} {100.0 * ok / total:.1f}%")
    passed = sum(1 for ok, _ in results.values() if ok)
    lines.append(f"  TOTAL {passed}/{len(results)} {100.0 * passed / max(len(results), 1):.1f}%")
    return results, "\n".join(lines)


@pytest.mark.needs_shared
def test_conformance_corpus(capsys: pytest.CaptureFixture[str]) -> None:
    if not CASES_DIR.is_dir():
        pytest.skip(f"the conformance corpus is absent ({CASES_DIR})")
    cases = load_cases()
    results, summary = run_all(cases)
    known = load_known_failures()
    with capsys.disabled():
        print("\n" + summary)
    unexpected = {k: r for k, (ok, r) in results.items() if not ok and k not in known}
    newly_passing = sorted(k for k in known if results.get(k, (False, ""))[0])
    if newly_passing:
        with capsys.disabled():
            print(
                f"  {len(newly_passing)} known failure(s) now pass; remove them from "
                f"{KNOWN_FAILURES.name}: {newly_passing}"
            )
    assert not unexpected, "unlisted conformance failures:\n" + "\n".join(
        f"{k}: {r}" for k, r in sorted(unexpected.items())
    )
    jsonpath = [f"{c['category']}/{c['name']}" for c in cases if c["query_language"] == "JSONPath"]
    jsonpath_ok = sum(1 for key in jsonpath if results[key][0])
    assert jsonpath_ok / len(jsonpath) >= JSONPATH_CATEGORIES_TARGET, "every JSONPath case must pass"
    total_ok = sum(1 for ok, _ in results.values() if ok)
    assert total_ok / len(results) >= OVERALL_TARGET


if __name__ == "__main__":
    verbose = "-v" in sys.argv
    filters = [a for a in sys.argv[1:] if a != "-v"]
    all_cases = load_cases()
    if filters:
        all_cases = [c for c in all_cases if any(f in f"{c['category']}/{c['name']}" for f in filters)]
    res, text = run_all(all_cases)
    known_failures = load_known_failures()
    for k, (ok, reason) in sorted(res.items()):
        if not ok and (verbose or k not in known_failures):
            print(f"FAIL {k}: {reason[:600]}")
    print(text)
