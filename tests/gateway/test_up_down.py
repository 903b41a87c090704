"""`sconeflow up` / `sconeflow down` as a user runs them (real background process, run file)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pytest

from sconeflow.config import Settings
from sconeflow.gateway.client import boto3_client, gateway_url
from sconeflow.services import pid_alive


def _sconeflow(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, COLUMNS="200")
    return subprocess.run(
        [sys.executable, "-m", "sconeflow", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_up_serves_aws_apis_and_down_stops_it(settings: Settings) -> None:
    started = _sconeflow("up", "--port", "0")
    try:
        assert started.returncode == 0, started.stderr
        record = json.loads((settings.run_dir / "gateway.json").read_text())
        url = record["url"]
        assert url.startswith("http://127.0.0.1:")
        assert f"export AWS_ENDPOINT_URL={url}" in started.stdout
        assert gateway_url(settings) == url and pid_alive(record["pid"])

        s3 = boto3_client(settings, "s3")
        s3.create_bucket(Bucket="scones")
        assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["scones"]
        lam = boto3_client(settings, "lambda")
        response = lam.invoke(FunctionName="filter_inference", Payload=b'{"inferences": [0.99, 0.01]}')
        assert response["StatusCode"] == 200 and "FunctionError" not in response

        again = _sconeflow("up", "--port", "0")
        assert again.returncode == 0 and "already running" in again.stdout
    finally:
        stopped = _sconeflow("down")
    assert stopped.returncode == 0 and "gateway" in stopped.stdout
    assert not (settings.run_dir / "gateway.json").exists()
    assert gateway_url(settings) is None
    assert not pid_alive(record["pid"])
    assert "nothing was running" in _sconeflow("down").stdout


def test_up_refuses_a_port_in_use(settings: Settings) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        result = _sconeflow("up", "--port", str(busy.getsockname()[1]))
    assert result.returncode != 0
    assert "PortInUse" in result.stderr
    assert not (settings.run_dir / "gateway.json").exists()


@pytest.mark.parametrize("host", ["0.0.0.0"])
def test_up_warns_loudly_for_a_non_loopback_host(settings: Settings, host: str) -> None:
    started = _sconeflow("up", "--host", host, "--port", "0", "--no-endpoints")
    try:
        assert started.returncode == 0, started.stderr
        assert "WARNING" in started.stderr and "does NOT verify request signatures" in started.stderr
    finally:
        _sconeflow("down")


def test_bind_refuses_bad_listen_addresses_with_named_errors(settings: Settings) -> None:
    from sconeflow.gateway.server import InvalidListenAddress, bind

    for host, port in [("127.0.0.1", 99999), ("127.0.0.1", -1), ("no-such-host.invalid", 0)]:
        with pytest.raises(InvalidListenAddress):
            bind(settings, host, port)


def test_up_rejects_an_out_of_range_port_without_a_traceback(settings: Settings) -> None:
    result = _sconeflow("up", "--port", "99999")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr and "--port" in result.stderr
    assert not (settings.run_dir / "gateway.json").exists()


def test_down_stops_executions_running_in_a_detached_process(settings: Settings, tmp_path) -> None:
    """`sfn start` without a gateway runs the execution in a detached process: `down` must not leave it."""
    from sconeflow.stepfunctions.service import StepFunctionsService

    definition = tmp_path / "wait.json"
    definition.write_text('{"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 600, "End": true}}}')
    assert _sconeflow("sfn", "create", "waiter", str(definition)).returncode == 0
    started = _sconeflow("sfn", "start", "waiter", "--name", "long-wait")
    assert started.returncode == 0 and "background process" in started.stdout, started.stderr
    service = StepFunctionsService(settings)
    runner_pid = service.describe_execution("long-wait").runner_pid
    assert runner_pid and pid_alive(runner_pid)

    stopped = _sconeflow("down")
    assert stopped.returncode == 0 and "execution long-wait" in stopped.stdout, stopped.stdout
    record = service.describe_execution("long-wait")
    assert record.status == "ABORTED" and record.error == "RunnerStopped"
    for _ in range(50):  # the runner ends its execution and exits on its own
        if not pid_alive(runner_pid):
            break
        time.sleep(0.1)
    assert not pid_alive(runner_pid)


def test_down_never_signals_a_process_that_got_a_dead_services_pid(settings: Settings) -> None:
    """A run file outlives its service (SIGKILL, a reboot) and its PID goes to an unrelated process:
    `sconeflow down` removes the run file and leaves that process alone (it used to SIGTERM/SIGKILL it)."""
    from datetime import UTC, datetime, timedelta

    from sconeflow import services

    bystander = subprocess.Popen(["sleep", "300"], start_new_session=True)
    try:
        written = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()  # before the bystander started
        for name, kind in (("gateway", "gateway"), ("endpoint-old", "endpoint")):
            services.write_record(
                settings, services.ServiceRecord(name, kind, bystander.pid, "http://127.0.0.1:9", "", written)
            )
        record = services.read_record(settings, "gateway")
        assert record is not None and not record.alive  # the PID lives, but not as the recorded service
        stopped = _sconeflow("down", "--home", str(settings.home))
        assert stopped.returncode == 0, stopped.stderr
        time.sleep(0.3)
        assert bystander.poll() is None
        assert services.list_records(settings) == []
    finally:
        bystander.kill()
        bystander.wait()
