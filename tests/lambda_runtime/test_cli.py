"""`sconeflow lambda list|invoke|logs|package|register|update|delete`."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from typer.testing import CliRunner

from sconeflow.cli import app
from sconeflow.config import Settings

runner = CliRunner()


def test_list_shows_the_three_functions(settings: Settings) -> None:
    result = runner.invoke(app, ["lambda", "list", "--json"])
    assert result.exit_code == 0, result.output
    names = [f["FunctionName"] for f in json.loads(result.stdout)["Functions"]]
    assert names == ["classify_image", "filter_inference", "list_images", "serialize_image_data"]


def test_invoke_prints_the_payload_and_fails_on_a_function_error(settings: Settings, tmp_path: Path) -> None:
    ok = runner.invoke(
        app, ["lambda", "invoke", "filter_inference", "--payload", '{"inferences": [0.99, 0.01]}']
    )
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout) == {"statusCode": 200, "body": {"inferences": [0.99, 0.01]}}
    assert '"StatusCode": 200' in ok.stderr

    payload = tmp_path / "event.json"
    payload.write_text('{"inferences": [0.5, 0.5]}')
    bad = runner.invoke(app, ["lambda", "invoke", "filter_inference", "--payload", f"@{payload}", "--log"])
    assert bad.exit_code == 1
    assert json.loads(bad.stdout)["errorType"] == "ThresholdConfidenceNotMet"
    assert "FunctionError Unhandled: ThresholdConfidenceNotMet: THRESHOLD_CONFIDENCE_NOT_MET" in bad.stderr
    assert "START RequestId:" in bad.stderr and "REPORT RequestId:" in bad.stderr

    stdin = runner.invoke(
        app,
        ["lambda", "invoke", "filter_inference", "-p", "-", "-o", str(tmp_path / "o.json")],
        input='{"inferences": [1.0]}',
    )
    assert stdin.exit_code == 0
    assert json.loads((tmp_path / "o.json").read_text())["body"] == {"inferences": [1.0]}

    logs = runner.invoke(app, ["lambda", "logs", "filter_inference", "--last", "2"])
    assert logs.exit_code == 0
    assert logs.stdout.count("START RequestId:") == 2 and "THRESHOLD_CONFIDENCE_NOT_MET" in logs.stdout


def test_invoke_errors_are_named(settings: Settings) -> None:
    missing = runner.invoke(app, ["lambda", "invoke", "nope"])
    assert missing.exit_code != 0
    assert isinstance(missing.exception, Exception) and type(missing.exception).__name__ == "FunctionNotFound"
    unreadable = runner.invoke(app, ["lambda", "invoke", "filter_inference", "-p", "@/no/such/file.json"])
    assert type(unreadable.exception).__name__ == "PayloadError"


def test_register_update_package_delete(settings: Settings, tmp_path: Path) -> None:
    code = tmp_path / "code"
    code.mkdir()
    (code / "hello.py").write_text(
        "import os\ndef handler(e, c):\n    return {'greeting': os.environ['GREETING']}\n"
    )
    created = runner.invoke(
        app,
        [
            "lambda",
            "register",
            "hello",
            "--handler",
            "hello.handler",
            "--code",
            str(code),
            "--env",
            "GREETING=hi",
            "--timeout",
            "5",
        ],
    )
    assert created.exit_code == 0, created.output
    assert json.loads(runner.invoke(app, ["lambda", "invoke", "hello"]).stdout) == {"greeting": "hi"}
    updated = runner.invoke(app, ["lambda", "update", "hello", "--env", "GREETING=bonjour"])
    assert updated.exit_code == 0 and "GREETING=bonjour" in updated.stdout
    assert json.loads(runner.invoke(app, ["lambda", "invoke", "hello"]).stdout) == {"greeting": "bonjour"}
    zipped = tmp_path / "fn.zip"
    assert runner.invoke(app, ["lambda", "package", "hello", "-o", str(zipped)]).exit_code == 0
    assert zipfile.ZipFile(zipped).namelist() == ["hello.py"]
    assert runner.invoke(app, ["lambda", "delete", "hello"]).exit_code == 0
    assert type(runner.invoke(app, ["lambda", "invoke", "hello"]).exception).__name__ == "FunctionNotFound"
    bad_env = runner.invoke(app, ["lambda", "update", "filter_inference", "--env", "NOEQUALS"])
    assert type(bad_env.exception).__name__ == "PayloadError"


def test_logs_refuses_a_negative_count(settings: Settings) -> None:
    result = runner.invoke(app, ["lambda", "logs", "filter_inference", "--last", "-1"])
    assert result.exit_code == 2 and "--last" in result.output  # a usage error, not a ValueError
