"""The classic project's test object, on the real CIFAR-100 images prepared from ../shared."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sconeflow.cli import app
from sconeflow.config import Settings
from sconeflow.store import LocalStore

CLASSIC_KEY = "test/bicycle_s_000513.png"


@pytest.mark.needs_shared
def test_serialize_the_classic_test_object(settings: Settings, store: LocalStore, mini_tarball: Path) -> None:
    from sconeflow.data.prepare import prepare_dataset

    prepare_dataset(settings, source=mini_tarball, classes=["bicycle", "motorcycle"], store=store)
    runner = CliRunner()
    event = json.dumps({"image_data": "", "s3_bucket": settings.bucket, "s3_key": CLASSIC_KEY})
    result = runner.invoke(app, ["lambda", "invoke", "serialize_image_data", "--payload", event])
    assert result.exit_code == 0, result.stderr
    body = json.loads(result.stdout)["body"]
    png = base64.b64decode(body["image_data"])
    assert png == store.get_object(settings.bucket, CLASSIC_KEY) and png.startswith(b"\x89PNG")
    assert (body["s3_bucket"], body["s3_key"], body["inferences"]) == (settings.bucket, CLASSIC_KEY, [])
