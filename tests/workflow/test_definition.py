"""The state machine definition ships with the package and stays identical to the repository's copy."""

from __future__ import annotations

import json

import pytest

from sconeflow.stepfunctions.engine import parse_definition
from sconeflow.workflow import definition
from tests.conftest import REPO_ROOT


@pytest.mark.parametrize("name", definition.DEFINITION_FILES)
def test_packaged_copies_are_identical_to_the_repository_files(name: str) -> None:
    repo_file = REPO_ROOT / "workflow" / name
    assert (definition.PACKAGE_DIR / name).read_bytes() == repo_file.read_bytes()
    parse_definition((definition.PACKAGE_DIR / name).read_text())


def test_the_packaged_batch_workflow_is_used_when_there_is_no_checkout(monkeypatch, tmp_path) -> None:
    from sconeflow.workflow.errors import DefinitionMissing

    monkeypatch.setattr(definition, "REPO_DIR", tmp_path)
    text, path = definition.load_definition(definition.BATCH_DEFINITION_FILE)
    assert path == definition.PACKAGE_DIR / "step-function-batch.json"
    assert json.loads(text) == json.loads((REPO_ROOT / "workflow" / "step-function-batch.json").read_text())
    with pytest.raises(DefinitionMissing, match="not one of the workflow definitions"):
        definition.load_definition("../pyproject.toml")


def test_the_repository_copy_wins_in_a_checkout() -> None:
    text, path = definition.load_definition()
    assert path == REPO_ROOT / "workflow" / "step-function.json"
    assert json.loads(text)["StartAt"] == "SerializeImageData"


def test_the_packaged_copy_is_used_when_there_is_no_checkout(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(definition, "REPO_DEFINITION", tmp_path / "absent.json")
    text, path = definition.load_definition()
    assert path == definition.PACKAGED_DEFINITION
    parse_definition(text)  # a valid state machine


def test_a_missing_definition_is_a_named_error(monkeypatch, tmp_path) -> None:
    from sconeflow.workflow.errors import DefinitionMissing

    monkeypatch.setattr(definition, "REPO_DEFINITION", tmp_path / "a.json")
    monkeypatch.setattr(definition, "PACKAGED_DEFINITION", tmp_path / "b.json")
    try:
        definition.load_definition()
    except DefinitionMissing as exc:
        assert "a.json" in str(exc) and "b.json" in str(exc)
    else:
        raise AssertionError("DefinitionMissing was not raised")


def test_package_data_includes_the_definition() -> None:
    import tomllib

    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["sconeflow"]
    assert "**/*.json" in patterns
