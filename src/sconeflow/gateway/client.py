"""Find the running gateway of a home, and make boto3 clients that talk to it."""

from __future__ import annotations

from typing import Any

from sconeflow.config import Settings
from sconeflow.services import read_record

GATEWAY_SERVICE = "gateway"
DEFAULT_PORT = 4566


def gateway_url(settings: Settings) -> str | None:
    """The URL of this home's gateway started by ``sconeflow up``, or None when it is not running."""
    record = read_record(settings, GATEWAY_SERVICE)
    if record is None or not record.alive:
        return None
    return record.url


def boto3_client(settings: Settings, service: str, *, url: str | None = None, **kwargs: Any) -> Any:
    """A boto3 client for the local gateway (path-style S3, no host prefixes, dummy credentials)."""
    import boto3
    from botocore.config import Config

    endpoint = url or gateway_url(settings)
    if endpoint is None:
        from sconeflow.gateway.server import GatewayNotRunning

        raise GatewayNotRunning("the gateway is not running: start it with `sconeflow up`")
    config = Config(s3={"addressing_style": "path"}, inject_host_prefix=False, retries={"max_attempts": 1})
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=settings.region,
        aws_access_key_id=kwargs.pop("aws_access_key_id", "sconeflow"),
        aws_secret_access_key=kwargs.pop("aws_secret_access_key", "sconeflow"),
        config=kwargs.pop("config", config),
        **kwargs,
    )
