"""Where the workflow's state machine definitions come from.

The repository keeps them under ``workflow/`` (``step-function.json``, the demo's workflow, and
``step-function-batch.json``, the fan-out one: the files users read and edit); an installed package ships
identical copies as package data (``sconeflow/workflow/*.json``), and a test checks that they stay
identical. The repository copy wins when it is there.
"""

from __future__ import annotations

from pathlib import Path

from sconeflow.workflow.errors import DefinitionMissing

DEFINITION_FILE = "step-function.json"
BATCH_DEFINITION_FILE = "step-function-batch.json"
DEFINITION_FILES = (DEFINITION_FILE, BATCH_DEFINITION_FILE)
PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = Path(__file__).resolve().parents[3] / "workflow"
PACKAGED_DEFINITION = PACKAGE_DIR / DEFINITION_FILE
REPO_DEFINITION = REPO_DIR / DEFINITION_FILE


def definition_path(name: str = DEFINITION_FILE) -> Path:
    """``<repo>/workflow/<name>`` when running from a checkout, else the packaged copy."""
    if name not in DEFINITION_FILES:
        raise DefinitionMissing(
            f"{name!r} is not one of the workflow definitions: {', '.join(DEFINITION_FILES)}"
        )
    repo, packaged = (
        (REPO_DEFINITION, PACKAGED_DEFINITION)
        if name == DEFINITION_FILE
        else (REPO_DIR / name, PACKAGE_DIR / name)
    )
    for path in (repo, packaged):
        if path.is_file():
            return path
    raise DefinitionMissing(f"neither {repo} nor {packaged} exists")


def load_definition(name: str = DEFINITION_FILE) -> tuple[str, Path]:
    """The definition text and the file it was read from."""
    path = definition_path(name)
    try:
        return path.read_text(encoding="utf-8"), path
    except OSError as exc:
        raise DefinitionMissing(f"cannot read {path}: {exc}") from exc
