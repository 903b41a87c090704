"""Store fixtures: the same behaviour tests run on the local store and on S3Store over moto."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sconeflow.config import Settings
from sconeflow.store import LocalStore


@pytest.fixture(params=["local", "s3", "s3-prefixed"])
def any_store(request: pytest.FixtureRequest, settings: Settings) -> Iterator[object]:
    """Every ObjectStore backend: local directory, S3 buckets, and buckets as folders of one S3 bucket."""
    if request.param == "local":
        yield LocalStore(settings.buckets_dir)
        return
    moto = pytest.importorskip("moto")
    import boto3

    from sconeflow.store_s3 import S3Store

    with moto.mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        if request.param == "s3":
            yield S3Store("s3://", client=client)
        else:
            client.create_bucket(Bucket="root-bucket")
            yield S3Store("s3://root-bucket/some/prefix", client=client)
