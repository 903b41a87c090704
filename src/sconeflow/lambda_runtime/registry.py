"""The function registry: name, handler, code, environment, timeout, memory and concurrency per function.

Stored in the metadata database (component ``lambda``). The three functions of the Scones Unlimited
workflow are seeded by a migration, so every home has them from first use on; their code is the
built-in handler folder :data:`BUILTIN_CODE_DIR` (``code_dir`` NULL in the table).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from sconeflow.config import Settings
from sconeflow.db import Database, Migrations
from sconeflow.lambda_runtime.errors import FunctionNotFound, InvalidParameterValue, ResourceConflict

BUILTIN_CODE_DIR = Path(__file__).resolve().parent.parent / "lambdas"
LATEST = "$LATEST"
RUNTIME_NAME = "python3.11"
# The Lambda runtimes this local runtime can stand in for: it runs Python handlers with its own interpreter.
PYTHON_RUNTIMES = ("python3.9", "python3.10", "python3.11", "python3.12", "python3.13", "python3.14")
MAX_TIMEOUT_S = 900
_NAME_RE = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_HANDLER_RE = re.compile(r"^[^\s]+\.[A-Za-z_][A-Za-z0-9_]*$")
_ENV_KEY_RE = re.compile(r"^[a-zA-Z][a-zA-Z0-9_]*$")
# Keys the Lambda runtime sets itself and AWS refuses in a function's configuration
# (https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html, "Reserved environment variables").
_RESERVED_ENV = {
    "_HANDLER",
    "_X_AMZN_TRACE_ID",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_INITIALIZATION_TYPE",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_ACCESS_KEY",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_LAMBDA_RUNTIME_API",
    "LAMBDA_TASK_ROOT",
    "LAMBDA_RUNTIME_DIR",
    "TZ",
}

_NOW_SQL = "strftime('%Y-%m-%dT%H:%M:%f+0000','now')"

LAMBDA_SCHEMA = Migrations(
    "lambda",
    [
        f"""
        CREATE TABLE lambda_functions (
            name TEXT PRIMARY KEY,
            handler TEXT NOT NULL,
            code_dir TEXT,
            runtime TEXT NOT NULL DEFAULT '{RUNTIME_NAME}',
            environment TEXT NOT NULL DEFAULT '{{}}',
            timeout INTEGER NOT NULL DEFAULT 3,
            memory_size INTEGER NOT NULL DEFAULT 128,
            concurrency INTEGER NOT NULL DEFAULT 4,
            description TEXT NOT NULL DEFAULT '',
            last_modified TEXT NOT NULL DEFAULT ({_NOW_SQL}),
            revision INTEGER NOT NULL DEFAULT 1
        );
        """,
        """
        INSERT OR IGNORE INTO lambda_functions (name, handler, environment, timeout, memory_size, description)
        VALUES
          ('serialize_image_data', 'serialize_image_data.lambda_handler', '{}', 10, 128,
           'Scones Unlimited: read an image from S3 and return it base64-encoded'),
          ('classify_image', 'classify_image.lambda_handler', '{"ENDPOINT_NAME": ""}', 30, 256,
           'Scones Unlimited: classify the image with the SageMaker endpoint ENDPOINT_NAME'),
          ('filter_inference', 'filter_inference.lambda_handler', '{"THRESHOLD": "0.93"}', 3, 128,
           'Scones Unlimited: fail with ThresholdConfidenceNotMet below THRESHOLD');
        """,
        """
        INSERT OR IGNORE INTO lambda_functions (name, handler, environment, timeout, memory_size, description)
        VALUES
          ('list_images', 'list_images.lambda_handler', '{"MAX_KEYS": "1000"}', 30, 128,
           'Scones Unlimited batch workflow: list the images under s3_bucket/s3_prefix');
        """,
        "ALTER TABLE lambda_functions ADD COLUMN role TEXT NOT NULL DEFAULT ''",
    ],
)

DEFAULT_FUNCTIONS = ("serialize_image_data", "classify_image", "filter_inference", "list_images")


@dataclass(frozen=True)
class FunctionConfig:
    name: str
    handler: str
    code_dir: str | None = None  # None: the built-in handlers shipped with sconeflow
    runtime: str = RUNTIME_NAME
    environment: dict[str, str] = field(default_factory=dict)
    timeout: int = 3
    memory_size: int = 128
    concurrency: int = 4
    description: str = ""
    last_modified: str = ""
    revision: int = 1
    role: str = ""  # the execution role ARN it was created with (recorded; local workers need none)

    @property
    def code_path(self) -> Path:
        return Path(self.code_dir) if self.code_dir else BUILTIN_CODE_DIR

    @property
    def fingerprint(self) -> tuple:
        """What a warm worker depends on: a change recycles the function's workers."""
        return (
            self.handler,
            self.code_dir,
            tuple(sorted(self.environment.items())),
            self.memory_size,
            self.revision,
        )

    def arn(self, settings: Settings, qualifier: str | None = None) -> str:
        return function_arn(settings, self.name, qualifier)


def function_arn(settings: Settings, name: str, qualifier: str | None = None) -> str:
    base = f"arn:aws:lambda:{settings.region}:{settings.account}:function:{name}"
    return f"{base}:{qualifier}" if qualifier else base


def parse_function_name(value: str, qualifier: str | None = None) -> tuple[str, str | None]:
    """Name, ``name:qualifier``, a full or partial ARN (``123456789012:function:name``) -> (name, qual)."""
    text = value.strip()
    parts = text.split(":")
    if text.startswith("arn:"):
        # arn:aws:lambda:region:account:function:name[:qualifier]
        if len(parts) not in (7, 8) or parts[2] != "lambda" or parts[5] != "function":
            raise InvalidParameterValue(f"invalid function ARN {value!r}")
        name, embedded = parts[6], parts[7] if len(parts) == 8 else None
    elif len(parts) >= 3 and parts[1] == "function":
        if len(parts) > 4:
            raise InvalidParameterValue(f"invalid partial function ARN {value!r}")
        name, embedded = parts[2], parts[3] if len(parts) == 4 else None
    elif len(parts) == 2:
        name, embedded = parts
    elif len(parts) == 1:
        name, embedded = text, None
    else:
        raise InvalidParameterValue(f"invalid function name {value!r}")
    if qualifier and embedded and qualifier != embedded:
        raise InvalidParameterValue(
            f"the qualifier in the function name ({embedded}) differs from Qualifier ({qualifier})"
        )
    if not _NAME_RE.match(name):
        raise InvalidParameterValue(f"invalid function name {name!r}: 1-64 letters, digits, '-' or '_'")
    return name, qualifier or embedded


def validate_environment(environment: dict[str, str]) -> dict[str, str]:
    clean: dict[str, str] = {}
    for key, value in environment.items():
        if not _ENV_KEY_RE.match(key):
            raise InvalidParameterValue(f"invalid environment variable name {key!r}")
        clean[key] = str(value)
    reserved = [key for key in clean if key in _RESERVED_ENV]
    if reserved:
        raise InvalidParameterValue(
            "Lambda was unable to configure your environment variables because the environment variables "
            "you have provided contains reserved keys that are currently not supported for modification. "
            f"Reserved keys used in this request: {','.join(reserved)}"
        )
    if len(json.dumps(clean)) > 4096:
        raise InvalidParameterValue("the environment variables exceed Lambda's 4 KB limit")
    return clean


def _validate(config: FunctionConfig) -> None:
    if not _NAME_RE.match(config.name):
        raise InvalidParameterValue(
            f"invalid function name {config.name!r}: 1-64 letters, digits, '-' or '_'"
        )
    if not _HANDLER_RE.match(config.handler):
        raise InvalidParameterValue(f"invalid handler {config.handler!r}: use module.function")
    if not 1 <= config.timeout <= MAX_TIMEOUT_S:
        raise InvalidParameterValue(f"timeout {config.timeout} is outside 1..{MAX_TIMEOUT_S} seconds")
    if not 128 <= config.memory_size <= 10240:
        raise InvalidParameterValue(f"memory size {config.memory_size} is outside 128..10240 MB")
    if not 1 <= config.concurrency <= 64:
        raise InvalidParameterValue(f"concurrency {config.concurrency} is outside 1..64")
    if config.runtime not in PYTHON_RUNTIMES:
        raise InvalidParameterValue(
            f"Runtime {config.runtime!r} is not one the local Lambda runtime can run: it runs Python "
            f"handlers ({', '.join(PYTHON_RUNTIMES)})"
        )
    if config.code_dir is not None and not Path(config.code_dir).is_dir():
        raise InvalidParameterValue(f"code folder {config.code_dir} does not exist")
    validate_environment(config.environment)


def _row_to_config(row) -> FunctionConfig:
    return FunctionConfig(
        name=row["name"],
        handler=row["handler"],
        code_dir=row["code_dir"],
        runtime=row["runtime"],
        environment=json.loads(row["environment"] or "{}"),
        timeout=row["timeout"],
        memory_size=row["memory_size"],
        concurrency=row["concurrency"],
        description=row["description"],
        last_modified=row["last_modified"],
        revision=row["revision"],
        role=row["role"],
    )


class FunctionRegistry:
    """CRUD over ``lambda_functions``. Thread-safe (the Database keeps one connection per thread)."""

    def __init__(self, settings: Settings, db: Database | None = None) -> None:
        self.settings = settings
        self.db = db or Database(settings.db_path)
        self.db.apply(LAMBDA_SCHEMA)

    def get(self, name: str, qualifier: str | None = None) -> FunctionConfig:
        row = self.db.query_one("SELECT * FROM lambda_functions WHERE name = ?", (name,))
        if row is None or (qualifier not in (None, LATEST)):
            raise FunctionNotFound(
                f"Function not found: {function_arn(self.settings, name, qualifier or LATEST)}"
            )
        return _row_to_config(row)

    def list(self) -> list[FunctionConfig]:
        return [_row_to_config(r) for r in self.db.query("SELECT * FROM lambda_functions ORDER BY name")]

    def exists(self, name: str) -> bool:
        return self.db.query_one("SELECT 1 FROM lambda_functions WHERE name = ?", (name,)) is not None

    def register(self, config: FunctionConfig, *, replace_existing: bool = False) -> FunctionConfig:
        """Create a function (or replace it with ``replace_existing``)."""
        if config.code_dir is not None:
            config = replace(config, code_dir=str(Path(config.code_dir).expanduser().resolve()))
        _validate(config)
        with self.db.transaction() as conn:
            row = conn.execute(
                "SELECT revision FROM lambda_functions WHERE name = ?", (config.name,)
            ).fetchone()
            if row is not None and not replace_existing:
                raise ResourceConflict(f"Function already exist: {config.name}")
            revision = (row["revision"] + 1) if row is not None else 1
            conn.execute("DELETE FROM lambda_functions WHERE name = ?", (config.name,))
            conn.execute(
                "INSERT INTO lambda_functions (name, handler, code_dir, runtime, environment, timeout,"
                " memory_size, concurrency, description, last_modified, revision, role)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    config.name,
                    config.handler,
                    config.code_dir,
                    config.runtime,
                    json.dumps(config.environment),
                    config.timeout,
                    config.memory_size,
                    config.concurrency,
                    config.description,
                    _now(),
                    revision,
                    config.role,
                ),
            )
        return self.get(config.name)

    def update(
        self,
        name: str,
        *,
        environment: dict[str, str] | None = None,
        unset_env: list[str] | None = None,
        handler: str | None = None,
        code_dir: str | None = None,
        timeout: int | None = None,
        memory_size: int | None = None,
        concurrency: int | None = None,
        description: str | None = None,
        runtime: str | None = None,
        role: str | None = None,
    ) -> FunctionConfig:
        """Change some settings; ``environment`` is merged into the existing variables."""
        current = self.get(name)
        env = dict(current.environment)
        env.update(environment or {})
        for key in unset_env or []:
            env.pop(key, None)
        updated = replace(
            current,
            environment=env,
            handler=handler or current.handler,
            code_dir=str(Path(code_dir).expanduser().resolve()) if code_dir else current.code_dir,
            timeout=timeout if timeout is not None else current.timeout,
            memory_size=memory_size if memory_size is not None else current.memory_size,
            concurrency=concurrency if concurrency is not None else current.concurrency,
            description=description if description is not None else current.description,
            runtime=runtime or current.runtime,
            role=role if role is not None else current.role,
        )
        return self.register(updated, replace_existing=True)

    def delete(self, name: str) -> None:
        self.get(name)
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM lambda_functions WHERE name = ?", (name,))


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"
