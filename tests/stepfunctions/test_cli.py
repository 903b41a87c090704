"""``sconeflow sfn ...`` and ``sconeflow notifications tail`` through the real CLI."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sconeflow.cli import app
from sconeflow.config import Settings
from sconeflow.stepfunctions.service import StepFunctionsService
from sconeflow.stepfunctions.topic_log import TopicLog, post_webhook

from .sfn_helpers import FILTER_TASK, PASS_CHAIN, WAIT_LONG, Hook, dumps, serve_hook, wait_for

runner = CliRunner()


def sfn(*args: str) -> object:
    return runner.invoke(app, ["sfn", *args], catch_exceptions=False)


def _write(tmp_path: Path, name: str, definition: dict) -> Path:
    path = tmp_path / name
    path.write_text(dumps(definition))
    return path


def test_validate_accepts_good_and_names_the_problems_of_broken_ones(
    tmp_path: Path, shared_dir: Path
) -> None:
    good = sfn("validate", str(_write(tmp_path, "chain.json", PASS_CHAIN)))
    assert good.exit_code == 0 and "OK" in good.output
    defs = shared_dir / "fixtures/stepfunctions/definitions"
    broken = sfn("validate", str(defs / "mohelwah__image_classification.json"))
    assert broken.exit_code == 1
    assert "fileterInferResults" in broken.output
    twice = sfn(
        "validate", str(defs / "emadreda1__ML-Workflow-For-Scones-Unlimited-On-Amazon-SageMaker.json")
    )
    assert twice.exit_code == 1 and "ImageClassification" in twice.output
    missing = runner.invoke(app, ["sfn", "validate", str(tmp_path / "nope.json")])
    assert type(missing.exception).__name__ == "UsageProblem"


def test_create_start_wait_list_describe_history(settings: Settings, tmp_path: Path) -> None:
    path = _write(tmp_path, "chain.json", PASS_CHAIN)
    created = sfn("create", "chain", str(path))
    assert created.exit_code == 0 and "stateMachine:chain" in created.output
    started = sfn("start", "chain", "--input", '{"n": 1}', "--name", "run1", "--wait")
    assert started.exit_code == 0, started.output
    assert "SUCCEEDED" in started.output and '"first"' in started.output
    listed = sfn("list")
    assert "run1" in listed.output and "SUCCEEDED" in listed.output
    described = sfn("describe", "run1", "--json")
    shape = json.loads(described.output)
    assert shape["status"] == "SUCCEEDED" and shape["input"] == '{"n": 1}'
    history = sfn("history", "run1")
    assert "ExecutionStarted" in history.output and "PassStateEntered" in history.output
    as_json = json.loads(sfn("history", "run1", "--json").output)
    assert as_json["events"][-1]["type"] == "ExecutionSucceeded"
    machines = sfn("machines")
    assert "chain" in machines.output


def test_input_from_a_file_update_and_function_map(settings: Settings, tmp_path: Path) -> None:
    renamed = json.loads(dumps(FILTER_TASK).replace("function:filter_inference", "function:my_filter"))
    path = _write(tmp_path, "filter.json", renamed)
    assert sfn("create", "filter", str(path), "--function-map", "my_filter=filter_inference").exit_code == 0
    data = tmp_path / "input.json"
    data.write_text(json.dumps({"inferences": [0.99, 0.01]}))
    ok = sfn("start", "filter", "--input", f"@{data}", "--wait")
    assert ok.exit_code == 0 and "SUCCEEDED" in ok.output
    # without the map the name does not resolve: the task fails with AWS's error
    conflict = runner.invoke(app, ["sfn", "create", "filter", str(path)])  # a changed machine needs --update
    assert type(conflict.exception).__name__ == "StateMachineAlreadyExists"
    assert sfn("create", "filter", str(path), "--update").exit_code == 0
    failed = runner.invoke(app, ["sfn", "start", "filter", "--input", f"@{data}", "--wait"])
    assert failed.exit_code == 1
    record = StepFunctionsService(settings).list_executions("filter")[0]
    assert record.status == "FAILED" and record.error == "Lambda.ResourceNotFoundException"


def test_run_one_off_and_render(settings: Settings, tmp_path: Path) -> None:
    path = _write(tmp_path, "chain.json", PASS_CHAIN)
    result = sfn("run", str(path), "--input", "{}", "--name", "oneoff")
    assert result.exit_code == 0 and "SUCCEEDED" in result.output
    picture = tmp_path / "oneoff.png"
    rendered = sfn("render", "oneoff", "-o", str(picture))
    assert rendered.exit_code == 0 and picture.stat().st_size > 5000
    design = tmp_path / "design.svg"
    assert sfn("render", "run-chain", "--machine", "-o", str(design)).exit_code == 0
    assert "<svg" in design.read_text()


def test_bad_arguments_are_named_errors(settings: Settings, tmp_path: Path) -> None:
    path = _write(tmp_path, "chain.json", PASS_CHAIN)
    bad_map = runner.invoke(app, ["sfn", "create", "x", str(path), "--function-map", "nonsense"])
    assert bad_map.exit_code != 0 and "UsageProblem" in type(bad_map.exception).__name__
    sfn("create", "chain", str(path))
    bad_input = runner.invoke(app, ["sfn", "start", "chain", "--input", "{oops", "--wait"])
    assert type(bad_input.exception).__name__ == "InvalidExecutionInput"
    unknown = runner.invoke(app, ["sfn", "describe", "nothing-like-it"])
    assert type(unknown.exception).__name__ == "ExecutionDoesNotExist"
    bad_format = runner.invoke(app, ["sfn", "render", "chain", "--machine", "-o", str(tmp_path / "x.gif")])
    assert type(bad_format.exception).__name__ == "RenderError"


@pytest.mark.timeout(120)
def test_start_in_background_then_stop(settings: Settings, tmp_path: Path) -> None:
    path = _write(tmp_path, "hold.json", WAIT_LONG)
    sfn("create", "hold", str(path))
    started = sfn("start", "hold", "--name", "bg")
    assert started.exit_code == 0 and "RUNNING" in started.output
    service = StepFunctionsService(settings)
    wait_for(lambda: any(e["type"] == "WaitStateEntered" for e in service.history("bg")[1]), timeout=60)
    assert service.describe_execution("bg").status == "RUNNING"  # its background runner is alive
    stopped = sfn("stop", "bg", "--cause", "no need")
    assert stopped.exit_code == 0 and "ABORTED" in stopped.output
    record = service.describe_execution("bg")
    assert record.status == "ABORTED" and record.cause == "no need"


@pytest.fixture
def hook() -> Iterator[str]:
    with serve_hook() as url:
        yield url


def test_notifications_tail_and_webhook_with_retries(settings: Settings, hook: str) -> None:
    topics = TopicLog(settings)
    assert "no messages yet" in runner.invoke(app, ["notifications", "tail"]).output
    topic = "arn:aws:sns:us-east-1:123456789012:sconeflow-workflow-errors"
    message = {
        "execution": "arn:x",
        "error": "ThresholdConfidenceNotMet",
        "cause": "low",
        "image_key": "test/a.png",
    }
    message_id = topics.publish(topic, json.dumps(message), subject="unsure")
    Hook.failures_left = 2  # the webhook answers 503 twice, then accepts
    result = runner.invoke(app, ["notifications", "tail", "--webhook", hook, "--retries", "3"])
    assert result.exit_code == 0, result.output
    assert "ThresholdConfidenceNotMet" in result.output and "test/a.png" in result.output
    assert len(Hook.received) == 1
    headers, body = Hook.received[0]
    notification = json.loads(body)
    assert notification["Type"] == "Notification" and notification["MessageId"] == message_id
    assert notification["TopicArn"] == topic and json.loads(notification["Message"]) == message
    assert headers["x-amz-sns-message-type"] == "Notification"

    # --follow shows messages published while it runs, and stops after --for seconds
    def publish_later() -> None:
        wait_for(lambda: True)
        topics.publish(topic, json.dumps({"error": "Later", "execution": "arn:y"}))

    timer = threading.Timer(0.5, publish_later)
    timer.start()
    followed = runner.invoke(
        app, ["notifications", "tail", "-n", "0", "--follow", "--for", "2.5", "--poll", "0.1"]
    )
    timer.join()
    assert followed.exit_code == 0
    assert "Later" in followed.output and "ThresholdConfidenceNotMet" not in followed.output


def test_webhook_that_never_accepts_is_a_named_error(settings: Settings, hook: str) -> None:
    from sconeflow.stepfunctions.topic_log import WebhookFailed

    topics = TopicLog(settings)
    topics.publish("arn:aws:sns:us-east-1:123456789012:t", "plain text")
    Hook.failures_left = 10
    note = topics.read()[0]
    with pytest.raises(WebhookFailed):
        post_webhook(hook, note, retries=1, backoff_s=0.01)
    bad = runner.invoke(app, ["notifications", "tail", "--webhook", "ftp://nowhere"])
    assert type(bad.exception).__name__ == "UsageProblem"


def test_topic_log_refuses_bad_topics_and_huge_messages(settings: Settings) -> None:
    from sconeflow.stepfunctions.topic_log import InvalidTopicArn, MessageTooLong

    topics = TopicLog(settings)
    with pytest.raises(InvalidTopicArn):
        topics.publish("arn:aws:sqs:us-east-1:123456789012:q", "x")
    with pytest.raises(MessageTooLong):
        topics.publish("arn:aws:sns:us-east-1:123456789012:t", "x" * 300_000)
    assert topics.read() == []


@pytest.mark.timeout(180)
def test_start_runs_in_the_gateway_and_down_records_the_shutdown(settings: Settings, tmp_path: Path) -> None:
    from sconeflow.services import free_port

    path = _write(tmp_path, "hold.json", WAIT_LONG)
    sfn("create", "hold", str(path))
    up = runner.invoke(app, ["up", "--port", str(free_port()), "--no-endpoints"])
    assert up.exit_code == 0, up.output
    try:
        started = sfn("start", "hold", "--name", "in-gateway")
        assert started.exit_code == 0 and "gateway" in started.output
        service = StepFunctionsService(settings)
        wait_for(lambda: len(service.history("in-gateway")[1]) >= 2, timeout=30)
        assert service.describe_execution("in-gateway").status == "RUNNING"
    finally:
        down = runner.invoke(app, ["down"])
        assert down.exit_code == 0, down.output
    record = StepFunctionsService(settings).describe_execution("in-gateway")
    assert (record.status, record.error) == ("ABORTED", "RunnerStopped")
    assert "shut down" in record.cause


def test_list_refuses_an_unknown_status_filter(settings: Settings) -> None:
    bad = runner.invoke(app, ["sfn", "list", "--status", "DONE"])
    assert type(bad.exception).__name__ == "UsageProblem" and "RUNNING" in str(bad.exception)
    assert runner.invoke(app, ["sfn", "list", "--limit", "0"]).exit_code == 2  # a usage error, no traceback
    assert sfn("list", "--status", "failed").exit_code == 0  # case-insensitive, like before


def test_a_definition_or_input_file_that_is_not_utf8_is_a_usage_problem(
    settings: Settings, tmp_path: Path
) -> None:
    binary = tmp_path / "definition.json"
    binary.write_bytes(b"\xff\xfe not text")
    for args in (["validate", str(binary)], ["run", str(binary)], ["create", "m", str(binary)]):
        result = runner.invoke(app, ["sfn", *args])
        assert type(result.exception).__name__ == "UsageProblem", (args, result.exception)
        assert "not UTF-8" in str(result.exception)
    sfn("create", "chain", str(_write(tmp_path, "chain.json", PASS_CHAIN)))
    started = runner.invoke(app, ["sfn", "start", "chain", "--input", f"@{binary}"])
    assert type(started.exception).__name__ == "UsageProblem" and "not UTF-8" in str(started.exception)


def test_notifications_tail_refuses_negative_counts(settings: Settings) -> None:
    for args in (["-n", "-1"], ["--retries", "-1"], ["--follow", "--poll", "0"], ["--follow", "--for", "-1"]):
        result = runner.invoke(app, ["notifications", "tail", *args])
        assert result.exit_code == 2, (args, result.output)


def test_start_refuses_a_name_already_used(settings: Settings, tmp_path: Path) -> None:
    """Without a gateway, `sfn start` used to report the old execution as started (its runner then failed)."""
    sfn("create", "chain", str(_write(tmp_path, "chain.json", PASS_CHAIN)))
    assert sfn("start", "chain", "--name", "once", "--wait").exit_code == 0
    again = runner.invoke(app, ["sfn", "start", "chain", "--name", "once"])
    assert type(again.exception).__name__ == "ExecutionAlreadyExists", again.output
    assert not (settings.logs_dir / "sfn-once.log").exists()  # no background runner was started
