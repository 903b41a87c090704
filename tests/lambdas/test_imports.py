"""The handler files must be deployable to AWS Lambda as is: standard library and boto3 only."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import sconeflow.lambdas

LAMBDAS_DIR = Path(sconeflow.lambdas.__file__).parent
ALLOWED_THIRD_PARTY = {"boto3", "botocore"}  # botocore ships with boto3 in every Lambda Python runtime


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                names.add("<relative import>")
            elif node.module:
                names.add(node.module.split(".")[0])
    return names


def test_every_handler_file_imports_only_stdlib_and_boto3() -> None:
    files = sorted(LAMBDAS_DIR.glob("*.py"))
    assert {f.name for f in files} >= {"serialize_image_data.py", "classify_image.py", "filter_inference.py"}
    for path in files:
        bad = {n for n in _imports(path) if n not in sys.stdlib_module_names and n not in ALLOWED_THIRD_PARTY}
        assert not bad, (
            f"{path.name} imports {sorted(bad)}: handlers may use only the standard library and boto3"
        )


def test_the_import_check_catches_a_forbidden_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import numpy\nfrom sconeflow.store import LocalStore\nfrom . import x\nimport json\n")
    assert _imports(bad) - sys.stdlib_module_names == {"numpy", "sconeflow", "<relative import>"}
