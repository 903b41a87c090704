"""Fixtures shared by the Step Functions API tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from botocore.config import Config

from sconeflow.config import Settings


@pytest.fixture
def sfn(settings: Settings) -> Iterator[object]:
    """A boto3 ``stepfunctions`` client against a real in-process gateway of a fresh home."""
    import boto3

    from sconeflow.gateway.server import running_gateway

    with running_gateway(settings) as gateway:
        yield boto3.client(
            "stepfunctions",
            endpoint_url=gateway.url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(inject_host_prefix=False, retries={"max_attempts": 1}),
        )
