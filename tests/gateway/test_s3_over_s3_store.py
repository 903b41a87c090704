"""The gateway over the ``s3://`` store backend (S3 itself played by moto), with real boto3."""

from __future__ import annotations

from pathlib import Path

import pytest

from sconeflow.config import load_settings
from sconeflow.gateway.client import boto3_client
from sconeflow.gateway.server import start_in_process


def test_head_and_get_answer_over_the_s3_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """boto3 gives LastModified in dateutil's tzutc, which the Last-Modified header once refused (500)."""
    moto = pytest.importorskip("moto")
    import boto3

    monkeypatch.setenv("SCONEFLOW_STORE", "s3://root-bucket/gateway")
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    settings = load_settings(tmp_path / "home")
    settings.ensure_dirs()
    with moto.mock_aws():
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="root-bucket")
        gateway = start_in_process(settings)
        try:
            s3 = boto3_client(settings, "s3", url=gateway.url)
            s3.create_bucket(Bucket="scones")
            s3.put_object(Bucket="scones", Key="a.txt", Body=b"hello")
            head = s3.head_object(Bucket="scones", Key="a.txt", ChecksumMode="ENABLED")
            assert head["ContentLength"] == 5 and head["LastModified"].year > 2000
            assert s3.get_object(Bucket="scones", Key="a.txt")["Body"].read() == b"hello"
        finally:
            gateway.close()
