"""Build the deployment zip one would upload to AWS Lambda (byte-for-byte reproducible)."""

from __future__ import annotations

import zipfile
from pathlib import Path

from sconeflow.lambda_runtime.errors import PackagingError
from sconeflow.lambda_runtime.registry import BUILTIN_CODE_DIR, FunctionConfig

_FIXED_TIME = (1980, 1, 1, 0, 0, 0)
_SKIP_DIRS = {"__pycache__", ".git", ".venv", ".mypy_cache", ".pytest_cache"}


def package_files(config: FunctionConfig) -> list[tuple[Path, str]]:
    """(source file, name in the zip). A built-in function ships only its own handler file."""
    root = config.code_path
    if config.code_dir is None:
        module = config.handler.rsplit(".", 1)[0]
        source = BUILTIN_CODE_DIR / (module.replace(".", "/") + ".py")
        if not source.is_file():
            raise PackagingError(f"handler module {module} of {config.name} not found in {BUILTIN_CODE_DIR}")
        return [(source, source.name)]
    if not root.is_dir():
        raise PackagingError(f"code folder {root} of {config.name} does not exist")
    files = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if any(part in _SKIP_DIRS for part in rel.parts) or not path.is_file() or path.suffix == ".pyc":
            continue
        files.append((path, rel.as_posix()))
    if not files:
        raise PackagingError(f"code folder {root} of {config.name} is empty")
    return files


def build_package(config: FunctionConfig, output: Path) -> list[str]:
    """Write the zip to ``output``; return the names it holds."""
    files = package_files(config)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(output.name + ".part")
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for source, name in files:
                info = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
                info.external_attr = 0o644 << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, source.read_bytes())
        tmp.replace(output)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise PackagingError(f"cannot write {output}: {exc}") from exc
    return [name for _, name in files]
