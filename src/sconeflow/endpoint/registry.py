"""Endpoint records in the metadata database, and the endpoint lifecycle.

Models, endpoint configs (with their DataCaptureConfig) and endpoints live in three tables of the
``endpoint`` component. An endpoint moves Creating -> InService (or Failed with a reason) -> Updating ->
InService -> Deleting. Each InService endpoint is served by one background process
(``python -m sconeflow endpoint serve NAME``) registered with :mod:`sconeflow.services` as
``endpoint-<name>``; a process that died without being stopped is reported as a crash (Failed, with the
reason and the tail of its log).
"""

from __future__ import annotations

import json
import logging
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from sconeflow import services
from sconeflow.config import Settings
from sconeflow.db import Database, Migrations
from sconeflow.endpoint.errors import (
    EndpointAlreadyExists,
    EndpointCreationFailed,
    EndpointNotFound,
    EndpointNotInService,
    EndpointUpdateFailed,
)
from sconeflow.endpoint.models import (
    CREATING,
    DELETING,
    FAILED,
    IN_SERVICE,
    UPDATING,
    DataCaptureConfig,
    EndpointConfigRecord,
    EndpointRecord,
    ModelRecord,
    default_endpoint_name,
    utc_now,
    validate_name,
)

log = logging.getLogger(__name__)

SERVICE_KIND = "endpoint"
START_TIMEOUT = 120.0

ENDPOINT_SCHEMA = Migrations(
    "endpoint",
    [
        """
        CREATE TABLE endpoint_models (
            name TEXT PRIMARY KEY,
            model_data_url TEXT NOT NULL,
            source_ref TEXT NOT NULL,
            created_at TEXT NOT NULL
        );
        CREATE TABLE endpoint_configs (
            name TEXT PRIMARY KEY,
            model_name TEXT NOT NULL REFERENCES endpoint_models(name),
            variant_name TEXT NOT NULL DEFAULT 'AllTraffic',
            data_capture TEXT NOT NULL,
            serving TEXT NOT NULL DEFAULT '{}',
            created_at TEXT NOT NULL
        );
        CREATE TABLE endpoints (
            name TEXT PRIMARY KEY,
            config_name TEXT NOT NULL REFERENCES endpoint_configs(name),
            status TEXT NOT NULL,
            failure_reason TEXT,
            crashed INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL,
            last_modified TEXT NOT NULL
        );
        """
    ],
)


_databases: dict[Path, Database] = {}
_databases_lock = threading.Lock()


def _database(settings: Settings) -> Database:
    """One migrated handle per database file and process (the gateway resolves endpoints per request)."""
    path = settings.db_path
    with _databases_lock:
        db = _databases.get(path)
        if db is None or not path.exists():
            db = Database(path)
            _databases[path] = db
    db.apply(ENDPOINT_SCHEMA)
    return db


def service_name(endpoint: str) -> str:
    return f"endpoint-{endpoint}"


def _iso(moment: datetime | None = None) -> str:
    return (moment or utc_now()).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class EndpointView:
    """An endpoint with its config, model and live server state (what list/describe show)."""

    endpoint: EndpointRecord
    config: EndpointConfigRecord
    model: ModelRecord
    url: str | None
    pid: int | None
    server: str  # "running", "stopped" or "crashed"

    @property
    def status(self) -> str:
        return self.endpoint.status

    def to_api(self, settings: Settings) -> dict[str, Any]:
        capture = self.config.data_capture
        arn = f"arn:aws:sagemaker:{settings.region}:{settings.account}:endpoint/{self.endpoint.name.lower()}"
        out: dict[str, Any] = {
            "EndpointName": self.endpoint.name,
            "EndpointArn": arn,
            "EndpointConfigName": self.config.name,
            "ProductionVariants": [
                {
                    "VariantName": self.config.variant_name,
                    "CurrentWeight": 1.0,
                    "DesiredWeight": 1.0,
                    "CurrentInstanceCount": 1,
                    "DesiredInstanceCount": 1,
                }
            ],
            "DataCaptureConfigSummary": {
                "EnableCapture": capture.enable_capture,
                "CaptureStatus": "Started" if capture.enable_capture else "Stopped",
                "CurrentSamplingPercentage": capture.initial_sampling_percentage,
                "DestinationS3Uri": capture.destination_s3_uri,
            },
            "EndpointStatus": self.endpoint.status,
            "CreationTime": self.endpoint.created_at,
            "LastModifiedTime": self.endpoint.last_modified,
            "ModelName": self.model.name,
            "ModelDataUrl": self.model.model_data_url,
            "ModelSource": self.model.source_ref,
            "Server": {"State": self.server, "Url": self.url, "Pid": self.pid},
        }
        if self.endpoint.failure_reason:
            out["FailureReason"] = self.endpoint.failure_reason
        return out


class EndpointRegistry:
    """CRUD over the endpoint tables (no processes started here)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.db = _database(settings)

    # -- models and configs -------------------------------------------------------------------
    def add_model(self, name: str, model_data_url: str, source_ref: str) -> ModelRecord:
        record = ModelRecord(name, model_data_url, source_ref, _iso())
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT INTO endpoint_models (name, model_data_url, source_ref, created_at) VALUES (?,?,?,?)",
                (record.name, record.model_data_url, record.source_ref, record.created_at),
            )
        return record

    def add_config(
        self, name: str, model_name: str, capture: DataCaptureConfig, serving: dict[str, Any] | None = None
    ) -> EndpointConfigRecord:
        record = EndpointConfigRecord(name, model_name, capture, _iso(), serving=dict(serving or {}))
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT INTO endpoint_configs"
                " (name, model_name, variant_name, data_capture, serving, created_at) VALUES (?,?,?,?,?,?)",
                (
                    record.name,
                    record.model_name,
                    record.variant_name,
                    json.dumps(capture.to_api()),
                    record.serving_json(),
                    record.created_at,
                ),
            )
        return record

    def model(self, name: str) -> ModelRecord:
        row = self.db.query_one("SELECT * FROM endpoint_models WHERE name = ?", (name,))
        if row is None:
            raise EndpointNotFound(f"model {name!r} not found")
        return ModelRecord(row["name"], row["model_data_url"], row["source_ref"], row["created_at"])

    def config(self, name: str) -> EndpointConfigRecord:
        row = self.db.query_one("SELECT * FROM endpoint_configs WHERE name = ?", (name,))
        if row is None:
            raise EndpointNotFound(f"endpoint config {name!r} not found")
        return EndpointConfigRecord(
            name=row["name"],
            model_name=row["model_name"],
            data_capture=DataCaptureConfig.from_api(json.loads(row["data_capture"])),
            created_at=row["created_at"],
            variant_name=row["variant_name"],
            serving=json.loads(row["serving"] or "{}"),
        )

    # -- endpoints ------------------------------------------------------------------------------
    def add_endpoint(self, name: str, config_name: str) -> EndpointRecord:
        now = _iso()
        with self.db.transaction() as conn:
            if conn.execute("SELECT 1 FROM endpoints WHERE name = ?", (name,)).fetchone():
                raise EndpointAlreadyExists(f"Cannot create already existing endpoint {name!r}")
            conn.execute(
                "INSERT INTO endpoints (name, config_name, status, created_at, last_modified)"
                " VALUES (?,?,?,?,?)",
                (name, config_name, CREATING, now, now),
            )
        return self.get(name)

    def find(self, name: str) -> EndpointRecord | None:
        row = self.db.query_one("SELECT * FROM endpoints WHERE name = ?", (name,))
        if row is None:
            return None
        return EndpointRecord(
            name=row["name"],
            config_name=row["config_name"],
            status=row["status"],
            failure_reason=row["failure_reason"],
            created_at=row["created_at"],
            last_modified=row["last_modified"],
            crashed=bool(row["crashed"]),
        )

    def get(self, name: str) -> EndpointRecord:
        record = self.find(name)
        if record is None:
            raise EndpointNotFound(
                f"Endpoint {name} of account {self.settings.account} not found "
                "(see `sconeflow endpoint list`)"
            )
        return record

    def names(self) -> list[str]:
        return [row["name"] for row in self.db.query("SELECT name FROM endpoints ORDER BY created_at, name")]

    def set_status(
        self,
        name: str,
        status: str,
        reason: str | None = None,
        *,
        config_name: str | None = None,
        crashed: bool = False,
    ) -> None:
        with self.db.transaction() as conn:
            conn.execute(
                "UPDATE endpoints SET status = ?, failure_reason = ?, crashed = ?, last_modified = ?,"
                " config_name = COALESCE(?, config_name) WHERE name = ?",
                (status, reason, int(crashed), _iso(), config_name, name),
            )

    def remove(self, name: str) -> None:
        """Delete the endpoint and the configs/models created for it."""
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM endpoints WHERE name = ?", (name,))
            configs = [
                r["name"]
                for r in conn.execute(
                    "SELECT name FROM endpoint_configs WHERE (name = ? OR name GLOB ?)"
                    " AND name NOT IN (SELECT config_name FROM endpoints)",
                    (name, f"{name}-u[0-9]*"),
                )
            ]
            for config in configs:
                row = conn.execute(
                    "SELECT model_name FROM endpoint_configs WHERE name = ?", (config,)
                ).fetchone()
                conn.execute("DELETE FROM endpoint_configs WHERE name = ?", (config,))
                if row is not None:
                    still_used = conn.execute(
                        "SELECT 1 FROM endpoint_configs WHERE model_name = ?", (row["model_name"],)
                    ).fetchone()
                    if not still_used:
                        conn.execute("DELETE FROM endpoint_models WHERE name = ?", (row["model_name"],))

    def view(self, name: str) -> EndpointView:
        endpoint = self.get(name)
        config = self.config(endpoint.config_name)
        model = self.model(config.model_name)
        record = services.read_record(self.settings, service_name(name))
        if record is None:
            server, url, pid = "stopped", None, None
        elif record.alive:
            server, url, pid = "running", record.url, record.pid
        else:
            server, url, pid = "crashed", record.url, record.pid
        if server == "crashed" and record is not None and endpoint.status in (CREATING, IN_SERVICE, UPDATING):
            reason = (
                f"endpoint server process {record.pid} exited unexpectedly; "
                f"log tail: {_log_tail(Path(record.log_path))}"
            )
            self.set_status(name, FAILED, reason, crashed=True)
            endpoint = self.get(name)
        return EndpointView(endpoint, config, model, url, pid, server)


def _log_tail(path: Path, limit: int = 300) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return " ".join(text[-limit:].split()) or "(empty log)"


# -- lifecycle ----------------------------------------------------------------------------------


def default_capture_destination(settings: Settings) -> str:
    return f"s3://{settings.bucket}/data_capture"


def deploy(
    settings: Settings,
    model_ref: str,
    *,
    name: str | None = None,
    capture_percent: int = 100,
    capture_dest: str | None = None,
    enable_capture: bool = True,
    serving: dict[str, Any] | None = None,
    start: bool = True,
) -> EndpointView:
    """CreateModel + CreateEndpointConfig + CreateEndpoint, then start the server and wait for InService."""
    from sconeflow.endpoint.capture import parse_destination
    from sconeflow.model.artifact import resolve_model

    name = name or default_endpoint_name()
    validate_name(name)
    registry = EndpointRegistry(settings)
    if registry.find(name) is not None:
        raise EndpointAlreadyExists(f"Cannot create already existing endpoint {name!r}")
    capture = DataCaptureConfig(
        enable_capture=enable_capture and capture_percent > 0,
        initial_sampling_percentage=capture_percent,
        destination_s3_uri=capture_dest or default_capture_destination(settings),
    )
    parse_destination(capture.destination_s3_uri, settings.bucket)
    resolved = resolve_model(settings, model_ref)
    registry.remove(name)  # leftovers of an earlier endpoint of that name (its model and configs)
    registry.add_model(name, resolved.uri, model_ref)
    registry.add_config(name, name, capture, serving)
    registry.add_endpoint(name, name)
    if start:
        start_endpoint(settings, name)
    else:
        registry.set_status(name, IN_SERVICE)
    return registry.view(name)


def start_endpoint(
    settings: Settings, name: str, *, timeout: float = START_TIMEOUT
) -> services.ServiceRecord:
    """Start the endpoint's server process and wait until ``/ping`` answers; InService or Failed."""
    registry = EndpointRegistry(settings)
    registry.get(name)
    existing = services.read_record(settings, service_name(name))
    if existing is not None:
        if existing.alive:
            return existing
        services.remove_record(settings, service_name(name))
    port = services.free_port()
    url = f"http://127.0.0.1:{port}"
    try:
        record = services.start_service(
            settings,
            name=service_name(name),
            kind=SERVICE_KIND,
            args=["endpoint", "serve", name, "--port", str(port)],
            url=url,
            health_url=f"{url}/ping",
            timeout=timeout,
        )
    except KeyboardInterrupt:
        services.stop_service(settings, service_name(name))
        registry.set_status(name, FAILED, "creation was interrupted (Ctrl-C)")
        raise
    except services.ServiceError as exc:
        current = registry.find(name)
        reason = current.failure_reason if current is not None and current.status == FAILED else None
        reason = reason or str(exc)
        registry.set_status(name, FAILED, reason)
        raise EndpointCreationFailed(f"endpoint {name!r} failed: {reason}") from exc
    registry.set_status(name, IN_SERVICE)
    return record


def update(
    settings: Settings,
    name: str,
    model_ref: str,
    *,
    capture_percent: int | None = None,
    capture_dest: str | None = None,
) -> EndpointView:
    """Swap the endpoint's model (new model + config records); requests keep flowing during the swap."""
    from sconeflow.endpoint.capture import parse_destination
    from sconeflow.model.artifact import resolve_model

    registry = EndpointRegistry(settings)
    view = registry.view(name)
    if view.status not in (IN_SERVICE, FAILED):
        raise EndpointNotInService(
            f"endpoint {name!r} is {view.status}; it can be updated only when InService"
        )
    resolved = resolve_model(settings, model_ref)
    stamp = utc_now().strftime("%Y%m%d%H%M%S%f")[:-3]
    new_name = f"{name}-u{stamp}"
    old_capture = view.config.data_capture
    capture = replace(
        old_capture,
        initial_sampling_percentage=(
            old_capture.initial_sampling_percentage if capture_percent is None else capture_percent
        ),
        destination_s3_uri=capture_dest or old_capture.destination_s3_uri,
    )
    if capture_percent is not None:
        capture = replace(capture, enable_capture=capture_percent > 0)
    parse_destination(capture.destination_s3_uri, settings.bucket)
    registry.add_model(new_name, resolved.uri, model_ref)
    registry.add_config(new_name, new_name, capture, view.config.serving)
    previous_status, previous_config = view.status, view.config.name
    registry.set_status(name, UPDATING)
    if view.server != "running" or view.url is None:
        registry.set_status(name, IN_SERVICE, config_name=new_name)
        if previous_status == FAILED:
            start_endpoint(settings, name)
        return registry.view(name)
    try:
        _post_json(f"{view.url}/-/reload", {"EndpointConfigName": new_name}, timeout=START_TIMEOUT)
    except EndpointUpdateFailed:
        registry.set_status(name, previous_status, view.endpoint.failure_reason, config_name=previous_config)
        raise
    registry.set_status(name, IN_SERVICE, config_name=new_name)
    return registry.view(name)


def _post_json(url: str, payload: dict[str, Any], timeout: float) -> dict[str, Any]:
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        try:
            message = json.loads(exc.read()).get("message", str(exc))
        except ValueError:
            message = str(exc)
        raise EndpointUpdateFailed(f"the endpoint kept its previous model: {message}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise EndpointUpdateFailed(f"the endpoint server did not answer the update: {exc}") from exc


def delete(settings: Settings, name: str) -> bool:
    """Deleting -> stop the server (it flushes capture) -> remove the records. Captures stay in the store."""
    registry = EndpointRegistry(settings)
    registry.get(name)
    registry.set_status(name, DELETING)
    services.stop_service(settings, service_name(name), timeout=30.0)
    registry.remove(name)
    return True


def resolve_endpoint_url(settings: Settings, name: str) -> str:
    """The base URL of the endpoint's running server (for the gateway's InvokeEndpoint forwarding)."""
    registry = EndpointRegistry(settings)
    endpoint = registry.find(name)
    if endpoint is None:
        raise EndpointNotFound(f"Endpoint {name} of account {settings.account} not found.")
    record = services.read_record(settings, service_name(name))
    if endpoint.status not in (IN_SERVICE, UPDATING):
        raise EndpointNotInService(f"Endpoint {name} is {endpoint.status}, not InService")
    if record is None or not record.alive:
        registry.view(name)  # records a crash if there was one
        raise EndpointNotInService(f"Endpoint {name} has no running server; start it with `sconeflow up`")
    return record.url


def start_all(settings: Settings) -> list[str]:
    """Start the server of every InService endpoint (and of crashed ones) that is not running."""
    registry = EndpointRegistry(settings)
    started = []
    for name in registry.names():
        view = registry.view(name)
        if view.server == "running":
            continue
        if view.status == IN_SERVICE or (view.status == FAILED and view.endpoint.crashed):
            try:
                start_endpoint(settings, name)
                started.append(name)
            except EndpointCreationFailed as exc:
                log.warning("%s", exc)
    return started


def stop_all(settings: Settings) -> list[str]:
    """Stop every endpoint server of this home (graceful: capture is flushed). Records stay InService."""
    stopped = []
    for record in services.list_records(settings, kind=SERVICE_KIND):
        if services.stop_service(settings, record.name, timeout=30.0):
            stopped.append(record.name.removeprefix("endpoint-"))
    return stopped


def list_views(settings: Settings) -> list[EndpointView]:
    registry = EndpointRegistry(settings)
    return [registry.view(name) for name in registry.names()]
