"""Fixtures shared by the Lambda and gateway tests: an in-process gateway and a runtime using it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sconeflow.config import Settings
from sconeflow.gateway.client import boto3_client
from sconeflow.gateway.server import InProcessGateway, start_in_process
from sconeflow.lambda_runtime.registry import FunctionConfig, FunctionRegistry
from sconeflow.lambda_runtime.runtime import LambdaRuntime


@pytest.fixture
def gateway(settings: Settings) -> Iterator[InProcessGateway]:
    gw = start_in_process(settings)
    try:
        yield gw
    finally:
        gw.close()


@pytest.fixture
def runtime(settings: Settings, gateway: InProcessGateway) -> Iterator[LambdaRuntime]:
    rt = LambdaRuntime(settings, endpoint_url=gateway.url)
    try:
        yield rt
    finally:
        rt.close()


@pytest.fixture
def lam(settings: Settings, gateway: InProcessGateway) -> Any:
    """A boto3 ``lambda`` client against the in-process gateway."""
    return boto3_client(settings, "lambda", url=gateway.url)


def register_code(
    settings: Settings,
    tmp_path: Path,
    name: str,
    source: str,
    *,
    handler: str | None = None,
    **kwargs: object,
) -> FunctionConfig:
    """Write ``source`` as ``<name>_fn.py`` in its own folder and register it as function ``name``."""
    folder = tmp_path / f"code-{name}"
    folder.mkdir(parents=True, exist_ok=True)
    module = f"{name.replace('-', '_')}_fn"
    (folder / f"{module}.py").write_text(source)
    config = FunctionConfig(name=name, handler=handler or f"{module}.handler", code_dir=str(folder), **kwargs)
    return FunctionRegistry(settings).register(config, replace_existing=True)
