"""`sconeflow lambda register --zip`: the zip `sconeflow lambda package` builds runs as uploaded."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from sconeflow.cli import app
from sconeflow.config import Settings

runner = CliRunner()


def test_package_then_register_the_zip_under_a_classic_name(settings: Settings, tmp_path: Path) -> None:
    package = tmp_path / "filter.zip"
    assert runner.invoke(app, ["lambda", "package", "filter_inference", "-o", str(package)]).exit_code == 0
    registered = runner.invoke(
        app,
        [
            "lambda",
            "register",
            "filterInferences",
            "--zip",
            str(package),
            "--handler",
            "filter_inference.lambda_handler",
            "--env",
            "THRESHOLD=0.5",
        ],
    )
    assert registered.exit_code == 0, registered.output
    assert str(settings.home / "lambda-code" / "filterInferences") in registered.stdout.replace("\n", "")
    result = runner.invoke(app, ["lambda", "invoke", "filterInferences", "-p", '{"inferences": [0.6, 0.4]}'])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["body"] == {"inferences": [0.6, 0.4]}


def test_register_zip_errors(settings: Settings, tmp_path: Path) -> None:
    missing = runner.invoke(
        app, ["lambda", "register", "x", "--handler", "a.b", "--zip", str(tmp_path / "no.zip")]
    )
    assert type(missing.exception).__name__ == "PayloadError"
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"not a zip")
    bad = runner.invoke(app, ["lambda", "register", "x", "--handler", "a.b", "--zip", str(junk)])
    assert type(bad.exception).__name__ == "InvalidParameterValue"
    both = runner.invoke(
        app, ["lambda", "register", "x", "--handler", "a.b", "--zip", str(junk), "--code", "."]
    )
    assert type(both.exception).__name__ == "PayloadError"


def test_logs_follow_prints_new_invocations(settings: Settings) -> None:
    import threading

    from sconeflow.lambda_runtime.runtime import LambdaRuntime

    def invoke_later() -> None:
        import time

        time.sleep(0.3)
        with LambdaRuntime(settings) as runtime:
            runtime.invoke("filter_inference", b'{"inferences": [0.2, 0.8]}')

    thread = threading.Thread(target=invoke_later)
    thread.start()
    result = runner.invoke(app, ["lambda", "logs", "filter_inference", "--follow", "--follow-for", "4"])
    thread.join()
    assert result.exit_code == 0, result.output
    assert result.stdout.count("START RequestId:") == 1
    assert "THRESHOLD_CONFIDENCE_NOT_MET: max confidence 0.80 < 0.93" in result.stdout
