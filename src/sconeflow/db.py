"""The metadata database: SQLite in WAL mode, shared by the CLI, the gateway and endpoint processes.

This module owns the connection settings and the migration mechanism. Each component (training jobs,
endpoints, functions, state machines, ...) declares its own ordered list of migrations and applies it
before first use::

    TRAINING_SCHEMA = Migrations("training", [
        "CREATE TABLE training_jobs (name TEXT PRIMARY KEY, ...)",
        "ALTER TABLE training_jobs ADD COLUMN ...",
    ])
    db = Database(settings.db_path)
    db.apply(TRAINING_SCHEMA)

Applied versions are recorded per component in ``schema_migrations``, so components evolve
independently and a migration runs exactly once per database, even with several processes racing.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sconeflow.errors import SconeflowError

BUSY_TIMEOUT_MS = 10_000


class DatabaseError(SconeflowError):
    """The metadata database cannot be opened or migrated."""


@dataclass(frozen=True)
class Migrations:
    """An ordered list of SQL scripts for one component. Append new scripts; never edit old ones."""

    component: str
    scripts: Sequence[str]


class Database:
    """A thread-safe handle on the metadata database (one SQLite connection per thread)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._local = threading.local()
        self._applied: set[str] = set()
        self._lock = threading.Lock()

    def connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
                conn.row_factory = sqlite3.Row
                conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
                # the first read: fails here on a file that is not an SQLite database
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("PRAGMA synchronous = NORMAL")
                conn.execute("PRAGMA foreign_keys = ON")
            except (OSError, sqlite3.Error) as exc:
                if conn is not None:
                    conn.close()
                raise DatabaseError(f"cannot open metadata database {self.path}: {exc}") from exc
            self._local.conn = conn
        return conn

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction (BEGIN IMMEDIATE): commits on success, rolls back on error."""
        conn = self.connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> sqlite3.Cursor:
        return self.connection().execute(sql, params)

    def query(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[sqlite3.Row]:
        return self.connection().execute(sql, params).fetchall()

    def query_one(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> sqlite3.Row | None:
        return self.connection().execute(sql, params).fetchone()

    def apply(self, migrations: Migrations) -> None:
        """Bring ``migrations.component`` up to date; cheap after the first call on this handle."""
        if migrations.component in self._applied:
            return
        with self._lock:
            if migrations.component in self._applied:
                return
            try:
                with self.transaction() as conn:
                    conn.execute(
                        "CREATE TABLE IF NOT EXISTS schema_migrations ("
                        " component TEXT NOT NULL, version INTEGER NOT NULL,"
                        " applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),"
                        " PRIMARY KEY (component, version))"
                    )
                    row = conn.execute(
                        "SELECT COALESCE(MAX(version), 0) FROM schema_migrations WHERE component = ?",
                        (migrations.component,),
                    ).fetchone()
                    for version, script in enumerate(migrations.scripts, start=1):
                        if version <= row[0]:
                            continue
                        for statement in _split_statements(script):
                            conn.execute(statement)
                        conn.execute(
                            "INSERT INTO schema_migrations (component, version) VALUES (?, ?)",
                            (migrations.component, version),
                        )
            except sqlite3.Error as exc:
                raise DatabaseError(
                    f"migrating '{migrations.component}' in {self.path} failed: {exc}"
                ) from exc
            self._applied.add(migrations.component)

    def schema_versions(self) -> dict[str, int]:
        try:
            rows = self.query("SELECT component, MAX(version) AS v FROM schema_migrations GROUP BY component")
        except sqlite3.OperationalError:
            return {}
        return {row["component"]: row["v"] for row in rows}

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


def _split_statements(script: str) -> list[str]:
    statements: list[str] = []
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            statements.append(buffer.strip())
            buffer = ""
    if buffer.strip():
        statements.append(buffer.strip())
    return statements
