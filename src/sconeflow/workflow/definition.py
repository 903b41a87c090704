"""Where the workflow's state machine definition comes from.

The repository keeps it at ``workflow/step-function.json`` (the file users read and edit); an installed
package ships an identical copy as package data (``sconeflow/workflow/step-function.json``), and a test
checks that the two stay identical. The repository copy wins when it is there.
"""

from __future__ import annotations

from pathlib import Path

from sconeflow.workflow.errors import DefinitionMissing

DEFINITION_FILE = "step-function.json"
PACKAGED_DEFINITION = Path(__file__).resolve().parent / DEFINITION_FILE
REPO_DEFINITION = Path(__file__).resolve().parents[3] / "workflow" / DEFINITION_FILE


def definition_path() -> Path:
    """``<repo>/workflow/step-function.json`` when running from a checkout, else the packaged copy."""
    for path in (REPO_DEFINITION, PACKAGED_DEFINITION):
        if path.is_file():
            return path
    raise DefinitionMissing(f"neither {REPO_DEFINITION} nor {PACKAGED_DEFINITION} exists")


def load_definition() -> tuple[str, Path]:
    """The definition text and the file it was read from."""
    path = definition_path()
    try:
        return path.read_text(encoding="utf-8"), path
    except OSError as exc:
        raise DefinitionMissing(f"cannot read {path}: {exc}") from exc
