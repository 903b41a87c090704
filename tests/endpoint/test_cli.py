"""``sconeflow endpoint deploy|list|describe|invoke|update|delete`` through the real CLI app."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from sconeflow.cli import app
from sconeflow.config import Settings

from .conftest import TrainedModel

runner = CliRunner()


def test_cli_round_trip(settings: Settings, trained_model: TrainedModel, tmp_path) -> None:
    home = ["--home", str(settings.home)]
    result = runner.invoke(
        app,
        [
            "endpoint",
            "deploy",
            "--model",
            str(trained_model.artifact),
            "--name",
            "cli-ep",
            "--capture-percent",
            "100",
            "--capture-dest",
            "s3://cli-bucket/cap",
            "--spin-max-batch",
            "0",
            "--workers",
            "1",
            *home,
        ],
    )
    assert result.exit_code == 0, result.output
    assert "cli-ep" in result.stdout

    listed = runner.invoke(app, ["endpoint", "list", *home])
    assert listed.exit_code == 0 and "cli-ep" in listed.stdout and "InService" in listed.stdout

    described = runner.invoke(app, ["endpoint", "describe", "cli-ep", *home])
    assert described.exit_code == 0, described.output
    doc = json.loads(described.stdout)
    assert doc["EndpointStatus"] == "InService"
    capture = doc["EndpointConfig"]["DataCaptureConfig"]
    assert capture["InitialSamplingPercentage"] == 100
    assert capture["DestinationS3Uri"] == "s3://cli-bucket/cap"
    assert capture["CaptureContentTypeHeader"] == {
        "CsvContentTypes": ["text/csv"],
        "JsonContentTypes": ["application/json"],
    }
    assert doc["DataCaptureConfigSummary"]["CaptureStatus"] == "Started"
    assert doc["Serving"]["spin_max_batch"] == 0
    assert doc["Serving"]["workers"] == 1

    image = tmp_path / "x.png"
    image.write_bytes(trained_model.test_pngs[0][1])
    invoked = runner.invoke(app, ["endpoint", "invoke", "cli-ep", str(image), *home])
    assert invoked.exit_code == 0, invoked.output
    probs = json.loads(invoked.stdout)
    assert len(probs) == 2 and abs(sum(probs) - 1) < 1e-4

    bad = tmp_path / "bad.png"
    bad.write_bytes(b"nope")
    failed = runner.invoke(app, ["endpoint", "invoke", "cli-ep", str(bad), *home])
    assert failed.exit_code != 0
    assert "ModelError" in str(failed.exception) or "ModelError" in failed.output

    updated = runner.invoke(
        app, ["endpoint", "update", "cli-ep", "--model", str(trained_model.artifact), *home]
    )
    assert updated.exit_code == 0, updated.output

    deleted = runner.invoke(app, ["endpoint", "delete", "cli-ep", *home])
    assert deleted.exit_code == 0
    from sconeflow.store import LocalStore

    store = LocalStore(settings.buckets_dir)
    keys = [o.key for o in store.iter_objects("cli-bucket", "cap/cli-ep/AllTraffic/")]
    assert sum(store.get_object("cli-bucket", k).count(b"\n") for k in keys) == 1  # the one good invoke
    missing = runner.invoke(app, ["endpoint", "describe", "cli-ep", *home])
    assert missing.exit_code != 0
    assert "EndpointNotFound" in type(missing.exception).__name__
