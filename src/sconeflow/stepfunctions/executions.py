"""Persistence of state machines, executions and their history in the metadata database.

Tables (component ``stepfunctions``):

* ``sfn_state_machines``: one row per state machine (name, ARN, type, role, current revision, the
  local ``--function-map`` renames).
* ``sfn_state_machine_versions``: every definition a state machine ever had (revision 1, 2, ...);
  executions remember the revision they ran.
* ``sfn_executions``: status, input (verbatim), output, error, cause, dates, and the runner's identity
  (host, pid, token) plus a heartbeat, so a dead runner is detected instead of showing RUNNING forever.
* ``sfn_history``: the AWS history events of each execution (id, previousEventId, type, timestamp and
  the ``<x>EventDetails`` object as JSON).
* ``sfn_tags``: the tags of each state machine (key, value), in the order they were first set.
* ``sfn_published_versions``: the versions published from revisions (AWS numbers them 1, 2, 3 ... per
  state machine, never reusing a number), with their description.
* ``sfn_aliases``: state machine aliases and their routing configuration (one or two weighted versions).

This module holds no threads and no engine: :mod:`sconeflow.stepfunctions.service` drives it.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sconeflow.config import Settings
from sconeflow.db import Database, Migrations
from sconeflow.errors import SconeflowError

log = logging.getLogger(__name__)

STATUSES = ("RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")
TYPES = ("STANDARD", "EXPRESS")

SCHEMA = Migrations(
    "stepfunctions",
    [
        """
        CREATE TABLE sfn_state_machines (
            arn TEXT PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            type TEXT NOT NULL,
            role_arn TEXT NOT NULL,
            revision INTEGER NOT NULL,
            function_map TEXT NOT NULL DEFAULT '{}',
            created REAL NOT NULL,
            updated REAL NOT NULL
        );
        CREATE TABLE sfn_state_machine_versions (
            state_machine_arn TEXT NOT NULL REFERENCES sfn_state_machines(arn) ON DELETE CASCADE,
            revision INTEGER NOT NULL,
            revision_id TEXT NOT NULL,
            definition TEXT NOT NULL,
            created REAL NOT NULL,
            PRIMARY KEY (state_machine_arn, revision)
        );
        CREATE TABLE sfn_executions (
            arn TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            state_machine_arn TEXT NOT NULL,
            state_machine_name TEXT NOT NULL,
            revision INTEGER NOT NULL,
            kind TEXT NOT NULL DEFAULT 'STANDARD',
            status TEXT NOT NULL,
            input TEXT NOT NULL,
            output TEXT,
            error TEXT,
            cause TEXT,
            start_date REAL NOT NULL,
            stop_date REAL,
            runner_host TEXT,
            runner_pid INTEGER,
            runner_token TEXT,
            heartbeat REAL,
            stop_error TEXT,
            stop_cause TEXT,
            stop_requested INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX sfn_executions_by_machine ON sfn_executions(state_machine_arn, start_date);
        CREATE INDEX sfn_executions_by_status ON sfn_executions(status);
        CREATE TABLE sfn_history (
            execution_arn TEXT NOT NULL REFERENCES sfn_executions(arn) ON DELETE CASCADE,
            id INTEGER NOT NULL,
            previous_event_id INTEGER NOT NULL,
            type TEXT NOT NULL,
            timestamp REAL NOT NULL,
            details TEXT,
            PRIMARY KEY (execution_arn, id)
        );
        """,
        # The revision an execution ran, kept with the execution when its state machine is deleted:
        # AWS still describes (and the console still draws) executions of a deleted state machine.
        "ALTER TABLE sfn_executions ADD COLUMN machine_snapshot TEXT;",
        # TagResource / UntagResource / ListTagsForResource (and CreateStateMachine's tags)
        """
        CREATE TABLE sfn_tags (
            resource_arn TEXT NOT NULL,
            key TEXT NOT NULL,
            value TEXT NOT NULL,
            PRIMARY KEY (resource_arn, key)
        );
        """,
        # The version ARN (``<machine ARN>:<n>``) an execution was started through, as AWS records it:
        # DescribeExecution returns it, and ListExecutions given that version ARN lists only these.
        "ALTER TABLE sfn_executions ADD COLUMN state_machine_version_arn TEXT;",
        # Versions as AWS numbers them: only published revisions get a version (1, 2, 3 ... per state
        # machine; ``last_version`` keeps a deleted number from being reused), and aliases routing
        # StartExecution to one or two versions. Before this migration every revision was addressable
        # as ``<machine ARN>:<revision>``: those revisions become published versions with that number,
        # so version ARNs already handed out (and executions started through them) stay valid.
        """
        CREATE TABLE sfn_published_versions (
            state_machine_arn TEXT NOT NULL REFERENCES sfn_state_machines(arn) ON DELETE CASCADE,
            version INTEGER NOT NULL,
            revision INTEGER NOT NULL,
            description TEXT,
            created REAL NOT NULL,
            PRIMARY KEY (state_machine_arn, version)
        );
        CREATE TABLE sfn_aliases (
            arn TEXT PRIMARY KEY,
            state_machine_arn TEXT NOT NULL REFERENCES sfn_state_machines(arn) ON DELETE CASCADE,
            name TEXT NOT NULL,
            description TEXT,
            routing TEXT NOT NULL,
            created REAL NOT NULL,
            updated REAL NOT NULL
        );
        ALTER TABLE sfn_state_machines ADD COLUMN last_version INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE sfn_executions ADD COLUMN state_machine_alias_arn TEXT;
        INSERT INTO sfn_published_versions (state_machine_arn, version, revision, description, created)
            SELECT state_machine_arn, revision, revision, NULL, created FROM sfn_state_machine_versions;
        UPDATE sfn_state_machines SET last_version = revision;
        """,
    ],
)


class StateMachineDoesNotExist(SconeflowError):
    """No state machine has that name or ARN."""


class StateMachineAlreadyExists(SconeflowError):
    """A state machine with that name exists with a different definition."""


class ExecutionDoesNotExist(SconeflowError):
    """No execution has that ARN or name."""


class ExecutionAlreadyExists(SconeflowError):
    """An execution with that name exists already for the state machine."""


class AmbiguousExecution(SconeflowError):
    """An execution name matches several executions; give its ARN."""


class ConflictException(SconeflowError):
    """A version or alias operation conflicts with the current state (AWS's ConflictException)."""


class ServiceQuotaExceeded(SconeflowError):
    """More than 1000 versions or 100 aliases for one state machine."""


MAX_VERSIONS = 1000  # AWS: versions per state machine
MAX_ALIASES = 100  # AWS: aliases per state machine


@dataclass(frozen=True)
class VersionRecord:
    """A published version: ``<machine ARN>:<version>`` names the immutable ``revision``."""

    machine_arn: str
    version: int
    revision: int
    description: str | None
    created: datetime

    @property
    def arn(self) -> str:
        return f"{self.machine_arn}:{self.version}"


@dataclass(frozen=True)
class AliasRecord:
    arn: str  # <machine ARN>:<alias name>
    machine_arn: str
    name: str
    description: str | None
    routing: list[tuple[str, int]]  # (version ARN, weight), weights summing to 100
    created: datetime
    updated: datetime


@dataclass(frozen=True)
class StateMachineRecord:
    arn: str
    name: str
    type: str
    role_arn: str
    revision: int
    revision_id: str
    definition: str
    function_map: dict[str, str]
    created: datetime
    updated: datetime


@dataclass(frozen=True)
class ExecutionRecord:
    arn: str
    name: str
    state_machine_arn: str
    state_machine_name: str
    revision: int
    kind: str
    status: str
    input: str
    output: str | None
    error: str | None
    cause: str | None
    start_date: datetime
    stop_date: datetime | None
    runner_host: str | None
    runner_pid: int | None
    runner_token: str | None
    heartbeat: float | None
    stop_requested: bool
    stop_error: str | None
    stop_cause: str | None
    version_arn: str | None = None  # set when started through a version ARN (``...:stateMachine:x:1``)
    alias_arn: str | None = None  # set when started through an alias ARN (``...:stateMachine:x:PROD``)


def to_datetime(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, tz=UTC)


def to_epoch(value: datetime | float | int | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.timestamp()
    return float(value)


def _row_to_machine(row: sqlite3.Row) -> StateMachineRecord:
    return StateMachineRecord(
        arn=row["arn"],
        name=row["name"],
        type=row["type"],
        role_arn=row["role_arn"],
        revision=row["revision"],
        revision_id=row["revision_id"],
        definition=row["definition"],
        function_map=json.loads(row["function_map"] or "{}"),
        created=to_datetime(row["created"]),  # type: ignore[arg-type]
        updated=to_datetime(row["updated"]),  # type: ignore[arg-type]
    )


def _machine_snapshot(machine: StateMachineRecord) -> str:
    doc = {**machine.__dict__, "created": to_epoch(machine.created), "updated": to_epoch(machine.updated)}
    return json.dumps(doc, sort_keys=True)


def _machine_from_snapshot(text: str) -> StateMachineRecord:
    doc = json.loads(text)
    doc["created"], doc["updated"] = to_datetime(doc["created"]), to_datetime(doc["updated"])
    return StateMachineRecord(**doc)


def _row_to_execution(row: sqlite3.Row) -> ExecutionRecord:
    return ExecutionRecord(
        arn=row["arn"],
        name=row["name"],
        state_machine_arn=row["state_machine_arn"],
        state_machine_name=row["state_machine_name"],
        revision=row["revision"],
        kind=row["kind"],
        status=row["status"],
        input=row["input"],
        output=row["output"],
        error=row["error"],
        cause=row["cause"],
        start_date=to_datetime(row["start_date"]),  # type: ignore[arg-type]
        stop_date=to_datetime(row["stop_date"]),
        runner_host=row["runner_host"],
        runner_pid=row["runner_pid"],
        runner_token=row["runner_token"],
        heartbeat=row["heartbeat"],
        stop_requested=bool(row["stop_requested"]),
        stop_error=row["stop_error"],
        stop_cause=row["stop_cause"],
        version_arn=row["state_machine_version_arn"],
        alias_arn=row["state_machine_alias_arn"],
    )


def _row_to_version(row: sqlite3.Row) -> VersionRecord:
    return VersionRecord(
        machine_arn=row["state_machine_arn"],
        version=row["version"],
        revision=row["revision"],
        description=row["description"],
        created=to_datetime(row["created"]),  # type: ignore[arg-type]
    )


def _row_to_alias(row: sqlite3.Row) -> AliasRecord:
    return AliasRecord(
        arn=row["arn"],
        machine_arn=row["state_machine_arn"],
        name=row["name"],
        description=row["description"],
        routing=[(arn, int(weight)) for arn, weight in json.loads(row["routing"])],
        created=to_datetime(row["created"]),  # type: ignore[arg-type]
        updated=to_datetime(row["updated"]),  # type: ignore[arg-type]
    )


def version_arn_of(ref: str) -> tuple[str, int] | None:
    """``(machine ARN, version)`` when ``ref`` is a version ARN (``arn:...:stateMachine:x:3``), else None."""
    if not ref.startswith("arn:"):
        return None
    base, _, suffix = ref.rpartition(":")
    if not suffix.isdigit() or base.count(":") != 6 or base.split(":")[5] != "stateMachine":
        return None
    return base, int(suffix)


_MACHINE_SELECT = (
    "SELECT m.*, v.definition, v.revision_id FROM sfn_state_machines m "
    "JOIN sfn_state_machine_versions v ON v.state_machine_arn = m.arn AND v.revision = m.revision"
)


EventRow = tuple[int, int, str, float, str | None]


def event_to_row(event: dict[str, Any]) -> EventRow:
    """Split an AWS history event into (id, previousEventId, type, epoch timestamp, details JSON)."""
    details = {k: v for k, v in event.items() if k.endswith("EventDetails")}
    details_json = json.dumps(details, separators=(",", ":"), default=str) if details else None
    ts = to_epoch(event.get("timestamp"))
    return (
        int(event["id"]),
        int(event.get("previousEventId", 0) or 0),
        str(event["type"]),
        ts if ts is not None else datetime.now(UTC).timestamp(),
        details_json,
    )


def row_to_event(row: sqlite3.Row) -> dict[str, Any]:
    event: dict[str, Any] = {
        "timestamp": to_datetime(row["timestamp"]),
        "type": row["type"],
        "id": row["id"],
        "previousEventId": row["previous_event_id"],
    }
    if row["details"]:
        event.update(json.loads(row["details"]))
    return event


class ExecutionStore:
    """Typed reads and writes of the ``stepfunctions`` tables."""

    def __init__(self, settings: Settings, db: Database | None = None) -> None:
        self.settings = settings
        self.db = db or Database(settings.db_path)
        self.db.apply(SCHEMA)

    # -- state machines ---------------------------------------------------------------------
    def get_machine(self, ref: str) -> StateMachineRecord:
        """A state machine by ARN or name; a version ARN (``<ARN>:<n>``) gives the revision that
        published version ``n`` names (versions are numbered as AWS does, not by revision)."""
        row = self.db.query_one(_MACHINE_SELECT + " WHERE m.arn = ? OR m.name = ?", (ref, ref))
        if row is None and ref.startswith("arn:"):
            base, _, suffix = ref.rpartition(":")
            if suffix.isdigit():
                version = self.get_version(base, int(suffix))
                if version is not None:
                    return self.get_machine_revision(base, version.revision)
        if row is None:
            raise StateMachineDoesNotExist(f"State Machine Does Not Exist: '{ref}'")
        return _row_to_machine(row)

    # -- versions and aliases -----------------------------------------------------------------
    def get_version(self, machine_arn: str, version: int) -> VersionRecord | None:
        row = self.db.query_one(
            "SELECT * FROM sfn_published_versions WHERE state_machine_arn = ? AND version = ?",
            (machine_arn, version),
        )
        return _row_to_version(row) if row else None

    def list_versions(self, machine_arn: str) -> list[VersionRecord]:
        """Newest first, as ListStateMachineVersions returns them."""
        rows = self.db.query(
            "SELECT * FROM sfn_published_versions WHERE state_machine_arn = ? ORDER BY version DESC",
            (machine_arn,),
        )
        return [_row_to_version(r) for r in rows]

    def publish_version(
        self, machine_arn: str, *, revision_id: str | None = None, description: str | None = None
    ) -> tuple[VersionRecord, bool]:
        """Publish the current revision as the next version number; (version, created).

        Idempotent as on AWS: when a version of the current revision exists it is returned unchanged.
        ``revision_id`` (``INITIAL`` for a machine never updated) must name the current revision,
        else ConflictException."""
        now = datetime.now(UTC).timestamp()
        with self.db.transaction() as conn:
            row = conn.execute(_MACHINE_SELECT + " WHERE m.arn = ?", (machine_arn,)).fetchone()
            if row is None:
                raise StateMachineDoesNotExist(f"State Machine Does Not Exist: '{machine_arn}'")
            current = row["revision_id"]
            initial = revision_id == "INITIAL" and row["revision"] == 1
            if revision_id is not None and revision_id != current and not initial:
                raise ConflictException(
                    f"Failed to publish the State Machine version for revision {revision_id}. "
                    f"The current State Machine revision is {current}."
                )
            existing = conn.execute(
                "SELECT * FROM sfn_published_versions WHERE state_machine_arn = ? AND revision = ? "
                "ORDER BY version DESC LIMIT 1",
                (machine_arn, row["revision"]),
            ).fetchone()
            if existing is not None:
                return _row_to_version(existing), False
            count = conn.execute(
                "SELECT COUNT(*) FROM sfn_published_versions WHERE state_machine_arn = ?", (machine_arn,)
            ).fetchone()[0]
            if count >= MAX_VERSIONS:
                raise ServiceQuotaExceeded(
                    f"Failed to publish a version: a state machine can have at most {MAX_VERSIONS} "
                    "versions; delete unused versions with DeleteStateMachineVersion"
                )
            version = row["last_version"] + 1
            conn.execute(
                "INSERT INTO sfn_published_versions (state_machine_arn, version, revision, description,"
                " created) VALUES (?, ?, ?, ?, ?)",
                (machine_arn, version, row["revision"], description, now),
            )
            conn.execute(
                "UPDATE sfn_state_machines SET last_version = ? WHERE arn = ?", (version, machine_arn)
            )
        return VersionRecord(machine_arn, version, row["revision"], description, to_datetime(now)), True  # type: ignore[arg-type]

    def delete_version(self, machine_arn: str, version: int) -> None:
        """Delete a published version (nothing to do when it does not exist); refused with
        ConflictException while an alias routes to it."""
        version_arn = f"{machine_arn}:{version}"
        with self.db.transaction() as conn:
            rows = conn.execute(
                "SELECT * FROM sfn_aliases WHERE state_machine_arn = ? ORDER BY created, name", (machine_arn,)
            ).fetchall()
            names = [r["name"] for r in rows if any(v == version_arn for v, _ in _row_to_alias(r).routing)]
            if names:
                raise ConflictException(
                    "Version to be deleted must not be referenced by an alias. "
                    f"Current list of aliases referencing this version: [{', '.join(names)}]"
                )
            conn.execute(
                "DELETE FROM sfn_published_versions WHERE state_machine_arn = ? AND version = ?",
                (machine_arn, version),
            )

    def get_alias(self, alias_arn: str) -> AliasRecord | None:
        row = self.db.query_one("SELECT * FROM sfn_aliases WHERE arn = ?", (alias_arn,))
        return _row_to_alias(row) if row else None

    def list_aliases(self, machine_arn: str) -> list[AliasRecord]:
        """In the order they were created, as ListStateMachineAliases returns them."""
        rows = self.db.query(
            "SELECT * FROM sfn_aliases WHERE state_machine_arn = ? ORDER BY created, rowid", (machine_arn,)
        )
        return [_row_to_alias(r) for r in rows]

    def _check_routing(
        self, conn: sqlite3.Connection, machine_arn: str, routing: list[tuple[str, int]]
    ) -> bool:
        """Whether every version ARN of ``routing`` is a published version of ``machine_arn``."""
        for version_arn, _ in routing:
            number = int(version_arn.rpartition(":")[2])
            found = conn.execute(
                "SELECT 1 FROM sfn_published_versions WHERE state_machine_arn = ? AND version = ?",
                (machine_arn, number),
            ).fetchone()
            if found is None:
                return False
        return True

    def put_alias(
        self, *, machine_arn: str, name: str, description: str | None, routing: list[tuple[str, int]]
    ) -> tuple[AliasRecord, bool] | None:
        """Create an alias; (alias, created). The same name, description and routing again returns the
        existing alias; another description or routing is ConflictException. None when a routed version
        (or the state machine) does not exist."""
        arn = f"{machine_arn}:{name}"
        now = datetime.now(UTC).timestamp()
        with self.db.transaction() as conn:
            machine = conn.execute(
                "SELECT arn FROM sfn_state_machines WHERE arn = ?", (machine_arn,)
            ).fetchone()
            if machine is None or not self._check_routing(conn, machine_arn, routing):
                return None
            row = conn.execute("SELECT * FROM sfn_aliases WHERE arn = ?", (arn,)).fetchone()
            if row is not None:
                existing = _row_to_alias(row)
                if existing.description == description and existing.routing == routing:
                    return existing, False
                raise ConflictException(
                    "Failed to create alias because an alias with the same name and a different "
                    "routing configuration already exists."
                )
            count = conn.execute(
                "SELECT COUNT(*) FROM sfn_aliases WHERE state_machine_arn = ?", (machine_arn,)
            ).fetchone()[0]
            if count >= MAX_ALIASES:
                raise ServiceQuotaExceeded(
                    f"Failed to create alias: a state machine can have at most {MAX_ALIASES} aliases"
                )
            conn.execute(
                "INSERT INTO sfn_aliases (arn, state_machine_arn, name, description, routing, created,"
                " updated) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (arn, machine_arn, name, description, json.dumps(routing), now, now),
            )
        created = to_datetime(now)
        return AliasRecord(arn, machine_arn, name, description, routing, created, created), True  # type: ignore[arg-type]

    def update_alias(
        self,
        alias_arn: str,
        *,
        description: str | None = None,
        routing: list[tuple[str, int]] | None = None,
    ) -> AliasRecord | bool:
        """Change an alias's description and/or routing; False when the alias does not exist, True
        when a routed version does not exist (nothing written)."""
        now = datetime.now(UTC).timestamp()
        with self.db.transaction() as conn:
            row = conn.execute("SELECT * FROM sfn_aliases WHERE arn = ?", (alias_arn,)).fetchone()
            if row is None:
                return False
            alias = _row_to_alias(row)
            if routing is not None and not self._check_routing(conn, alias.machine_arn, routing):
                return True
            new_description = alias.description if description is None else description
            new_routing = alias.routing if routing is None else routing
            conn.execute(
                "UPDATE sfn_aliases SET description = ?, routing = ?, updated = ? WHERE arn = ?",
                (new_description, json.dumps(new_routing), now, alias_arn),
            )
        return AliasRecord(
            alias.arn,
            alias.machine_arn,
            alias.name,
            new_description,
            new_routing,
            alias.created,
            to_datetime(now),  # type: ignore[arg-type]
        )

    def delete_alias(self, alias_arn: str) -> None:
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM sfn_aliases WHERE arn = ?", (alias_arn,))

    def get_machine_revision(self, ref: str, revision: int) -> StateMachineRecord:
        current = self.get_machine(ref)
        row = self.db.query_one(
            "SELECT m.*, v.definition, v.revision_id FROM sfn_state_machines m "
            "JOIN sfn_state_machine_versions v ON v.state_machine_arn = m.arn "
            "WHERE m.arn = ? AND v.revision = ?",
            (current.arn, revision),
        )
        if row is None:
            raise StateMachineDoesNotExist(f"State Machine Does Not Exist: '{current.arn}:{revision}'")
        record = _row_to_machine(row)
        return StateMachineRecord(**{**record.__dict__, "revision": revision})

    def list_machines(self) -> list[StateMachineRecord]:
        return [_row_to_machine(r) for r in self.db.query(_MACHINE_SELECT + " ORDER BY m.created, m.name")]

    def list_revisions(self, ref: str) -> list[tuple[int, str, datetime]]:
        machine = self.get_machine(ref)
        rows = self.db.query(
            "SELECT revision, revision_id, created FROM sfn_state_machine_versions "
            "WHERE state_machine_arn = ? ORDER BY revision",
            (machine.arn,),
        )
        return [(r["revision"], r["revision_id"], to_datetime(r["created"])) for r in rows]  # type: ignore[misc]

    def put_machine(
        self,
        *,
        arn: str,
        name: str,
        definition: str,
        type: str,
        role_arn: str,
        function_map: dict[str, str],
        revision_id: str,
        update: bool,
    ) -> StateMachineRecord:
        """Create a machine, or (``update``) add a new revision; same definition+role is idempotent."""
        now = datetime.now(UTC).timestamp()
        with self.db.transaction() as conn:
            row = conn.execute(_MACHINE_SELECT + " WHERE m.name = ?", (name,)).fetchone()
            fmap = json.dumps(function_map, sort_keys=True)
            if row is None:
                conn.execute(
                    "INSERT INTO sfn_state_machines (arn, name, type, role_arn, revision, function_map,"
                    " created, updated) VALUES (?, ?, ?, ?, 1, ?, ?, ?)",
                    (arn, name, type, role_arn, fmap, now, now),
                )
                conn.execute(
                    "INSERT INTO sfn_state_machine_versions VALUES (?, 1, ?, ?, ?)",
                    (arn, revision_id, definition, now),
                )
            else:
                same = (
                    row["definition"] == definition
                    and row["role_arn"] == role_arn
                    and row["type"] == type
                    and row["function_map"] == fmap
                )
                if not same:
                    if not update:
                        raise StateMachineAlreadyExists(f"State Machine Already Exists: '{row['arn']}'")
                    if row["type"] != type:
                        raise StateMachineAlreadyExists(
                            f"State machine {name!r} is {row['type']}; its type cannot change to {type}"
                        )
                    revision = row["revision"] + 1
                    conn.execute(
                        "INSERT INTO sfn_state_machine_versions VALUES (?, ?, ?, ?, ?)",
                        (row["arn"], revision, revision_id, definition, now),
                    )
                    conn.execute(
                        "UPDATE sfn_state_machines SET revision = ?, role_arn = ?, function_map = ?,"
                        " updated = ? WHERE arn = ?",
                        (revision, role_arn, fmap, now, row["arn"]),
                    )
        return self.get_machine(name)

    def delete_machine(self, ref: str) -> StateMachineRecord:
        """Delete a machine and its revisions; its executions keep a snapshot of the revision they ran."""
        machine = self.get_machine(ref)
        with self.db.transaction() as conn:
            revisions = conn.execute(
                "SELECT DISTINCT revision FROM sfn_executions WHERE state_machine_arn = ? "
                "AND machine_snapshot IS NULL",
                (machine.arn,),
            ).fetchall()
            for (revision,) in revisions:
                try:
                    snapshot = _machine_snapshot(self.get_machine_revision(machine.arn, revision))
                except StateMachineDoesNotExist:
                    continue
                conn.execute(
                    "UPDATE sfn_executions SET machine_snapshot = ? "
                    "WHERE state_machine_arn = ? AND revision = ? AND machine_snapshot IS NULL",
                    (snapshot, machine.arn, revision),
                )
            conn.execute("DELETE FROM sfn_state_machines WHERE arn = ?", (machine.arn,))
            conn.execute("DELETE FROM sfn_tags WHERE resource_arn = ?", (machine.arn,))
        return machine

    def machine_for_execution(self, execution: ExecutionRecord) -> StateMachineRecord:
        """The state machine revision an execution ran, even after the machine was deleted (or
        deleted and created again under the same name)."""
        row = self.db.query_one("SELECT machine_snapshot FROM sfn_executions WHERE arn = ?", (execution.arn,))
        if row is not None and row["machine_snapshot"]:
            return _machine_from_snapshot(row["machine_snapshot"])
        return self.get_machine_revision(execution.state_machine_arn, execution.revision)

    # -- executions -------------------------------------------------------------------------
    def insert_execution(
        self,
        *,
        arn: str,
        name: str,
        machine: StateMachineRecord,
        kind: str,
        input_text: str,
        start_date: datetime,
        runner: tuple[str, int, str],
        version_arn: str | None = None,
        alias_arn: str | None = None,
    ) -> ExecutionRecord:
        host, pid, token = runner
        start = to_epoch(start_date)
        try:
            with self.db.transaction() as conn:
                conn.execute(
                    "INSERT INTO sfn_executions (arn, name, state_machine_arn, state_machine_name, revision,"
                    " kind, status, input, start_date, runner_host, runner_pid, runner_token, heartbeat,"
                    " state_machine_version_arn, state_machine_alias_arn)"
                    " VALUES (?, ?, ?, ?, ?, ?, 'RUNNING', ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        arn,
                        name,
                        machine.arn,
                        machine.name,
                        machine.revision,
                        kind,
                        input_text,
                        start,
                        host,
                        pid,
                        token,
                        start,
                        version_arn,
                        alias_arn,
                    ),
                )
        except sqlite3.IntegrityError as exc:
            raise ExecutionAlreadyExists(f"Execution Already Exists: '{arn}'") from exc
        return self.get_execution(arn)

    def get_execution(self, ref: str) -> ExecutionRecord:
        """An execution by ARN, or by name when the name is unique across state machines."""
        row = self.db.query_one("SELECT * FROM sfn_executions WHERE arn = ?", (ref,))
        if row is None and not ref.startswith("arn:"):
            rows = self.db.query("SELECT * FROM sfn_executions WHERE name = ?", (ref,))
            if len(rows) > 1:
                raise AmbiguousExecution(
                    f"{len(rows)} executions are named {ref!r}; give the execution ARN instead"
                )
            row = rows[0] if rows else None
        if row is None:
            raise ExecutionDoesNotExist(f"Execution Does Not Exist: '{ref}'")
        return _row_to_execution(row)

    def find_execution(self, arn: str) -> ExecutionRecord | None:
        row = self.db.query_one("SELECT * FROM sfn_executions WHERE arn = ?", (arn,))
        return _row_to_execution(row) if row else None

    def list_executions(
        self,
        machine_arn: str | None = None,
        status: str | None = None,
        limit: int | None = None,
        *,
        version_arn: str | None = None,
        alias_arn: str | None = None,
    ) -> list[ExecutionRecord]:
        """Newest first; ``version_arn`` / ``alias_arn`` keep only the executions started through
        that version (directly or through an alias) / that alias."""
        sql = "SELECT * FROM sfn_executions WHERE 1=1"
        params: list[Any] = []
        if machine_arn:
            sql += " AND state_machine_arn = ?"
            params.append(machine_arn)
        if version_arn:
            sql += " AND state_machine_version_arn = ?"
            params.append(version_arn)
        if alias_arn:
            sql += " AND state_machine_alias_arn = ?"
            params.append(alias_arn)
        if status:
            sql += " AND status = ?"
            params.append(status)
        sql += " ORDER BY start_date DESC, rowid DESC"
        if limit:
            sql += " LIMIT ?"
            params.append(limit)
        return [_row_to_execution(r) for r in self.db.query(sql, params)]

    def running_executions(self) -> list[ExecutionRecord]:
        return self.list_executions(status="RUNNING")

    def heartbeat(self, arns: Sequence[str], now: float) -> None:
        if not arns:
            return
        with self.db.transaction() as conn:
            conn.executemany(
                "UPDATE sfn_executions SET heartbeat = ? WHERE arn = ? AND status = 'RUNNING'",
                [(now, arn) for arn in arns],
            )

    def stop_requests(self, arns: Sequence[str]) -> dict[str, tuple[str | None, str | None]]:
        if not arns:
            return {}
        marks = ",".join("?" * len(arns))
        rows = self.db.query(
            "SELECT arn, stop_error, stop_cause FROM sfn_executions"
            f" WHERE stop_requested = 1 AND arn IN ({marks})",
            list(arns),
        )
        return {r["arn"]: (r["stop_error"], r["stop_cause"]) for r in rows}

    def request_stop(self, arn: str, error: str | None, cause: str | None) -> None:
        with self.db.transaction() as conn:
            conn.execute(
                "UPDATE sfn_executions SET stop_requested = 1, stop_error = ?, stop_cause = ?"
                " WHERE arn = ? AND status = 'RUNNING'",
                (error, cause, arn),
            )

    # -- history ----------------------------------------------------------------------------
    def append_events(self, arn: str, events: Iterable[EventRow]) -> bool:
        """Store event rows while the execution is RUNNING; False (nothing stored) once it has ended."""
        rows = [(arn, *e) for e in events]
        with self.db.transaction() as conn:
            status = conn.execute("SELECT status FROM sfn_executions WHERE arn = ?", (arn,)).fetchone()
            if status is None or status["status"] != "RUNNING":
                return False
            conn.executemany("INSERT OR REPLACE INTO sfn_history VALUES (?, ?, ?, ?, ?, ?)", rows)
        return True

    def finish(
        self,
        arn: str,
        *,
        status: str,
        output: str | None,
        error: str | None,
        cause: str | None,
        stop_date: datetime,
        events: Iterable[EventRow] = (),
    ) -> bool:
        """Write the end of an execution (and its last event rows) if it is still RUNNING."""
        rows = [(arn, *e) for e in events]
        with self.db.transaction() as conn:
            current = conn.execute("SELECT status FROM sfn_executions WHERE arn = ?", (arn,)).fetchone()
            if current is None or current["status"] != "RUNNING":
                return False
            conn.executemany("INSERT OR REPLACE INTO sfn_history VALUES (?, ?, ?, ?, ?, ?)", rows)
            conn.execute(
                "UPDATE sfn_executions SET status = ?, output = ?, error = ?, cause = ?, stop_date = ?"
                " WHERE arn = ?",
                (status, output, error, cause, to_epoch(stop_date), arn),
            )
        return True

    def force_abort(self, arn: str, *, error: str | None, cause: str | None, stop_date: datetime) -> bool:
        """End a RUNNING execution from outside its runner, appending an ExecutionAborted event."""
        with self.db.transaction() as conn:
            current = conn.execute("SELECT status FROM sfn_executions WHERE arn = ?", (arn,)).fetchone()
            if current is None or current["status"] != "RUNNING":
                return False
            last = conn.execute(
                "SELECT COALESCE(MAX(id), 0) AS id FROM sfn_history WHERE execution_arn = ?", (arn,)
            ).fetchone()["id"]
            details: dict[str, str] = {}
            if error is not None:
                details["error"] = error
            if cause is not None:
                details["cause"] = cause
            event = {
                "timestamp": stop_date,
                "type": "ExecutionAborted",
                "id": last + 1,
                "previousEventId": last,
                "executionAbortedEventDetails": details,
            }
            conn.execute("INSERT INTO sfn_history VALUES (?, ?, ?, ?, ?, ?)", (arn, *event_to_row(event)))
            conn.execute(
                "UPDATE sfn_executions SET status = 'ABORTED', error = ?, cause = ?, stop_date = ?"
                " WHERE arn = ?",
                (error, cause, to_epoch(stop_date), arn),
            )
        return True

    def history(self, arn: str) -> list[dict[str, Any]]:
        rows = self.db.query("SELECT * FROM sfn_history WHERE execution_arn = ? ORDER BY id", (arn,))
        return [row_to_event(r) for r in rows]

    # -- tags ---------------------------------------------------------------------------------
    def tags(self, resource_arn: str) -> list[tuple[str, str]]:
        rows = self.db.query(
            "SELECT key, value FROM sfn_tags WHERE resource_arn = ? ORDER BY rowid", (resource_arn,)
        )
        return [(r["key"], r["value"]) for r in rows]

    def tag(self, resource_arn: str, tags: Sequence[tuple[str, str]], limit: int) -> bool:
        """Add or overwrite tags; False (and nothing written) when the resource would pass ``limit``."""
        with self.db.transaction() as conn:
            keys = {
                r[0] for r in conn.execute("SELECT key FROM sfn_tags WHERE resource_arn = ?", (resource_arn,))
            }
            if len(keys | {k for k, _ in tags}) > limit:
                return False
            for key, value in tags:
                conn.execute(
                    "INSERT INTO sfn_tags (resource_arn, key, value) VALUES (?, ?, ?) "
                    "ON CONFLICT (resource_arn, key) DO UPDATE SET value = excluded.value",
                    (resource_arn, key, value),
                )
        return True

    def untag(self, resource_arn: str, keys: Sequence[str]) -> None:
        with self.db.transaction() as conn:
            conn.executemany(
                "DELETE FROM sfn_tags WHERE resource_arn = ? AND key = ?", [(resource_arn, k) for k in keys]
            )
