"""The Step Functions service layer: persistence, background executions, stop, dead-runner detection."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from sconeflow.config import Settings
from sconeflow.stepfunctions.errors import InvalidDefinition
from sconeflow.stepfunctions.executions import (
    ExecutionAlreadyExists,
    ExecutionDoesNotExist,
    ExecutionStore,
    StateMachineAlreadyExists,
    StateMachineDoesNotExist,
)
from sconeflow.stepfunctions.service import (
    InvalidExecutionInput,
    InvalidName,
    StateMachineTypeNotSupported,
    StepFunctionsService,
)

from .sfn_helpers import (
    LAMBDA_TASK,
    PASS_CHAIN,
    WAIT_LONG,
    PythonIntegrations,
    dumps,
    sconeflow_cli,
    wait_for,
)


def _service(settings: Settings, **functions) -> StepFunctionsService:
    integrations = PythonIntegrations(functions or {"echo": lambda event: {"echo": event}})
    return StepFunctionsService(settings, integrations=lambda machine: integrations)


def test_create_describe_list_and_revisions(settings: Settings) -> None:
    service = _service(settings)
    machine = service.create_state_machine("chain", dumps(PASS_CHAIN))
    assert machine.arn == "arn:aws:states:us-east-1:123456789012:stateMachine:chain"
    assert machine.revision == 1 and machine.type == "STANDARD"
    # same definition again: idempotent, like AWS
    assert service.create_state_machine("chain", dumps(PASS_CHAIN)).revision_id == machine.revision_id
    changed = dict(PASS_CHAIN, Comment="changed")
    with pytest.raises(StateMachineAlreadyExists):
        service.create_state_machine("chain", dumps(changed))
    updated = service.create_state_machine("chain", dumps(changed), update=True)
    assert updated.revision == 2 and json.loads(updated.definition)["Comment"] == "changed"
    assert [r[0] for r in service.store.list_revisions("chain")] == [1, 2]
    assert service.store.get_machine_revision("chain", 1).definition == dumps(PASS_CHAIN)
    assert [m.name for m in service.list_state_machines()] == ["chain"]
    assert service.describe_state_machine(machine.arn).name == "chain"


def test_bad_machines_are_refused_with_named_errors(settings: Settings) -> None:
    service = _service(settings)
    with pytest.raises(InvalidName):
        service.create_state_machine("has space", dumps(PASS_CHAIN))
    broken = {"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "Missing"}}}
    with pytest.raises(InvalidDefinition) as info:
        service.create_state_machine("broken", dumps(broken))
    assert info.value.diagnostics
    with pytest.raises(StateMachineDoesNotExist):
        service.describe_state_machine("nope")
    with pytest.raises(StateMachineDoesNotExist):
        service.start_execution("nope", "{}")
    assert service.list_state_machines() == []


def test_run_to_end_persists_status_output_and_history(settings: Settings) -> None:
    service = _service(settings)
    service.create_state_machine("chain", dumps(PASS_CHAIN))
    record = service.run_to_end("chain", '{"a": 1,\n "b": [1, 2]}', name="first")
    assert record.status == "SUCCEEDED"
    assert json.loads(record.output) == {"a": 1, "b": [1, 2], "first": {"step": 1}}
    assert record.input == '{"a": 1,\n "b": [1, 2]}'  # verbatim
    assert record.stop_date is not None and record.stop_date >= record.start_date
    # a fresh store (another process would see the same) reads it back
    again = ExecutionStore(settings).get_execution(record.arn)
    assert again.status == "SUCCEEDED" and again.output == record.output
    _, events = service.history("first")
    types = [e["type"] for e in events]
    assert types[0] == "ExecutionStarted" and types[-1] == "ExecutionSucceeded"
    assert "PassStateEntered" in types and "PassStateExited" in types
    assert [e["id"] for e in events] == list(range(1, len(events) + 1))
    assert events[0]["previousEventId"] == 0
    assert events[0]["executionStartedEventDetails"]["input"] == record.input


def test_lambda_task_through_integrations_and_failure(settings: Settings) -> None:
    def boom(event):
        raise ValueError("no good")

    service = _service(settings, echo=lambda e: {"echo": e}, boom=boom)
    service.create_state_machine("call", dumps(LAMBDA_TASK))
    ok = service.run_to_end("call", '{"x": 1}')
    assert ok.status == "SUCCEEDED" and json.loads(ok.output) == {"echo": {"x": 1}}
    failing = json.loads(dumps(LAMBDA_TASK).replace("function:echo", "function:boom"))
    service.create_state_machine("fails", dumps(failing))
    bad = service.run_to_end("fails", "{}")
    assert bad.status == "FAILED" and bad.error == "ValueError"
    assert json.loads(bad.cause)["errorMessage"] == "no good"
    _, events = service.history(bad.arn)
    assert [e["type"] for e in events][-2:] == ["TaskFailed", "ExecutionFailed"]


def test_execution_names_and_inputs_are_checked(settings: Settings) -> None:
    service = _service(settings)
    service.create_state_machine("chain", dumps(PASS_CHAIN))
    with pytest.raises(InvalidExecutionInput):
        service.start_execution("chain", "{not json")
    with pytest.raises(InvalidExecutionInput):
        service.start_execution("chain", json.dumps({"x": "a" * 300_000}))
    with pytest.raises(InvalidName):
        service.start_execution("chain", "{}", name="bad/name")
    service.run_to_end("chain", "{}", name="once")
    with pytest.raises(ExecutionAlreadyExists):
        service.run_to_end("chain", "{}", name="once")
    with pytest.raises(ExecutionDoesNotExist):
        service.describe_execution("never-ran")
    with pytest.raises(StateMachineTypeNotSupported):
        service.start_sync_execution("chain", "{}")
    assert [r.name for r in service.list_executions("chain")] == ["once"]


def test_background_execution_and_wait(settings: Settings) -> None:
    service = _service(settings)
    service.create_state_machine("chain", dumps(PASS_CHAIN))
    started = service.start_execution("chain", "{}", name="bg")
    assert started.status == "RUNNING"
    done = service.wait("bg", timeout=30)
    assert done.status == "SUCCEEDED"


def test_stop_aborts_a_running_execution_in_this_process(settings: Settings) -> None:
    service = _service(settings)
    service.create_state_machine("hold", dumps(WAIT_LONG))
    service.start_execution("hold", "{}", name="held")
    wait_for(lambda: any(e["type"] == "WaitStateEntered" for e in service.history("held")[1]), timeout=10)
    began = time.monotonic()
    stopped = service.stop_execution("held", error="Manual", cause="stopped by the test")
    assert time.monotonic() - began < 5
    assert stopped.status == "ABORTED"
    assert (stopped.error, stopped.cause) == ("Manual", "stopped by the test")
    _, events = service.history("held")
    assert events[-1]["type"] == "ExecutionAborted"
    assert events[-1]["executionAbortedEventDetails"] == {"error": "Manual", "cause": "stopped by the test"}
    assert [e["id"] for e in events] == list(range(1, len(events) + 1))
    # stopping again changes nothing
    assert service.stop_execution("held").stop_date == stopped.stop_date


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_dead_runner_is_shown_as_aborted_not_running(settings: Settings) -> None:
    service = _service(settings)
    machine = service.create_state_machine("hold", dumps(WAIT_LONG))
    store = service.store
    from datetime import UTC, datetime

    store.insert_execution(
        arn=service.execution_arn("hold", "orphan"),
        name="orphan",
        machine=machine,
        kind="STANDARD",
        input_text="{}",
        start_date=datetime.now(UTC),
        runner=(socket.gethostname(), _dead_pid(), "other"),
    )
    store.insert_execution(
        arn=service.execution_arn("hold", "silent"),
        name="silent",
        machine=machine,
        kind="STANDARD",
        input_text="{}",
        start_date=datetime.now(UTC),
        runner=("another-host", 1, "remote"),
    )
    store.heartbeat([service.execution_arn("hold", "silent")], time.time() - 3600)
    listed = {r.name: r for r in service.list_executions()}
    assert listed["orphan"].status == "ABORTED" and listed["orphan"].error == "RunnerDied"
    assert "exited before the execution finished" in listed["orphan"].cause
    assert listed["silent"].status == "ABORTED" and "stopped sending heartbeats" in listed["silent"].cause
    assert store.history(listed["orphan"].arn)[-1]["type"] == "ExecutionAborted"


@pytest.mark.timeout(120)
def test_cross_process_stop_and_killed_runner(settings: Settings, tmp_path) -> None:
    """`sfn start --wait` in a real child process: stop it from here, then kill another one."""
    definition = tmp_path / "hold.json"
    definition.write_text(dumps(WAIT_LONG))
    service = StepFunctionsService(settings)
    service.create_state_machine("hold", definition.read_text())
    runner = sconeflow_cli(settings, "sfn", "start", "hold", "--name", "remote", "--wait")
    try:
        wait_for(lambda: _status_or_none(service, "remote") == "RUNNING", timeout=60)
        wait_for(lambda: len(service.history("remote")[1]) >= 2, timeout=30)
        stopped = service.stop_execution("remote", cause="stopped from another process")
        assert stopped.status == "ABORTED" and stopped.cause == "stopped from another process"
        output, _ = runner.communicate(timeout=60)
        assert runner.returncode != 0 and "ABORTED" in output  # --wait reports the abort
        types = [e["type"] for e in service.history("remote")[1]]
        assert types[0] == "ExecutionStarted" and types[-1] == "ExecutionAborted"
        assert types.count("ExecutionAborted") == 1
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait()

    victim = sconeflow_cli(settings, "sfn", "start", "hold", "--name", "victim", "--wait")
    try:
        wait_for(lambda: _status_or_none(service, "victim") == "RUNNING", timeout=60)
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(timeout=30)
    finally:
        if victim.poll() is None:
            victim.kill()
    record = service.describe_execution("victim")
    assert record.status == "ABORTED" and record.error == "RunnerDied"
    assert f"pid {victim.pid}" in record.cause


def _status_or_none(service: StepFunctionsService, name: str) -> str | None:
    try:
        return service.store.get_execution(name).status
    except ExecutionDoesNotExist:
        return None


@pytest.mark.timeout(120)
def test_ctrl_c_on_start_wait_records_an_abort(settings: Settings, tmp_path) -> None:
    service = StepFunctionsService(settings)
    service.create_state_machine("hold", dumps(WAIT_LONG))
    runner = sconeflow_cli(settings, "sfn", "start", "hold", "--name", "interrupted", "--wait")
    try:
        wait_for(lambda: _status_or_none(service, "interrupted") == "RUNNING", timeout=60)
        wait_for(lambda: len(service.history("interrupted")[1]) >= 2, timeout=30)
        runner.send_signal(signal.SIGINT)
        output, _ = runner.communicate(timeout=60)
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait()
    assert runner.returncode == 130, output
    record = service.describe_execution("interrupted")
    assert (record.status, record.error) == ("ABORTED", "Interrupted")
    types = [e["type"] for e in service.history("interrupted")[1]]
    assert types[:2] == ["ExecutionStarted", "WaitStateEntered"] and types[-1] == "ExecutionAborted"


def test_a_runner_cannot_overwrite_an_execution_ended_from_outside(settings: Settings) -> None:
    from datetime import UTC, datetime

    service = _service(settings)
    machine = service.create_state_machine("hold", dumps(WAIT_LONG))
    store = service.store
    arn = service.execution_arn("hold", "late")
    store.insert_execution(
        arn=arn,
        name="late",
        machine=machine,
        kind="STANDARD",
        input_text="{}",
        start_date=datetime.now(UTC),
        runner=(socket.gethostname(), os.getpid(), "elsewhere"),
    )
    started = {
        "timestamp": datetime.now(UTC),
        "type": "ExecutionStarted",
        "id": 1,
        "previousEventId": 0,
        "executionStartedEventDetails": {"input": "{}"},
    }
    from sconeflow.stepfunctions.executions import event_to_row

    assert store.append_events(arn, [event_to_row(started)])
    assert store.force_abort(arn, error="Manual", cause=None, stop_date=datetime.now(UTC))
    late = {
        "timestamp": datetime.now(UTC),
        "type": "WaitStateEntered",
        "id": 2,
        "previousEventId": 1,
        "stateEnteredEventDetails": {"name": "Hold"},
    }
    assert not store.append_events(arn, [event_to_row(late)])
    assert not store.finish(
        arn, status="SUCCEEDED", output="{}", error=None, cause=None, stop_date=datetime.now(UTC)
    )
    record = store.get_execution(arn)
    assert (record.status, record.error, record.output) == ("ABORTED", "Manual", None)
    assert [e["type"] for e in store.history(arn)] == ["ExecutionStarted", "ExecutionAborted"]
    assert store.history(arn)[1]["executionAbortedEventDetails"] == {"error": "Manual"}
