"""Where sconeflow keeps things, and the settings that can come from the environment.

One ``SCONEFLOW_HOME`` (default ``~/.sconeflow``) holds the object store (``buckets/``), the metadata
database (``sconeflow.db``), logs (``logs/``), and run-time files of background servers (``run/``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_BUCKET = "sconeflow-default"
DEFAULT_REGION = "us-east-1"
DEFAULT_ACCOUNT = "123456789012"


def _env(name: str, default: str) -> str:
    value = os.environ.get(name)
    return value if value else default


@dataclass(frozen=True)
class Settings:
    """Resolved settings. Build with :func:`load_settings`; every path derives from ``home``."""

    home: Path
    store_uri: str = ""
    bucket: str = DEFAULT_BUCKET
    region: str = DEFAULT_REGION
    account: str = DEFAULT_ACCOUNT
    log_level: str = "WARNING"
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def buckets_dir(self) -> Path:
        return self.home / "buckets"

    @property
    def db_path(self) -> Path:
        return self.home / "sconeflow.db"

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"

    @property
    def run_dir(self) -> Path:
        """PID and URL files of background servers this home started."""
        return self.home / "run"

    @property
    def cache_dir(self) -> Path:
        return self.home / "cache"

    @property
    def resolved_store_uri(self) -> str:
        return self.store_uri or self.buckets_dir.as_uri()

    def ensure_dirs(self) -> None:
        for path in (self.home, self.buckets_dir, self.logs_dir, self.run_dir, self.cache_dir):
            try:
                path.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                from sconeflow.errors import ConfigError

                raise ConfigError(
                    f"cannot use {self.home} as the sconeflow home (--home / SCONEFLOW_HOME): "
                    f"creating {path} failed: {exc.strerror or exc}"
                ) from exc


def load_settings(home: str | os.PathLike[str] | None = None) -> Settings:
    """Settings from the arguments, then ``SCONEFLOW_*`` environment variables, then defaults."""
    home_path = Path(home) if home else Path(_env("SCONEFLOW_HOME", str(Path.home() / ".sconeflow")))
    return Settings(
        home=home_path.expanduser().resolve(),
        store_uri=_env("SCONEFLOW_STORE", ""),
        bucket=_env("SCONEFLOW_BUCKET", DEFAULT_BUCKET),
        region=_env("SCONEFLOW_REGION", _env("AWS_DEFAULT_REGION", DEFAULT_REGION)),
        account=_env("SCONEFLOW_ACCOUNT", DEFAULT_ACCOUNT),
        log_level=_env("SCONEFLOW_LOG_LEVEL", "WARNING"),
    )
