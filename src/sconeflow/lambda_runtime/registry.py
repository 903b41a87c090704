"""The function registry: name, handler, code, environment, timeout, memory and concurrency per function.

Stored in the metadata database (component ``lambda``). The three functions of the Scones Unlimited
workflow are seeded by a migration, so every home has them from first use on; their code is the
built-in handler folder :data:`BUILTIN_CODE_DIR` (``code_dir`` NULL in the table).
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import random
import re
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sconeflow.config import Settings
from sconeflow.db import Database, Migrations
from sconeflow.lambda_runtime.errors import (
    FunctionNotFound,
    InvalidParameterValue,
    PreconditionFailed,
    ResourceConflict,
    ValidationError,
)

BUILTIN_CODE_DIR = Path(__file__).resolve().parent.parent / "lambdas"
LATEST = "$LATEST"
RUNTIME_NAME = "python3.11"
# The Lambda runtimes this local runtime can stand in for: it runs Python handlers with its own interpreter.
PYTHON_RUNTIMES = ("python3.9", "python3.10", "python3.11", "python3.12", "python3.13", "python3.14")
MAX_TIMEOUT_S = 900
# Asynchronous invocation defaults (https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html)
DEFAULT_RETRY_ATTEMPTS = 2
DEFAULT_MAX_EVENT_AGE_S = 21600
_NAME_RE = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_HANDLER_RE = re.compile(r"^[^\s]+\.[A-Za-z_][A-Za-z0-9_]*$")
_ENV_KEY_RE = re.compile(r"^[a-zA-Z][a-zA-Z0-9_]*$")
_VERSION_RE = re.compile(r"^[0-9]+$")
_ALIAS_RE = re.compile(r"^(?![0-9]+$)[a-zA-Z0-9_-]{1,128}$")
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
        # Published versions (immutable snapshots of $LATEST) and aliases. last_version: the highest
        # number ever published, so a deleted version's number is never reused (as on AWS).
        """
        ALTER TABLE lambda_functions ADD COLUMN last_version INTEGER NOT NULL DEFAULT 0;
        CREATE TABLE lambda_versions (
            name TEXT NOT NULL,
            version INTEGER NOT NULL,
            handler TEXT NOT NULL,
            code_dir TEXT,
            runtime TEXT NOT NULL,
            environment TEXT NOT NULL,
            timeout INTEGER NOT NULL,
            memory_size INTEGER NOT NULL,
            description TEXT NOT NULL,
            role TEXT NOT NULL,
            code_sha256 TEXT NOT NULL,
            code_size INTEGER NOT NULL,
            last_modified TEXT NOT NULL,
            PRIMARY KEY (name, version)
        );
        CREATE TABLE lambda_aliases (
            name TEXT NOT NULL,
            alias TEXT NOT NULL,
            function_version TEXT NOT NULL,
            description TEXT NOT NULL DEFAULT '',
            revision INTEGER NOT NULL DEFAULT 1,
            PRIMARY KEY (name, alias)
        );
        """,
        # Weighted aliases (RoutingConfig.AdditionalVersionWeights, a JSON object) and the asynchronous
        # invocation settings per function, version or alias (NULL: Lambda's defaults).
        """
        ALTER TABLE lambda_aliases ADD COLUMN routing TEXT NOT NULL DEFAULT '{}';
        CREATE TABLE lambda_event_invoke_configs (
            name TEXT NOT NULL,
            qualifier TEXT NOT NULL,
            max_retry_attempts INTEGER,
            max_event_age INTEGER,
            destinations TEXT NOT NULL DEFAULT '{}',
            last_modified REAL NOT NULL,
            PRIMARY KEY (name, qualifier)
        );
        """,
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
    version: str = LATEST  # "$LATEST" or a published version's number ("1", "2", ...)
    code_sha256: str = ""  # a published version's CodeSha256/CodeSize, fixed when it was published
    code_size: int = 0

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
            self.version,
        )

    @property
    def revision_id(self) -> str:
        """Lambda's RevisionId: changes whenever the function (or this version) changes."""
        sha = hashlib.sha256(repr((self.name, *self.fingerprint)).encode()).digest()
        return str(uuid.UUID(bytes=sha[:16]))

    def code_facts(self) -> tuple[str, int]:
        """(CodeSha256, CodeSize): recorded for a published version, computed for $LATEST."""
        if self.version != LATEST and self.code_sha256:
            return self.code_sha256, self.code_size
        from sconeflow.lambda_runtime.deploy import package_facts

        return package_facts(self.code_path)

    def arn(self, settings: Settings, qualifier: str | None = None) -> str:
        return function_arn(settings, self.name, qualifier)


@dataclass(frozen=True)
class AliasConfig:
    function: str
    name: str
    function_version: str
    description: str = ""
    revision: int = 1
    # RoutingConfig.AdditionalVersionWeights: {version: weight}, at most one entry (weight in [0, 1))
    routing: dict[str, float] = field(default_factory=dict)

    @property
    def revision_id(self) -> str:
        key = repr(
            (self.function, self.name, self.function_version, self.description, self.revision, self.routing)
        )
        return str(uuid.UUID(bytes=hashlib.sha256(key.encode()).digest()[:16]))

    def pick_version(self, draw: float | None = None) -> str:
        """The version an invocation of the alias runs: an additional version with its weight's
        probability, else the alias's FunctionVersion. ``draw``: a number in [0, 1) (default random)."""
        if not self.routing:
            return self.function_version
        value = random.random() if draw is None else draw
        for version, weight in self.routing.items():
            if value < weight:
                return version
            value -= weight
        return self.function_version

    def versions(self) -> list[str]:
        """Every version the alias can run."""
        return [self.function_version, *self.routing]


@dataclass(frozen=True)
class EventInvokeConfig:
    """The asynchronous invocation settings of a function, version or alias (None: Lambda's default)."""

    function: str
    qualifier: str  # "$LATEST", a version number or an alias
    max_retry_attempts: int | None = None
    max_event_age: int | None = None
    destinations: dict[str, Any] = field(default_factory=dict)
    last_modified: float = 0.0

    @property
    def retry_attempts(self) -> int:
        return DEFAULT_RETRY_ATTEMPTS if self.max_retry_attempts is None else self.max_retry_attempts

    @property
    def event_age(self) -> int:
        return DEFAULT_MAX_EVENT_AGE_S if self.max_event_age is None else self.max_event_age


def function_arn(settings: Settings, name: str, qualifier: str | None = None) -> str:
    base = f"arn:aws:lambda:{settings.region}:{settings.account}:function:{name}"
    return f"{base}:{qualifier}" if qualifier else base


def parse_function_name(
    value: str, qualifier: str | None = None, *, settings: Settings | None = None
) -> tuple[str, str | None]:
    """Name, ``name:qualifier``, a full or partial ARN (``123456789012:function:name``) -> (name, qual).

    With ``settings``, an ARN naming another region or account is not this home's function: it is
    :class:`FunctionNotFound`, with the message Lambda gives (the local account and region are
    ``settings.account`` / ``settings.region``).
    """
    text = value.strip()
    parts = text.split(":")
    region = account = None
    if text.startswith("arn:"):
        # arn:aws:lambda:region:account:function:name[:qualifier]
        if len(parts) not in (7, 8) or parts[2] != "lambda" or parts[5] != "function":
            raise InvalidParameterValue(f"invalid function ARN {value!r}")
        name, embedded = parts[6], parts[7] if len(parts) == 8 else None
        region, account = parts[3], parts[4]
    elif len(parts) >= 3 and parts[1] == "function":
        if len(parts) > 4:
            raise InvalidParameterValue(f"invalid partial function ARN {value!r}")
        name, embedded = parts[2], parts[3] if len(parts) == 4 else None
        account = parts[0]
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
    qual = qualifier or embedded
    if settings is not None:
        if region is not None and region != settings.region:
            raise FunctionNotFound(
                f"Functions from '{region}' are not reachable in this region ('{settings.region}')"
            )
        if account is not None and account != settings.account:
            arn = f"arn:aws:lambda:{region or settings.region}:{account}:function:{name}:{qual or LATEST}"
            raise FunctionNotFound(f"Function not found: {arn}")
    return name, qual


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


def _version_to_config(row, concurrency: int) -> FunctionConfig:
    """A published version's row: its own code and configuration, the function's concurrency."""
    return replace(
        _row_to_config(row, concurrency=concurrency, revision=0),
        version=str(row["version"]),
        code_sha256=row["code_sha256"],
        code_size=row["code_size"],
    )


def _row_to_alias(row) -> AliasConfig:
    return AliasConfig(
        function=row["name"],
        name=row["alias"],
        function_version=row["function_version"],
        description=row["description"],
        revision=row["revision"],
        routing={str(k): float(v) for k, v in json.loads(row["routing"] or "{}").items()},
    )


def _row_to_event_config(row) -> EventInvokeConfig:
    return EventInvokeConfig(
        function=row["name"],
        qualifier=row["qualifier"],
        max_retry_attempts=row["max_retry_attempts"],
        max_event_age=row["max_event_age"],
        destinations=json.loads(row["destinations"] or "{}"),
        last_modified=row["last_modified"],
    )


def validate_routing(weights: Any) -> dict[str, float]:
    """RoutingConfig.AdditionalVersionWeights as AWS constrains it: version-number keys, weights in
    [0, 1] (the API model), at most one additional version, whose weight is below 1."""
    if weights is None:
        return {}
    if not isinstance(weights, dict):
        raise ValidationError(
            "1 validation error detected: Value at 'routingConfig.additionalVersionWeights' failed to "
            "satisfy constraint: Member must be a map of version to weight"
        )
    clean: dict[str, float] = {}
    for key, value in weights.items():
        version = str(key)
        try:
            weight = float(value)
        except (TypeError, ValueError):
            weight = math.nan
        text = "{" + ", ".join(f"{k}={v}" for k, v in weights.items()) + "}"
        if not _VERSION_RE.match(version) or len(version) > 1024:
            raise ValidationError(
                f"1 validation error detected: Value '{text}' at 'routingConfig.additionalVersionWeights' "
                "failed to satisfy constraint: Map keys must satisfy constraint: [Member must have length "
                "less than or equal to 1024, Member must have length greater than or equal to 1, Member "
                "must satisfy regular expression pattern: [0-9]+]"
            )
        if not 0.0 <= weight <= 1.0:
            raise ValidationError(
                f"1 validation error detected: Value '{text}' at 'routingConfig.additionalVersionWeights' "
                "failed to satisfy constraint: Map value must satisfy constraint: [Member must have value "
                "less than or equal to 1.0, Member must have value greater than or equal to 0.0]"
            )
        clean[version] = weight
    if len(clean) > 1:
        raise InvalidParameterValue(
            f"Number of items in AdditionalVersionWeights cannot be greater than 1 (got {len(clean)}): "
            "an alias routes to its FunctionVersion and at most one additional version"
        )
    for version, weight in clean.items():
        if weight >= 1.0:
            raise InvalidParameterValue(
                f"Invalid weight {weight} for version {version}: the additional version's weight must be "
                "below 1.0 (the alias's FunctionVersion gets the rest)"
            )
    return clean


def _same_published_content(a: FunctionConfig, b: FunctionConfig) -> bool:
    """Whether publishing ``a`` would only repeat version ``b`` (code and configuration unchanged)."""
    keys = ("handler", "runtime", "environment", "timeout", "memory_size", "role")
    return a.code_facts()[0] == b.code_facts()[0] and all(getattr(a, key) == getattr(b, key) for key in keys)


def _row_to_config(row, *, concurrency: int | None = None, revision: int | None = None) -> FunctionConfig:
    """``$LATEST`` from its ``lambda_functions`` row (a version row gives the two fields it lacks)."""
    return FunctionConfig(
        name=row["name"],
        handler=row["handler"],
        code_dir=row["code_dir"],
        runtime=row["runtime"],
        environment=json.loads(row["environment"] or "{}"),
        timeout=row["timeout"],
        memory_size=row["memory_size"],
        concurrency=row["concurrency"] if concurrency is None else concurrency,
        description=row["description"],
        last_modified=row["last_modified"],
        revision=row["revision"] if revision is None else revision,
        role=row["role"],
    )


class FunctionRegistry:
    """CRUD over ``lambda_functions``. Thread-safe (the Database keeps one connection per thread)."""

    def __init__(self, settings: Settings, db: Database | None = None) -> None:
        self.settings = settings
        self.db = db or Database(settings.db_path)
        self.db.apply(LAMBDA_SCHEMA)

    def get(self, name: str, qualifier: str | None = None) -> FunctionConfig:
        """$LATEST (no qualifier, or ``$LATEST``), a published version (``"3"``) or what an alias
        points to; the config's ``version`` names the version it is."""
        row = self.db.query_one("SELECT * FROM lambda_functions WHERE name = ?", (name,))
        if row is not None and qualifier in (None, LATEST):
            return _row_to_config(row)
        if row is not None and qualifier and _VERSION_RE.match(qualifier):
            version = self.db.query_one(
                "SELECT * FROM lambda_versions WHERE name = ? AND version = ?", (name, int(qualifier))
            )
            if version is not None:
                return _version_to_config(version, row["concurrency"])
        elif row is not None and qualifier and _ALIAS_RE.match(qualifier):
            alias = self.db.query_one(
                "SELECT * FROM lambda_aliases WHERE name = ? AND alias = ?", (name, qualifier)
            )
            if alias is not None:  # a weighted alias picks one of its two versions per call
                return self.get(name, _row_to_alias(alias).pick_version())
        raise FunctionNotFound(
            f"Function not found: {function_arn(self.settings, name, qualifier or LATEST)}"
        )

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
            values = (
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
                config.name,
            )
            if row is None:
                conn.execute(
                    "INSERT INTO lambda_functions (handler, code_dir, runtime, environment, timeout,"
                    " memory_size, concurrency, description, last_modified, revision, role, name)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    values,
                )
            else:  # $LATEST changes; the published versions and aliases stay
                conn.execute(
                    "UPDATE lambda_functions SET handler = ?, code_dir = ?, runtime = ?, environment = ?,"
                    " timeout = ?, memory_size = ?, concurrency = ?, description = ?, last_modified = ?,"
                    " revision = ?, role = ? WHERE name = ?",
                    values,
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
        """Delete the function with all its versions and aliases."""
        self.get(name)
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM lambda_functions WHERE name = ?", (name,))
            conn.execute("DELETE FROM lambda_versions WHERE name = ?", (name,))
            conn.execute("DELETE FROM lambda_aliases WHERE name = ?", (name,))
            conn.execute("DELETE FROM lambda_event_invoke_configs WHERE name = ?", (name,))

    # -- versions --------------------------------------------------------------------------------
    def check_revision(self, name: str, revision_id: str | None) -> FunctionConfig:
        """$LATEST, after checking ``revision_id`` (when given) against its RevisionId."""
        current = self.get(name)
        if revision_id and revision_id != current.revision_id:
            raise PreconditionFailed(_REVISION_MISMATCH)
        return current

    def publish_version(
        self,
        name: str,
        *,
        description: str | None = None,
        code_sha256: str | None = None,
        revision_id: str | None = None,
    ) -> FunctionConfig:
        """Publish $LATEST as the next numbered version (1, 2, ...), as PublishVersion does.

        An unchanged $LATEST (code and configuration as in the newest version) publishes nothing and
        returns the newest version. Code registered as a folder outside ``<home>/lambda-code`` is copied
        (the version must not change when the folder does); unpacked zips are immutable already.
        """
        current = self.check_revision(name, revision_id)
        sha, size = current.code_facts()
        if code_sha256 is not None and code_sha256 != sha:
            raise InvalidParameterValue(
                f"CodeSHA256 ({code_sha256}) is different from current CodeSHA256 in $LATEST ({sha}). "
                "Please try again with the CodeSHA256 in $LATEST."
            )
        newest = self.db.query_one(
            "SELECT * FROM lambda_versions WHERE name = ? ORDER BY version DESC LIMIT 1", (name,)
        )
        if newest is not None:
            published = _version_to_config(newest, current.concurrency)
            if _same_published_content(current, published):
                return published
        code_dir = self._snapshot_code(current, sha)
        with self.db.transaction() as conn:
            row = conn.execute(
                "SELECT revision, last_version FROM lambda_functions WHERE name = ?", (name,)
            ).fetchone()
            if row is None:
                raise FunctionNotFound(f"Function not found: {function_arn(self.settings, name, LATEST)}")
            if row["revision"] != current.revision:
                raise ResourceConflict(
                    f"The function {name} was updated while its version was being published; try again"
                )
            number = row["last_version"] + 1
            conn.execute(
                "INSERT INTO lambda_versions (name, version, handler, code_dir, runtime, environment,"
                " timeout, memory_size, description, role, code_sha256, code_size, last_modified)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    name,
                    number,
                    current.handler,
                    code_dir,
                    current.runtime,
                    json.dumps(current.environment),
                    current.timeout,
                    current.memory_size,
                    current.description if description is None else description,
                    current.role,
                    sha,
                    size,
                    _now(),
                ),
            )
            conn.execute("UPDATE lambda_functions SET last_version = ? WHERE name = ?", (number, name))
        return self.get(name, str(number))

    def _snapshot_code(self, config: FunctionConfig, sha: str) -> str | None:
        if config.code_dir is None:  # the built-in handlers ship with sconeflow
            return None
        from sconeflow.lambda_runtime.deploy import code_root

        source = Path(config.code_dir)
        root = code_root(self.settings)
        if source.resolve().is_relative_to(root.resolve()):  # an unpacked zip: never changed in place
            return config.code_dir
        digest = base64.b64decode(sha).hex()[:16]
        target = root / config.name / f"published-{digest}"
        if not target.is_dir():
            target.parent.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=".publish-", dir=target.parent))
            try:
                shutil.copytree(
                    source, staging / "code", ignore=shutil.ignore_patterns("__pycache__"), symlinks=True
                )
                (staging / "code").replace(target)
            except FileExistsError:
                pass  # published concurrently: the same content
            except OSError as exc:
                raise InvalidParameterValue(f"cannot copy the code folder {source}: {exc}") from exc
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        return str(target)

    def list_versions(self, name: str) -> list[FunctionConfig]:
        """$LATEST first, then the published versions in order."""
        latest = self.get(name)
        rows = self.db.query("SELECT * FROM lambda_versions WHERE name = ? ORDER BY version", (name,))
        return [latest, *(_version_to_config(r, latest.concurrency) for r in rows)]

    def delete_version(self, name: str, version: str) -> None:
        """Delete one published version (refused while an alias points to it)."""
        if not _VERSION_RE.match(version):  # an alias is deleted with DeleteAlias, not as a version
            raise FunctionNotFound(f"Function not found: {function_arn(self.settings, name, version)}")
        config = self.get(name, version)
        with self.db.transaction() as conn:
            aliases = [
                r["alias"]
                for r in conn.execute("SELECT * FROM lambda_aliases WHERE name = ? ORDER BY alias", (name,))
                if config.version in _row_to_alias(r).versions()  # also a weighted alias's second version
            ]
            if aliases:
                raise ResourceConflict(
                    f"Unable to delete version because the following aliases reference it: {aliases}"
                )
            conn.execute(
                "DELETE FROM lambda_versions WHERE name = ? AND version = ?", (name, int(config.version))
            )
            conn.execute(
                "DELETE FROM lambda_event_invoke_configs WHERE name = ? AND qualifier = ?",
                (name, config.version),
            )

    # -- aliases ---------------------------------------------------------------------------------
    def _alias_arn(self, name: str, alias: str) -> str:
        return function_arn(self.settings, name, alias)

    def _check_alias_target(self, name: str, function_version: str) -> None:
        if function_version != LATEST and not _VERSION_RE.match(function_version):
            raise InvalidParameterValue(
                f"FunctionVersion {function_version!r} is not $LATEST or a version number"
            )
        self.get(name, function_version)  # FunctionNotFound: ...:function:name:7

    def _check_routing(self, name: str, function_version: str, routing: dict[str, float]) -> None:
        """Both versions of a weighted alias must be published versions of this function."""
        if not routing:
            return
        if function_version == LATEST:
            raise InvalidParameterValue(
                "$LATEST is not supported for an alias pointing to more than 1 version"
            )
        for version in routing:
            if version == function_version:
                raise InvalidParameterValue(
                    f"Invalid function version {version}. Function version {version} is already included "
                    "in routing configuration."
                )
            self.get(name, version)  # FunctionNotFound: ...:function:name:7

    def get_alias(self, name: str, alias: str) -> AliasConfig:
        self.get(name)
        row = self.db.query_one("SELECT * FROM lambda_aliases WHERE name = ? AND alias = ?", (name, alias))
        if row is None:
            raise FunctionNotFound(f"Cannot find alias arn: {self._alias_arn(name, alias)}")
        return _row_to_alias(row)

    def list_aliases(self, name: str, function_version: str | None = None) -> list[AliasConfig]:
        self.get(name)
        rows = self.db.query("SELECT * FROM lambda_aliases WHERE name = ? ORDER BY alias", (name,))
        aliases = [_row_to_alias(r) for r in rows]
        if function_version:  # the aliases that invoke that version (a weighted one's second too)
            aliases = [a for a in aliases if function_version in a.versions()]
        return aliases

    def create_alias(
        self,
        name: str,
        alias: str,
        function_version: str,
        description: str = "",
        routing: dict[str, float] | None = None,
    ) -> AliasConfig:
        if not _ALIAS_RE.match(alias):
            raise InvalidParameterValue(
                f"invalid alias name {alias!r}: 1-128 letters, digits, '-' or '_', not only digits"
            )
        routing = validate_routing(routing)
        self._check_alias_target(name, function_version)
        self._check_routing(name, function_version, routing)
        with self.db.transaction() as conn:
            exists = conn.execute(
                "SELECT 1 FROM lambda_aliases WHERE name = ? AND alias = ?", (name, alias)
            ).fetchone()
            if exists is not None:
                raise ResourceConflict(f"Alias already exists: {self._alias_arn(name, alias)}")
            conn.execute(
                "INSERT INTO lambda_aliases (name, alias, function_version, description, routing)"
                " VALUES (?, ?, ?, ?, ?)",
                (name, alias, function_version, description, json.dumps(routing)),
            )
        return self.get_alias(name, alias)

    def update_alias(
        self,
        name: str,
        alias: str,
        *,
        function_version: str | None = None,
        description: str | None = None,
        revision_id: str | None = None,
        routing: dict[str, float] | None = None,
    ) -> AliasConfig:
        """Change the alias; ``routing`` None keeps its weights, ``{}`` removes them."""
        current = self.get_alias(name, alias)
        if revision_id and revision_id != current.revision_id:
            raise PreconditionFailed(_REVISION_MISMATCH)
        new_routing = current.routing if routing is None else validate_routing(routing)
        new_version = current.function_version if function_version is None else function_version
        if function_version is not None:
            self._check_alias_target(name, function_version)
        self._check_routing(name, new_version, new_routing)
        with self.db.transaction() as conn:
            conn.execute(
                "UPDATE lambda_aliases SET function_version = ?, description = ?, routing = ?,"
                " revision = revision + 1 WHERE name = ? AND alias = ?",
                (
                    new_version,
                    current.description if description is None else description,
                    json.dumps(new_routing),
                    name,
                    alias,
                ),
            )
        return self.get_alias(name, alias)

    def delete_alias(self, name: str, alias: str) -> None:
        self.get_alias(name, alias)
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM lambda_aliases WHERE name = ? AND alias = ?", (name, alias))
            conn.execute(
                "DELETE FROM lambda_event_invoke_configs WHERE name = ? AND qualifier = ?", (name, alias)
            )

    # -- asynchronous invocation settings (EventInvokeConfig) -----------------------------------
    def _event_qualifier(self, name: str, qualifier: str | None) -> str:
        """The qualifier a configuration is kept under; the function, version or alias must exist."""
        qualifier = qualifier or LATEST
        if qualifier != LATEST and not _VERSION_RE.match(qualifier):
            self.get_alias(name, qualifier)
        else:
            self.get(name, qualifier)
        return qualifier

    def find_event_config(self, name: str, qualifier: str | None) -> EventInvokeConfig | None:
        row = self.db.query_one(
            "SELECT * FROM lambda_event_invoke_configs WHERE name = ? AND qualifier = ?",
            (name, qualifier or LATEST),
        )
        return _row_to_event_config(row) if row is not None else None

    def get_event_config(self, name: str, qualifier: str | None) -> EventInvokeConfig:
        qualifier = self._event_qualifier(name, qualifier)
        found = self.find_event_config(name, qualifier)
        if found is None:
            raise FunctionNotFound(
                f"The function {function_arn(self.settings, name, qualifier)} doesn't have an "
                "EventInvokeConfig"
            )
        return found

    def list_event_configs(self, name: str) -> list[EventInvokeConfig]:
        self.get(name)
        rows = self.db.query(
            "SELECT * FROM lambda_event_invoke_configs WHERE name = ? ORDER BY last_modified, qualifier",
            (name,),
        )
        return [_row_to_event_config(r) for r in rows]

    def put_event_config(
        self,
        name: str,
        qualifier: str | None,
        *,
        max_retry_attempts: Any = None,
        max_event_age: Any = None,
        destinations: dict[str, Any] | None = None,
        merge: bool = False,
    ) -> EventInvokeConfig:
        """PutFunctionEventInvokeConfig (replaces every setting) or, with ``merge``,
        UpdateFunctionEventInvokeConfig (changes the settings given; the configuration must exist)."""
        qualifier = self._event_qualifier(name, qualifier)
        retries = _bounded_int(max_retry_attempts, "maximumRetryAttempts", 0, 2)
        age = _bounded_int(max_event_age, "maximumEventAgeInSeconds", 60, 21600)
        with self.db.transaction() as conn:
            row = conn.execute(
                "SELECT * FROM lambda_event_invoke_configs WHERE name = ? AND qualifier = ?",
                (name, qualifier),
            ).fetchone()
            if merge and row is not None:
                current = _row_to_event_config(row)
                retries = current.max_retry_attempts if retries is None else retries
                age = current.max_event_age if age is None else age
                if destinations is None:
                    destinations = current.destinations
                else:
                    destinations = {**current.destinations, **destinations}
            conn.execute(
                "INSERT OR REPLACE INTO lambda_event_invoke_configs (name, qualifier, max_retry_attempts,"
                " max_event_age, destinations, last_modified) VALUES (?, ?, ?, ?, ?, ?)",
                (name, qualifier, retries, age, json.dumps(destinations or {}), time.time()),
            )
        return self.get_event_config(name, qualifier)

    def delete_event_config(self, name: str, qualifier: str | None) -> None:
        config = self.get_event_config(name, qualifier)
        with self.db.transaction() as conn:
            conn.execute(
                "DELETE FROM lambda_event_invoke_configs WHERE name = ? AND qualifier = ?",
                (name, config.qualifier),
            )


def _bounded_int(value: Any, field_name: str, low: int, high: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(
            f"1 validation error detected: Value '{value}' at '{field_name}' failed to satisfy "
            "constraint: Member must be an integer"
        )
    if value < low:
        raise ValidationError(
            f"1 validation error detected: Value '{value}' at '{field_name}' failed to satisfy "
            f"constraint: Member must have value greater than or equal to {low}"
        )
    if value > high:
        raise ValidationError(
            f"1 validation error detected: Value '{value}' at '{field_name}' failed to satisfy "
            f"constraint: Member must have value less than or equal to {high}"
        )
    return value


_REVISION_MISMATCH = (
    "The Revision Id provided does not match the latest Revision Id. "
    "Call the GetFunction/GetAlias API to retrieve the latest Revision Id"
)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"
