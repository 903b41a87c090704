"""The function registry in the metadata database, and packaging."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from sconeflow.config import Settings
from sconeflow.lambda_runtime.errors import FunctionNotFound, InvalidParameterValue, ResourceConflict
from sconeflow.lambda_runtime.packaging import build_package
from sconeflow.lambda_runtime.registry import (
    DEFAULT_FUNCTIONS,
    FunctionConfig,
    FunctionRegistry,
    parse_function_name,
)


def test_the_three_workflow_functions_are_seeded(settings: Settings) -> None:
    registry = FunctionRegistry(settings)
    assert [f.name for f in registry.list()] == sorted(DEFAULT_FUNCTIONS)
    assert registry.get("classify_image").environment == {"ENDPOINT_NAME": ""}
    assert registry.get("filter_inference").environment == {"THRESHOLD": "0.93"}
    assert registry.get("serialize_image_data").handler == "serialize_image_data.lambda_handler"


def test_seeding_happens_once_so_a_deleted_default_stays_deleted(settings: Settings) -> None:
    FunctionRegistry(settings).delete("filter_inference")
    assert not FunctionRegistry(settings).exists("filter_inference")


def test_register_update_delete(settings: Settings, tmp_path: Path) -> None:
    registry = FunctionRegistry(settings)
    saved = registry.register(FunctionConfig(name="mine", handler="app.handler", code_dir=str(tmp_path)))
    assert saved.revision == 1 and saved.code_path == tmp_path.resolve()
    with pytest.raises(ResourceConflict):
        registry.register(FunctionConfig(name="mine", handler="app.handler", code_dir=str(tmp_path)))
    updated = registry.update("mine", environment={"A": "1"}, timeout=60)
    assert (updated.environment, updated.timeout, updated.revision) == ({"A": "1"}, 60, 2)
    assert registry.update("mine", environment={"B": "2"}, unset_env=["A"]).environment == {"B": "2"}
    registry.delete("mine")
    with pytest.raises(FunctionNotFound):
        registry.get("mine")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"handler": "nodot"}, "invalid handler"),
        ({"timeout": 0}, "timeout"),
        ({"timeout": 901}, "timeout"),
        ({"memory_size": 64}, "memory size"),
        ({"concurrency": 0}, "concurrency"),
        ({"environment": {"1BAD": "x"}}, "environment variable name"),
        ({"environment": {"AWS_LAMBDA_FUNCTION_NAME": "x"}}, "reserved"),
        ({"environment": {"BIG": "x" * 5000}}, "4 KB"),
        ({"code_dir": "/no/such/folder"}, "does not exist"),
    ],
)
def test_bad_configurations_are_refused(settings: Settings, changes: dict, message: str) -> None:
    config = FunctionConfig(**{"name": "f", "handler": "app.handler", **changes})
    with pytest.raises(InvalidParameterValue, match=message):
        FunctionRegistry(settings).register(config)
    assert not FunctionRegistry(settings).exists("f")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("fn", ("fn", None)),
        ("fn:$LATEST", ("fn", "$LATEST")),
        ("arn:aws:lambda:us-east-1:123456789012:function:fn", ("fn", None)),
        ("arn:aws:lambda:eu-west-1:999999999999:function:fn:prod", ("fn", "prod")),
        ("123456789012:function:fn", ("fn", None)),
    ],
)
def test_function_name_forms(value: str, expected: tuple) -> None:
    assert parse_function_name(value) == expected


@pytest.mark.parametrize("value", ["arn:aws:s3:::bucket", "a b", "x" * 65, "a:b:c:d:e"])
def test_bad_function_names(value: str) -> None:
    with pytest.raises(InvalidParameterValue):
        parse_function_name(value)


def test_package_of_a_builtin_function_is_its_handler_file_at_the_root(
    settings: Settings, tmp_path: Path
) -> None:
    config = FunctionRegistry(settings).get("filter_inference")
    first, second = tmp_path / "a.zip", tmp_path / "b.zip"
    assert build_package(config, first) == ["filter_inference.py"]
    build_package(config, second)
    assert first.read_bytes() == second.read_bytes()  # reproducible
    with zipfile.ZipFile(first) as archive:
        assert archive.namelist() == ["filter_inference.py"]
        source = archive.read("filter_inference.py").decode()
    assert "def lambda_handler(event, context)" in source


def test_package_of_a_code_folder_skips_caches(settings: Settings, tmp_path: Path) -> None:
    code = tmp_path / "code"
    (code / "pkg" / "__pycache__").mkdir(parents=True)
    (code / "app.py").write_text("def handler(e, c):\n    return e\n")
    (code / "pkg" / "util.py").write_text("X = 1\n")
    (code / "pkg" / "__pycache__" / "util.cpython-311.pyc").write_bytes(b"\0")
    config = FunctionRegistry(settings).register(
        FunctionConfig(name="app", handler="app.handler", code_dir=str(code))
    )
    assert build_package(config, tmp_path / "app.zip") == ["app.py", "pkg/util.py"]
