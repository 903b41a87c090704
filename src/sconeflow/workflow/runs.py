"""Records of ``sconeflow demo`` runs (component ``workflow`` of the metadata database).

``status`` shows the last run; ``cleanup --all`` removes the files each run wrote outside the home. A run
records its process id and the step it is in, so a run whose process is gone without finishing (SIGKILL,
out of memory, a power cut) reads as Failed in that step instead of Running forever.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sconeflow.config import Settings
from sconeflow.db import Database, Migrations
from sconeflow.services import process_alive_since

WORKFLOW_SCHEMA = Migrations(
    "workflow",
    [
        """
        CREATE TABLE workflow_demo_runs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            started_at TEXT NOT NULL,
            finished_at TEXT,
            status TEXT NOT NULL,
            output_dir TEXT NOT NULL,
            summary TEXT NOT NULL DEFAULT '{}'
        );
        """,
        """
        ALTER TABLE workflow_demo_runs ADD COLUMN pid INTEGER;
        ALTER TABLE workflow_demo_runs ADD COLUMN current_step TEXT NOT NULL DEFAULT '';
        """,
    ],
)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class DemoRun:
    id: int
    started_at: str
    finished_at: str | None
    status: str  # Running, Completed, Failed
    output_dir: str
    summary: dict[str, Any]


class DemoRuns:
    def __init__(self, settings: Settings, db: Database | None = None) -> None:
        self.db = db or Database(settings.db_path)
        self.db.apply(WORKFLOW_SCHEMA)

    def start(self, output_dir: str) -> int:
        with self.db.transaction() as conn:
            cursor = conn.execute(
                "INSERT INTO workflow_demo_runs (started_at, status, output_dir, pid)"
                " VALUES (?, 'Running', ?, ?)",
                (_now(), output_dir, os.getpid()),
            )
            return int(cursor.lastrowid or 0)

    def step(self, run_id: int, key: str) -> None:
        """The step the run is in now (what a run whose process vanished failed in)."""
        with self.db.transaction() as conn:
            conn.execute("UPDATE workflow_demo_runs SET current_step = ? WHERE id = ?", (key, run_id))

    def finish(self, run_id: int, status: str, summary: dict[str, Any]) -> None:
        with self.db.transaction() as conn:
            conn.execute(
                "UPDATE workflow_demo_runs SET finished_at = ?, status = ?, summary = ? WHERE id = ?",
                (_now(), status, json.dumps(summary), run_id),
            )

    def list(self) -> list[DemoRun]:
        rows = self.db.query("SELECT * FROM workflow_demo_runs ORDER BY id")
        if any(self._reap(row) for row in rows):
            rows = self.db.query("SELECT * FROM workflow_demo_runs ORDER BY id")
        return [
            DemoRun(
                r["id"],
                r["started_at"],
                r["finished_at"],
                r["status"],
                r["output_dir"],
                json.loads(r["summary"]),
            )
            for r in rows
        ]

    def last(self) -> DemoRun | None:
        runs = self.list()
        return runs[-1] if runs else None

    def _reap(self, row: Any) -> bool:
        """A Running run whose process is gone becomes Failed in the step it was in."""
        if row["status"] != "Running" or not row["pid"] or process_alive_since(row["pid"], row["started_at"]):
            return False
        summary = json.loads(row["summary"])
        summary["failed_step"] = row["current_step"]
        summary["error"] = (
            f"ProcessExited: the demo process (pid {row['pid']}) exited before the run finished "
            "(killed or crashed)"
        )
        with self.db.transaction() as conn:
            conn.execute(
                "UPDATE workflow_demo_runs SET finished_at = ?, status = 'Failed', summary = ?"
                " WHERE id = ? AND status = 'Running'",
                (_now(), json.dumps(summary), row["id"]),
            )
        return True
