"""Per-invocation logs, CloudWatch style: START / the function's output / END / REPORT.

Each function has ``<home>/logs/lambda/<function>.jsonl``; one JSON line per invocation (written with a
single append, so processes never interleave) holding the log stream, request id, time and text.
"""

from __future__ import annotations

import json
import os
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sconeflow.config import Settings

TAIL_BYTES = 4096


@dataclass(frozen=True)
class InvocationLog:
    function: str
    request_id: str
    log_stream: str
    timestamp: str
    text: str


def start_line(request_id: str, version: str) -> str:
    return f"START RequestId: {request_id} Version: {version}\n"


def end_line(request_id: str) -> str:
    return f"END RequestId: {request_id}\n"


def report_line(
    request_id: str,
    duration_ms: float,
    memory_size: int,
    max_memory_mb: int,
    init_ms: float | None = None,
    status: str | None = None,
) -> str:
    billed = max(1, int(duration_ms + 0.999999))
    line = (
        f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\tBilled Duration: {billed} ms\t"
        f"Memory Size: {memory_size} MB\tMax Memory Used: {max_memory_mb} MB\t"
    )
    if init_ms is not None:
        line += f"Init Duration: {init_ms:.2f} ms\t"
    if status:
        line += f"Status: {status}\t"
    return line + "\n"


def tail(text: str, limit: int = TAIL_BYTES) -> str:
    """The last ``limit`` bytes of the log, as ``X-Amz-Log-Result`` carries them (before base64)."""
    data = text.encode("utf-8")
    return data[-limit:].decode("utf-8", "ignore")


class LogStore:
    def __init__(self, settings: Settings) -> None:
        self.root = settings.logs_dir / "lambda"
        self._ready = False

    def path(self, function: str) -> Path:
        return self.root / f"{function}.jsonl"

    def append(self, function: str, request_id: str, log_stream: str, text: str) -> None:
        if not self._ready:
            self.root.mkdir(parents=True, exist_ok=True)
            self._ready = True
        stamp = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        record = {"request_id": request_id, "log_stream": log_stream, "timestamp": stamp, "text": text}
        line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
        try:
            fd = os.open(self.path(function), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except FileNotFoundError:  # the logs folder was removed meanwhile
            self.root.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path(function), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)

    def read_from(self, function: str, offset: int) -> tuple[list[InvocationLog], int]:
        """Whole records appended after byte ``offset``, and the offset to continue from."""
        try:
            with self.path(function).open("rb") as handle:
                handle.seek(offset)
                data = handle.read()
        except FileNotFoundError:
            return [], offset
        end = data.rfind(b"\n") + 1  # a record still being written is left for next time
        records = []
        for line in data[:end].splitlines():
            try:
                raw = json.loads(line)
                records.append(
                    InvocationLog(
                        function, raw["request_id"], raw["log_stream"], raw["timestamp"], raw["text"]
                    )
                )
            except (ValueError, KeyError):
                continue
        return records, offset + end

    def size(self, function: str) -> int:
        try:
            return self.path(function).stat().st_size
        except FileNotFoundError:
            return 0

    def read(
        self, function: str, *, request_id: str | None = None, last: int | None = None
    ) -> list[InvocationLog]:
        path = self.path(function)
        if not path.is_file():
            return []
        records: deque[InvocationLog] = deque(maxlen=last if last else None)
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                try:
                    raw = json.loads(line)
                except ValueError:
                    continue
                if request_id and raw.get("request_id") != request_id:
                    continue
                records.append(
                    InvocationLog(
                        function, raw["request_id"], raw["log_stream"], raw["timestamp"], raw["text"]
                    )
                )
        return list(records)
