"""The AWS CLI (awscli from PyPI) against the gateway: `aws s3 cp`, `aws s3 ls`, `aws lambda invoke`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from sconeflow.config import Settings
from sconeflow.gateway.server import InProcessGateway
from sconeflow.store import LocalStore


def _aws(gateway: InProcessGateway, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.update(
        {
            "AWS_ACCESS_KEY_ID": "dummy",
            "AWS_SECRET_ACCESS_KEY": "dummy",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_CONFIG_FILE": str(tmp_path / "none"),
            "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        }
    )
    return subprocess.run(
        [sys.executable, "-m", "awscli", "--endpoint-url", gateway.url, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_aws_s3_cp_and_ls(gateway: InProcessGateway, store: LocalStore, tmp_path: Path) -> None:
    store.create_bucket("scones")
    image = tmp_path / "bicycle_s_000513.png"
    image.write_bytes(b"\x89PNG" + b"\x00" * 2000)
    up = _aws(gateway, tmp_path, "s3", "cp", str(image), "s3://scones/test/bicycle_s_000513.png")
    assert up.returncode == 0, up.stderr
    assert store.get_object("scones", "test/bicycle_s_000513.png") == image.read_bytes()

    listing = _aws(gateway, tmp_path, "s3", "ls", "s3://scones/test/")
    assert listing.returncode == 0, listing.stderr
    assert listing.stdout.strip().endswith(" 2004 bicycle_s_000513.png")
    buckets = _aws(gateway, tmp_path, "s3", "ls")
    assert buckets.stdout.strip().endswith(" scones")

    back = tmp_path / "back.png"
    down = _aws(gateway, tmp_path, "s3", "cp", "s3://scones/test/bicycle_s_000513.png", str(back))
    assert down.returncode == 0, down.stderr
    assert back.read_bytes() == image.read_bytes()

    missing = _aws(gateway, tmp_path, "s3", "cp", "s3://scones/test/missing.png", str(tmp_path / "m.png"))
    assert missing.returncode != 0
    assert "404" in missing.stderr or "Not Found" in missing.stderr


def test_aws_lambda_invoke(gateway: InProcessGateway, settings: Settings, tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    result = _aws(
        gateway,
        tmp_path,
        "lambda",
        "invoke",
        "--function-name",
        "filter_inference",
        "--payload",
        '{"inferences": [0.2, 0.8]}',
        str(out),
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary == {"StatusCode": 200, "FunctionError": "Unhandled", "ExecutedVersion": "$LATEST"}
    assert json.loads(out.read_text())["errorType"] == "ThresholdConfidenceNotMet"
