"""Invoke semantics seen through a real boto3 ``lambda`` client against the in-process gateway.

Logs that a timeout or a crash must keep, the sandbox's child processes, what Event invocations get
(no ClientContext, no throttling away), and the REPORT line of a cold worker that died.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from sconeflow.config import Settings
from sconeflow.gateway.server import InProcessGateway
from sconeflow.lambda_runtime.logs import LogStore
from tests.gateway.support import register_code

CHATTY = """
import logging, os, sys, time
print("init says hello")
def handler(event, context):
    print("working on", event["action"])
    logging.getLogger().warning("halfway")
    if event["action"] == "sleep":
        time.sleep(30)
    if event["action"] == "exit":
        sys.stdout.flush()
        os._exit(7)
    return "done"
"""

SPAWNER = """
import subprocess, sys, time
def handler(event, context):
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    with open(event["pidfile"], "w") as handle:
        handle.write(str(child.pid))
    if event.get("sleep"):
        time.sleep(30)
    return child.pid
"""

RECORDER = """
import json, time
def handler(event, context):
    time.sleep(event.get("sleep", 0))
    seen = None
    if context.client_context is not None:
        seen = context.client_context.custom
    with open(event["out"], "a") as handle:
        handle.write(json.dumps({"n": event.get("n"), "client_context": seen}) + "\\n")
    return "ok"
"""


def _tail(response: dict[str, Any]) -> str:
    return base64.b64decode(response["LogResult"]).decode("utf-8")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie (killed, not yet reaped by its new parent) counts as gone
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _wait_gone(pid: int, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("action", ["sleep", "exit"])
def test_output_before_a_timeout_or_a_crash_is_in_the_log(
    lam: Any, settings: Settings, tmp_path: Path, action: str
) -> None:
    # AWS's log of a timed-out or crashed invocation keeps what the handler printed before it
    register_code(settings, tmp_path, "chatty", CHATTY, timeout=1)
    response = lam.invoke(
        FunctionName="chatty", Payload=json.dumps({"action": action}).encode(), LogType="Tail"
    )
    assert response["FunctionError"] == "Unhandled"
    error = json.loads(response["Payload"].read())
    assert error["errorType"] == ("Sandbox.Timedout" if action == "sleep" else "Runtime.ExitError")
    tail = _tail(response)
    assert "init says hello" in tail
    assert f"working on {action}" in tail
    assert "\thalfway" in tail
    lines = tail.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("START RequestId:"))
    said = next(i for i, line in enumerate(lines) if line == f"working on {action}")
    end = next(i for i, line in enumerate(lines) if line.startswith("END RequestId:"))
    assert start < said < end
    if action == "sleep":
        assert "Task timed out after 1.00 seconds" in lines[end - 1]
    # the stored log (sconeflow lambda logs) has it too, and the next invocation is clean
    request_id = response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    (stored,) = LogStore(settings).read("chatty", request_id=request_id)
    assert f"working on {action}" in stored.text
    again = lam.invoke(FunctionName="chatty", Payload=b'{"action": "ok"}', LogType="Tail")
    assert json.loads(again["Payload"].read()) == "done"
    again_tail = _tail(again)
    assert "working on ok" in again_tail and f"working on {action}" not in again_tail


def test_a_cold_worker_that_dies_reports_its_memory(lam: Any, settings: Settings, tmp_path: Path) -> None:
    register_code(settings, tmp_path, "chatty", CHATTY, timeout=1)
    response = lam.invoke(FunctionName="chatty", Payload=b'{"action": "exit"}', LogType="Tail")
    report = next(line for line in _tail(response).splitlines() if line.startswith("REPORT"))
    assert "Init Duration:" in report
    assert "Max Memory Used: 0 MB" not in report


@pytest.mark.parametrize("how", ["timeout", "recycled"])
def test_processes_a_handler_started_die_with_its_sandbox(
    lam: Any, settings: Settings, tmp_path: Path, gateway: InProcessGateway, how: str
) -> None:
    register_code(settings, tmp_path, "spawner", SPAWNER, timeout=1)
    pidfile = tmp_path / "child.pid"
    event = {"pidfile": str(pidfile), "sleep": how == "timeout"}
    try:
        response = lam.invoke(FunctionName="spawner", Payload=json.dumps(event).encode())
        child = int(pidfile.read_text())
        if how == "timeout":
            assert json.loads(response["Payload"].read())["errorType"] == "Sandbox.Timedout"
        else:
            assert json.loads(response["Payload"].read()) == child
            # a configuration change retires the warm worker, as Lambda retires the sandbox
            lam.update_function_configuration(FunctionName="spawner", Environment={"Variables": {"X": "1"}})
            lam.invoke(FunctionName="spawner", Payload=json.dumps({"pidfile": str(tmp_path / "b")}).encode())
            os.kill(int((tmp_path / "b").read_text()), signal.SIGKILL)
        assert _wait_gone(child), f"the handler's child {child} outlived its worker"
    finally:
        for name in ("child.pid", "b"):
            try:
                os.kill(int((tmp_path / name).read_text()), signal.SIGKILL)
            except (FileNotFoundError, ProcessLookupError, ValueError):
                pass


def _records(path: Path, count: int, seconds: float = 15.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if path.exists():
            lines = path.read_text().splitlines()
            if len(lines) >= count:
                return [json.loads(line) for line in lines]
        time.sleep(0.05)
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_event_invocations_get_no_client_context(lam: Any, settings: Settings, tmp_path: Path) -> None:
    # "Lambda passes the ClientContext object to your function for synchronous invocations only."
    register_code(settings, tmp_path, "recorder", RECORDER, timeout=3)
    out = tmp_path / "seen.jsonl"
    context = base64.b64encode(json.dumps({"custom": {"k": "v"}}).encode()).decode()
    sync = lam.invoke(
        FunctionName="recorder", Payload=json.dumps({"out": str(out), "n": 1}).encode(), ClientContext=context
    )
    assert sync["StatusCode"] == 200 and "FunctionError" not in sync
    event = lam.invoke(
        FunctionName="recorder",
        InvocationType="Event",
        Payload=json.dumps({"out": str(out), "n": 2}).encode(),
        ClientContext=context,
    )
    assert event["StatusCode"] == 202
    records = _records(out, 2)
    assert records == [{"n": 1, "client_context": {"k": "v"}}, {"n": 2, "client_context": None}]


def test_event_invocations_wait_for_a_busy_function_instead_of_being_dropped(
    lam: Any, settings: Settings, tmp_path: Path
) -> None:
    # Lambda queues asynchronous events and retries throttled ones; none is lost because the
    # function's only worker stayed busy longer than its timeout
    register_code(settings, tmp_path, "recorder", RECORDER, timeout=1, concurrency=1)
    out = tmp_path / "seen.jsonl"
    for n in range(4):
        payload = json.dumps({"out": str(out), "n": n, "sleep": 0.6}).encode()
        response = lam.invoke(FunctionName="recorder", InvocationType="Event", Payload=payload)
        assert response["StatusCode"] == 202
    records = _records(out, 4)
    assert sorted(r["n"] for r in records) == [0, 1, 2, 3]


LATE = """
import threading, time
def handler(event, context):
    if event.get("spawn"):
        threading.Thread(target=lambda: (time.sleep(0.2), print("late from a thread"))).start()
    print("call", event.get("n"))
    return "ok"
"""


def test_output_of_a_background_thread_lands_in_the_next_invocations_log(
    lam: Any, settings: Settings, tmp_path: Path
) -> None:
    register_code(settings, tmp_path, "late", LATE, timeout=3, concurrency=1)
    first = lam.invoke(FunctionName="late", Payload=b'{"spawn": true, "n": 1}', LogType="Tail")
    assert "call 1" in _tail(first) and "late from a thread" not in _tail(first)
    time.sleep(0.6)
    second = _tail(lam.invoke(FunctionName="late", Payload=b'{"n": 2}', LogType="Tail"))
    assert "late from a thread" in second and "call 2" in second and "call 1" not in second
    third = _tail(lam.invoke(FunctionName="late", Payload=b'{"n": 3}', LogType="Tail"))
    assert "late from a thread" not in third and "call 2" not in third and "call 3" in third
