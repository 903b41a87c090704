"""The Step Functions service: state machines, executions in background threads, stop, crash detection.

:class:`StepFunctionsService` is what the CLI and the AWS wire layer (:mod:`.responses`) call. It keeps
state in the metadata database (:mod:`.executions`) and runs each execution with the engine
(:func:`sconeflow.stepfunctions.engine.run_execution`) in a thread of the process that started it.

A process-wide :class:`_Runs` registry tracks the executions this process is running. Its heartbeat
thread stamps them in the database every second, flushes buffered history events, and picks up stop
requests written by other processes (``sconeflow sfn stop`` while the gateway runs the execution).
An execution whose runner process is gone (or silent for :data:`STALE_AFTER_S`) is shown as ABORTED
with error ``RunnerDied`` the next time anyone lists or describes it, never RUNNING forever.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import random
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sconeflow.config import Settings
from sconeflow.errors import SconeflowError
from sconeflow.services import pid_alive
from sconeflow.stepfunctions.executions import (
    AliasRecord,
    ConflictException,
    EventRow,
    ExecutionRecord,
    ExecutionStore,
    ServiceQuotaExceeded,
    StateMachineDoesNotExist,
    StateMachineRecord,
    VersionRecord,
    event_to_row,
    version_arn_of,
)
from sconeflow.stepfunctions.intrinsics import finite_float

log = logging.getLogger(__name__)

HEARTBEAT_INTERVAL_S = 1.0
POLL_INTERVAL_S = 0.25  # flush buffered events and look for stop requests this often
STALE_AFTER_S = 30.0
STOP_WAIT_S = 3.0
FLUSH_EVERY_S = 0.25
FLUSH_BATCH = 256
MAX_PAYLOAD_BYTES = 262_144
DEFAULT_ROLE = "arn:aws:iam::{account}:role/service-role/StepFunctions-sconeflow"

_NAME_RE = re.compile(r"^[^\s<>{}\[\]?*\"#%\\^|~`$&,;:/\x00-\x1f\x7f-\x9f]{1,80}$")
_HOST = socket.gethostname()
_PROCESS_TOKEN = uuid.uuid4().hex


class InvalidName(SconeflowError):
    """A state machine or execution name breaks AWS's naming rules."""


class InvalidArn(SconeflowError):
    """An ARN is malformed."""


class InvalidExecutionInput(SconeflowError):
    """The execution input is not JSON or is larger than 256 KiB."""


class StateMachineTypeNotSupported(SconeflowError):
    """The operation needs another state machine type (StartSyncExecution needs EXPRESS)."""


class ValidationException(SconeflowError):
    """A request parameter is invalid."""


class ResourceNotFound(SconeflowError):
    """A tagged resource (a state machine ARN) does not exist."""


class TooManyTags(SconeflowError):
    """A resource would carry more than :data:`MAX_TAGS` tags."""


MAX_TAGS = 50  # AWS's limit of tags per resource
MAX_DESCRIPTION = 256  # AWS: version and alias descriptions

# AWS's pattern for alias names: letters, digits, _ - . with at least one non-digit, so that an alias
# ARN can never be read as a version ARN (``<machine ARN>:1``)
_ALIAS_NAME_PATTERN = r"^(?=.*[a-zA-Z_\-\.])[a-zA-Z0-9_\-\.]+$"
_ALIAS_NAME_RE = re.compile(_ALIAS_NAME_PATTERN)
_NOT_FOUND = "Request references a resource that does not exist."


def _constraint(value: Any, field: str, constraint: str) -> ValidationException:
    """AWS's wording for a request member that breaks its model constraint."""
    return ValidationException(
        f"1 validation error detected: Value '{value}' at '{field}' "
        f"failed to satisfy constraint: {constraint}"
    )


def check_description(description: Any, field: str = "description") -> str | None:
    if description is None:
        return None
    if not isinstance(description, str) or len(description) > MAX_DESCRIPTION:
        raise _constraint(
            description, field, f"Member must have length less than or equal to {MAX_DESCRIPTION}"
        )
    return description


def check_alias_name(name: Any) -> str:
    if not isinstance(name, str) or not name:
        raise ValidationException("Invalid length for parameter name, value: 0, valid min length: 1")
    if len(name) > 80:
        raise _constraint(name, "name", "Member must have length less than or equal to 80")
    if not _ALIAS_NAME_RE.match(name):
        raise _constraint(
            name, "name", f"Member must satisfy regular expression pattern: {_ALIAS_NAME_PATTERN}"
        )
    return name


def alias_arn_of(ref: str) -> tuple[str, str] | None:
    """``(machine ARN, alias name)`` when ``ref`` is an alias ARN (``arn:...:stateMachine:x:PROD``)."""
    if not ref.startswith("arn:"):
        return None
    base, _, suffix = ref.rpartition(":")
    if not suffix or suffix.isdigit() or base.count(":") != 6 or base.split(":")[5] != "stateMachine":
        return None
    return base, suffix


def check_routing(routing: Any) -> tuple[str, list[tuple[str, int]]]:
    """(machine ARN, [(version ARN, weight)]) of a ``routingConfiguration``, checked as AWS does:
    one or two distinct version ARNs of one state machine, weights 0-100 summing to 100."""
    if not isinstance(routing, list) or not routing:
        raise ValidationException(
            "Invalid length for parameter routingConfiguration, value: 0, valid min length: 1"
        )
    items: list[tuple[str, int]] = []
    for item in routing:
        arn = item.get("stateMachineVersionArn") if isinstance(item, dict) else None
        weight = item.get("weight") if isinstance(item, dict) else None
        if not isinstance(arn, str) or isinstance(weight, bool) or not isinstance(weight, int):
            raise ValidationException(
                "Each routingConfiguration item needs a stateMachineVersionArn (string) "
                "and a weight (integer)"
            )
        items.append((arn, weight))
    if len(items) > 2:
        listed = ", ".join(
            f"RoutingConfigurationListItem(stateMachineVersionArn={a}, weight={w})" for a, w in items
        )
        raise _constraint(
            f"[{listed}]", "routingConfiguration", "Member must have length less than or equal to 2"
        )
    arns = [a for a, _ in items]
    if len(set(arns)) < len(arns):
        raise ValidationException(
            "Routing configuration must contain distinct state machine version ARNs. "
            f"Received: [{', '.join(arns)}]"
        )
    for i, (_, weight) in enumerate(items, start=1):
        if weight < 0:
            raise ValidationException(
                f"Invalid value for parameter routingConfiguration[{i}].weight, value: {weight}, "
                "valid min value: 0"
            )
        if weight > 100:
            raise _constraint(
                weight,
                f"routingConfiguration.{i}.member.weight",
                "Member must have value less than or equal to 100",
            )
    weights = [w for _, w in items]
    if sum(weights) != 100:
        raise ValidationException(
            f"Sum of routing configuration weights must equal 100. Received: {json.dumps(weights)}"
        )
    parsed = [version_arn_of(a) for a in arns]
    if any(p is None for p in parsed):
        raise ValidationException(
            f"Routing configuration must contain state machine version ARNs. Received: [{', '.join(arns)}]"
        )
    machines = {p[0] for p in parsed if p is not None}
    if len(machines) > 1:
        raise ValidationException(
            "Routing configuration must contain state machine version ARNs of the same state machine. "
            f"Received: [{', '.join(arns)}]"
        )
    # normalized: <machine ARN>:<n> (a version ARN written with a leading zero names the same version)
    return machines.pop(), [(f"{p[0]}:{p[1]}", w) for p, (_, w) in zip(parsed, items, strict=True) if p]


def check_tags(tags: Any) -> list[tuple[str, str]]:
    """``[{"key": ..., "value": ...}, ...]`` as (key, value) pairs, checked against AWS's constraints."""
    pairs: list[tuple[str, str]] = []
    for tag in tags or []:
        key = tag.get("key") if isinstance(tag, dict) else None
        value = tag.get("value", "") if isinstance(tag, dict) else None
        if not isinstance(key, str) or not 1 <= len(key) <= 128:
            raise ValidationException(f"Invalid tag key {key!r}: 1-128 characters")
        if not isinstance(value, str) or len(value) > 256:
            raise ValidationException(f"Invalid value for tag {key!r}: at most 256 characters")
        pairs.append((key, value))
    if len({k for k, _ in pairs}) > MAX_TAGS:
        raise TooManyTags(f"Too many tags: a resource can have at most {MAX_TAGS} tags")
    return pairs


def check_name(name: str, what: str = "name") -> str:
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise InvalidName(
            f"Invalid {what}: {name!r} (1-80 characters, no whitespace, brackets, wildcards or "
            'special characters such as " # % \\ ^ | ~ ` $ & , ; : /)'
        )
    return name


def check_input(input_text: str | None) -> str:
    text = "{}" if input_text is None else input_text
    if len(text.encode("utf-8")) > MAX_PAYLOAD_BYTES:
        raise InvalidExecutionInput(f"Execution input is larger than {MAX_PAYLOAD_BYTES} bytes (256 KiB)")
    try:
        # a number a 64-bit float cannot hold (1e999) is refused too: read as inf it would come back
        # as Infinity in the output, which is not JSON (documented in docs/stepfunctions.md)
        json.loads(text, parse_constant=_reject_constant, parse_float=finite_float)
    except ValueError as exc:
        raise InvalidExecutionInput(f"Invalid State Machine Execution Input: '{exc}'") from exc
    return text


def _reject_constant(token: str) -> Any:
    """NaN, Infinity and -Infinity are Python's JSON extensions, not JSON: AWS refuses them."""
    raise ValueError(f"Non-standard token '{token}' is not valid JSON")


# -- the process-wide registry of running executions -------------------------------------------


class _BufferedListener:
    """A HistoryListener that serializes each event at once and writes them to the database in batches."""

    def __init__(self, store: ExecutionStore, arn: str) -> None:
        self.store = store
        self.arn = arn
        self._lock = threading.Lock()
        self.io_lock = threading.Lock()  # one writer at a time: periodic flushes vs the final write
        self._buffer: list[EventRow] = []
        self._last_flush = time.monotonic()
        self.last_row: EventRow | None = None
        self.max_id = 0

    def on_event(self, event: dict) -> None:
        self.add_row(event_to_row(event), flush=True)

    def add_row(self, row: EventRow, *, flush: bool = False) -> None:
        with self._lock:
            self._buffer.append(row)
            self.last_row = row
            self.max_id = max(self.max_id, row[0])
            due = len(self._buffer) >= FLUSH_BATCH or time.monotonic() - self._last_flush > FLUSH_EVERY_S
        if flush and due:
            self.flush()

    def flush(self) -> None:
        with self.io_lock:
            with self._lock:
                rows, self._buffer = self._buffer, []
                self._last_flush = time.monotonic()
            if rows:
                try:
                    self.store.append_events(self.arn, rows)
                except Exception:  # the runner must survive a busy database; rows are re-sent at the end
                    log.exception("could not store history events of %s", self.arn)
                    with self._lock:
                        self._buffer[:0] = rows

    def drain(self) -> list[EventRow]:
        with self._lock:
            rows, self._buffer = self._buffer, []
        return rows

    def next_row(self, type_: str, key: str, details: dict[str, Any]) -> EventRow:
        return (self.max_id + 1, self.max_id, type_, time.time(), json.dumps({key: details}))


@dataclass
class _Run:
    arn: str
    store: ExecutionStore
    listener: _BufferedListener
    cancel: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    stop_error: str | None = None
    stop_cause: str | None = None
    stopped: bool = False

    def request_stop(self, error: str | None, cause: str | None) -> None:
        if not self.stopped:
            self.stopped = True
            self.stop_error, self.stop_cause = error, cause
        self.cancel.set()


class _Runs:
    """Executions running in this process, and the heartbeat thread that keeps them honest."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runs: dict[str, _Run] = {}
        self._thread: threading.Thread | None = None
        self._wake = threading.Event()

    def add(self, run: _Run) -> None:
        with self._lock:
            self._runs[run.arn] = run
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._beat, name="sfn-heartbeat", daemon=True)
                self._thread.start()

    def remove(self, arn: str) -> None:
        with self._lock:
            self._runs.pop(arn, None)

    def get(self, arn: str) -> _Run | None:
        with self._lock:
            return self._runs.get(arn)

    def active(self) -> list[_Run]:
        with self._lock:
            return list(self._runs.values())

    def _beat(self) -> None:
        last_beat = 0.0
        while True:
            self._wake.wait(POLL_INTERVAL_S)
            self._wake.clear()
            runs = self.active()
            if not runs:
                with self._lock:
                    if not self._runs:
                        self._thread = None
                        return
                continue
            by_db: dict[str, list[_Run]] = {}
            for run in runs:
                by_db.setdefault(str(run.store.db.path), []).append(run)
            now = time.time()
            for group in by_db.values():
                store = group[0].store
                arns = [r.arn for r in group]
                try:
                    if now - last_beat >= HEARTBEAT_INTERVAL_S:
                        store.heartbeat(arns, now)
                    requests = store.stop_requests(arns)
                except Exception:
                    log.exception("heartbeat of %d execution(s) failed", len(arns))
                    continue
                for run in group:
                    if run.arn in requests:
                        run.request_stop(*requests[run.arn])
                    run.listener.flush()
            if now - last_beat >= HEARTBEAT_INTERVAL_S:
                last_beat = now


_RUNS = _Runs()


@atexit.register
def _abort_on_exit() -> None:
    """This process is shutting down (e.g. `sconeflow down` stopping the gateway): end its executions."""
    runs = _RUNS.active()
    if not runs:
        return
    cause = (
        f"The sconeflow process that ran this execution (pid {os.getpid()} on {_HOST}) shut down "
        "before the execution finished."
    )
    for run in runs:
        try:
            run.listener.flush()
            run.store.force_abort(run.arn, error="RunnerStopped", cause=cause, stop_date=datetime.now(UTC))
        except Exception:  # best effort at interpreter exit; reconcile() catches what is left
            log.debug("could not record the shutdown of %s", run.arn, exc_info=True)


# -- the service ------------------------------------------------------------------------------


def _version(machine_ref: str) -> str | None:
    """The version ARN ``machine_ref`` names (call after the machine lookup succeeded), else None."""
    parsed = version_arn_of(machine_ref)
    return f"{parsed[0]}:{parsed[1]}" if parsed else None


IntegrationsFactory = Callable[[StateMachineRecord], Any]


class StepFunctionsService:
    """Create and run state machines. Cheap to construct; all state is in the database."""

    def __init__(
        self,
        settings: Settings,
        *,
        integrations: IntegrationsFactory | None = None,
        clock: Any | None = None,
    ) -> None:
        self.settings = settings
        self.store = ExecutionStore(settings)
        self._integrations_factory = integrations
        self._clock = clock
        self._parsed: dict[tuple[str, str], Any] = {}

    # -- ARNs ---------------------------------------------------------------------------------
    def machine_arn(self, name: str) -> str:
        return f"arn:aws:states:{self.settings.region}:{self.settings.account}:stateMachine:{name}"

    def execution_arn(self, machine_name: str, name: str, kind: str = "STANDARD") -> str:
        prefix = f"arn:aws:states:{self.settings.region}:{self.settings.account}"
        if kind == "EXPRESS":
            return f"{prefix}:express:{machine_name}:{name}:{uuid.uuid4()}"
        return f"{prefix}:execution:{machine_name}:{name}"

    # -- state machines -----------------------------------------------------------------------
    def create_state_machine(
        self,
        name: str,
        definition: str,
        *,
        type: str = "STANDARD",
        role_arn: str | None = None,
        function_map: dict[str, str] | None = None,
        update: bool = False,
        tags: Any = None,
    ) -> StateMachineRecord:
        """Validate and store a state machine; with ``update`` an existing one gains a new revision.

        ``tags`` (``[{"key", "value"}]``, as CreateStateMachine takes them) are added to its tags."""
        from sconeflow.stepfunctions.engine import parse_definition

        check_name(name, "state machine name")
        tag_pairs = check_tags(tags)
        if type not in ("STANDARD", "EXPRESS"):
            raise ValidationException(f"Invalid type {type!r}: use STANDARD or EXPRESS")
        parse_definition(definition)  # raises InvalidDefinition with diagnostics
        if type == "EXPRESS":
            from sconeflow.stepfunctions.validate import validate_definition

            result = validate_definition(definition, state_machine_type="EXPRESS")
            if result.result == "FAIL":
                from sconeflow.stepfunctions.errors import InvalidDefinition

                raise InvalidDefinition(
                    "; ".join(d.message for d in result.diagnostics) or "invalid EXPRESS definition",
                    result.diagnostics,
                )
        machine = self.store.put_machine(
            arn=self.machine_arn(name),
            name=name,
            definition=definition,
            type=type,
            role_arn=role_arn or DEFAULT_ROLE.format(account=self.settings.account),
            function_map=dict(function_map or {}),
            revision_id=str(uuid.uuid4()),
            update=update,
        )
        if tag_pairs and not self.store.tag(machine.arn, tag_pairs, MAX_TAGS):
            raise TooManyTags(f"Too many tags: a resource can have at most {MAX_TAGS} tags")
        return machine

    # -- tags ---------------------------------------------------------------------------------
    def _tagged(self, resource_arn: str) -> str:
        """The ARN of the state machine ``resource_arn`` names exactly (tags are per state machine)."""
        try:
            machine = self.store.get_machine(resource_arn)
        except SconeflowError:
            machine = None
        if machine is None or machine.arn != resource_arn:
            raise ResourceNotFound(f"Resource not found: '{resource_arn}'")
        return machine.arn

    def tag_resource(self, resource_arn: str, tags: Any) -> None:
        arn = self._tagged(resource_arn)
        if not self.store.tag(arn, check_tags(tags), MAX_TAGS):
            raise TooManyTags(f"Too many tags: a resource can have at most {MAX_TAGS} tags")

    def untag_resource(self, resource_arn: str, keys: list[str]) -> None:
        self.store.untag(self._tagged(resource_arn), list(keys or []))

    def list_tags(self, resource_arn: str) -> list[dict[str, str]]:
        return [{"key": k, "value": v} for k, v in self.store.tags(self._tagged(resource_arn))]

    def describe_state_machine(self, ref: str) -> StateMachineRecord:
        return self.store.get_machine(ref)

    # -- versions -----------------------------------------------------------------------------
    def publish_version(
        self, ref: str, *, revision_id: str | None = None, description: str | None = None
    ) -> VersionRecord:
        """Publish the current revision as the next version (1, 2, 3 ... as AWS numbers them);
        a revision published before is answered with its existing version."""
        check_description(description)
        machine = self.store.get_machine(ref)
        if machine.arn != ref and machine.name != ref:
            raise StateMachineDoesNotExist(f"State Machine Does Not Exist: '{ref}'")
        version, _ = self.store.publish_version(machine.arn, revision_id=revision_id, description=description)
        return version

    def describe_version(self, version_arn: str) -> tuple[VersionRecord, StateMachineRecord]:
        """A published version and the revision it names (DescribeStateMachine on a version ARN)."""
        parsed = version_arn_of(version_arn)
        version = self.store.get_version(*parsed) if parsed else None
        if version is None:
            raise StateMachineDoesNotExist(f"State Machine Does Not Exist: '{version_arn}'")
        return version, self.store.get_machine_revision(version.machine_arn, version.revision)

    def list_versions(self, machine_arn: str) -> list[VersionRecord]:
        machine = self.store.get_machine(machine_arn)
        if machine.arn != machine_arn:
            raise InvalidArn(f"Invalid Arn: 'Resource type not valid in this context: {machine_arn}'")
        return self.store.list_versions(machine.arn)

    def delete_version(self, version_arn: str) -> None:
        """Delete a published version; one that does not exist is no error (as on AWS), one an alias
        routes to is ConflictException. Running executions of the version go on."""
        parsed = version_arn_of(version_arn)
        if parsed is None:
            raise InvalidArn(f"Invalid Arn: 'Resource type not valid in this context: {version_arn}'")
        self.store.delete_version(*parsed)

    # -- aliases ------------------------------------------------------------------------------
    def create_alias(self, name: Any, routing: Any, description: Any = None) -> tuple[AliasRecord, bool]:
        check_alias_name(name)
        check_description(description)
        machine_arn, items = check_routing(routing)
        result = self.store.put_alias(
            machine_arn=machine_arn, name=name, description=description, routing=items
        )
        if result is None:
            raise ResourceNotFound(_NOT_FOUND)
        return result

    def describe_alias(self, alias_arn: str) -> AliasRecord:
        if alias_arn_of(alias_arn) is None:
            raise InvalidArn(f"Invalid Arn: 'Resource type not valid in this context: {alias_arn}'")
        alias = self.store.get_alias(alias_arn)
        if alias is None:
            raise ResourceNotFound(_NOT_FOUND)
        return alias

    def update_alias(self, alias_arn: str, *, description: Any = None, routing: Any = None) -> AliasRecord:
        if alias_arn_of(alias_arn) is None:
            raise InvalidArn(f"Invalid Arn: 'Resource type not valid in this context: {alias_arn}'")
        if description is None and routing is None:
            raise ValidationException(
                "Either the description or the routingConfiguration must be specified to update an alias"
            )
        check_description(description)
        items = None
        if routing is not None:
            machine_arn, items = check_routing(routing)
            if machine_arn != alias_arn.rpartition(":")[0]:
                raise ValidationException(
                    "Routing configuration must contain state machine version ARNs of the alias's state "
                    f"machine. Received: [{', '.join(a for a, _ in items)}]"
                )
        result = self.store.update_alias(alias_arn, description=description, routing=items)
        if result is False or result is True:  # no such alias / a routed version does not exist
            raise ResourceNotFound(_NOT_FOUND)
        return result

    def delete_alias(self, alias_arn: str) -> None:
        """Delete an alias (its versions stay); one that does not exist is no error, as on AWS."""
        if alias_arn_of(alias_arn) is None:
            raise InvalidArn(f"Invalid Arn: 'Resource type not valid in this context: {alias_arn}'")
        self.store.delete_alias(alias_arn)

    def list_aliases(self, ref: str) -> list[AliasRecord]:
        """The aliases of a state machine, oldest first; given a version ARN, those routing to it."""
        machine = self.store.get_machine(ref)
        aliases = self.store.list_aliases(machine.arn)
        if ref.startswith(machine.arn + ":"):  # a version ARN (a name or the machine ARN: all of them)
            aliases = [a for a in aliases if any(v == ref for v, _ in a.routing)]
        return aliases

    def machine_of(self, ref: str) -> StateMachineRecord:
        """The state machine a name, ARN, version ARN or alias ARN belongs to."""
        target = alias_arn_of(ref)
        if target is not None and self.store.get_alias(ref) is not None:
            return self.store.get_machine(target[0])
        return self.store.get_machine(ref)

    def _resolve(self, ref: str) -> tuple[StateMachineRecord, str | None, str | None]:
        """(revision to run, version ARN, alias ARN) for what StartExecution was given: an alias
        picks one of its versions at random by the routing weights, as AWS does."""
        if alias_arn_of(ref) is not None:
            alias = self.store.get_alias(ref)
            if alias is None:
                raise StateMachineDoesNotExist(f"State Machine Does Not Exist: '{ref}'")
            versions = [v for v, w in alias.routing if w > 0]
            weights = [w for _, w in alias.routing if w > 0]
            version_arn = random.choices(versions, weights=weights)[0]
            return self.store.get_machine(version_arn), version_arn, alias.arn
        return self.store.get_machine(ref), _version(ref), None

    def list_state_machines(self) -> list[StateMachineRecord]:
        return self.store.list_machines()

    def delete_state_machine(self, ref: str) -> StateMachineRecord:
        """Delete a state machine with its versions and aliases (executions keep what they ran)."""
        machine = self.store.get_machine(ref)
        if ref not in (machine.arn, machine.name):  # a version or alias ARN: never the whole machine
            raise ValidationException(
                f"Invalid Arn: '{ref}': DeleteStateMachine takes a state machine ARN; delete versions "
                "with DeleteStateMachineVersion and aliases with DeleteStateMachineAlias"
            )
        for execution in self.store.list_executions(machine.arn, status="RUNNING"):
            self.stop_execution(
                execution.arn, error="StateMachineDeleted", cause="The state machine was deleted"
            )
        return self.store.delete_machine(machine.arn)

    def _machine_model(self, machine: StateMachineRecord) -> Any:
        from sconeflow.stepfunctions.engine import parse_definition

        key = (machine.arn, machine.revision_id)  # a machine deleted and created again gets a new id
        model = self._parsed.get(key)
        if model is None:
            model = parse_definition(machine.definition)
            self._parsed[key] = model
        return model

    def _integrations(self, machine: StateMachineRecord) -> Any:
        if self._integrations_factory is not None:
            return self._integrations_factory(machine)
        from sconeflow.stepfunctions.integrations import LocalIntegrations

        return LocalIntegrations(self.settings, function_map=machine.function_map)

    # -- executions ---------------------------------------------------------------------------
    def start_execution(
        self, machine_ref: str, input_text: str | None = None, *, name: str | None = None
    ) -> ExecutionRecord:
        """Start an execution in a background thread of this process; returns its RUNNING record.

        ``machine_ref``: a name, ARN, version ARN or alias ARN (an alias picks a version by weight)."""
        machine, version_arn, alias_arn = self._resolve(machine_ref)
        # an EXPRESS machine's asynchronous executions get AWS's express ARN too
        # (arn:aws:states:<region>:<account>:express:<machine>:<name>:<uuid>)
        return self._start(
            machine,
            input_text,
            name,
            kind=machine.type,
            background=True,
            version_arn=version_arn,
            alias_arn=alias_arn,
        )

    def start_sync_execution(
        self, machine_ref: str, input_text: str | None = None, *, name: str | None = None
    ) -> ExecutionRecord:
        """Run an EXPRESS execution to its end in the calling thread (StartSyncExecution)."""
        machine, version_arn, alias_arn = self._resolve(machine_ref)
        if machine.type != "EXPRESS":
            raise StateMachineTypeNotSupported(
                "This operation is not supported by this type of state machine"
            )
        return self._start(
            machine,
            input_text,
            name,
            kind="EXPRESS",
            background=False,
            version_arn=version_arn,
            alias_arn=alias_arn,
        )

    def run_to_end(
        self, machine_ref: str, input_text: str | None = None, *, name: str | None = None
    ) -> ExecutionRecord:
        """Start an execution of any type and wait for it in this thread (``sfn start --wait``)."""
        machine, version_arn, alias_arn = self._resolve(machine_ref)
        return self._start(
            machine,
            input_text,
            name,
            kind=machine.type,
            background=False,
            version_arn=version_arn,
            alias_arn=alias_arn,
        )

    def _start(
        self,
        machine: StateMachineRecord,
        input_text: str | None,
        name: str | None,
        *,
        kind: str,
        background: bool,
        version_arn: str | None = None,
        alias_arn: str | None = None,
    ) -> ExecutionRecord:
        """``version_arn``: the version the caller named, or the one its alias (``alias_arn``) routed
        to (``machine`` is then that version's revision); AWS associates the execution with them, an
        unqualified ARN with neither."""
        from sconeflow.stepfunctions.engine import ExecutionContext

        name = check_name(name or str(uuid.uuid4()), "execution name")
        text = check_input(input_text)
        model = self._machine_model(machine)
        integrations = self._integrations(machine)
        arn = self.execution_arn(machine.name, name, kind)
        start = datetime.now(UTC)
        listener = _BufferedListener(self.store, arn)
        run = _Run(arn=arn, store=self.store, listener=listener)
        _RUNS.add(run)
        try:
            record = self.store.insert_execution(
                arn=arn,
                name=name,
                machine=machine,
                kind=kind,
                input_text=text,
                start_date=start,
                runner=(_HOST, os.getpid(), _PROCESS_TOKEN),
                version_arn=version_arn,
                alias_arn=alias_arn,
            )
        except BaseException:
            _RUNS.remove(arn)
            raise
        context = ExecutionContext(
            execution_arn=arn,
            execution_name=name,
            state_machine_arn=machine.arn,
            state_machine_name=machine.name,
            role_arn=machine.role_arn,
            start_time=start,
            version_arn=version_arn,
            alias_arn=alias_arn,
        )

        def target() -> None:
            self._run(run, model, text, context, integrations)

        if background:
            thread = threading.Thread(target=target, name=f"sfn-{name}", daemon=True)
            thread.start()
            return record
        target()
        return self.store.get_execution(arn)

    def _run(self, run: _Run, model: Any, text: str, context: Any, integrations: Any) -> None:
        from sconeflow.stepfunctions.engine import run_execution

        listener = run.listener
        try:
            try:
                result = run_execution(
                    model,
                    text,
                    context,
                    integrations,
                    listener=listener,
                    cancel=run.cancel,
                    clock=self._clock,
                )
                status, output, error, cause = result.status, result.output, result.error, result.cause
                if not listener.max_id and result.events:  # an engine that does not call the listener
                    for event in result.events:
                        listener.on_event(event)
            except KeyboardInterrupt:  # Ctrl-C on `sfn start --wait`: record it honestly, then re-raise
                listener.flush()
                self.store.force_abort(
                    run.arn,
                    error="Interrupted",
                    cause="The sconeflow process running this execution was interrupted (Ctrl-C).",
                    stop_date=datetime.now(UTC),
                )
                raise
            except Exception as exc:  # an engine bug must not leave the execution RUNNING
                log.exception("execution %s crashed", run.arn)
                status, output, error = "FAILED", None, "States.Runtime"
                cause = f"The local engine failed: {type(exc).__name__}: {exc}"
                listener.add_row(
                    listener.next_row(
                        "ExecutionFailed", "executionFailedEventDetails", {"error": error, "cause": cause}
                    )
                )
            with listener.io_lock:
                if run.stopped and status == "ABORTED":
                    error, cause = run.stop_error, run.stop_cause
                    details = {k: v for k, v in (("error", error), ("cause", cause)) if v is not None}
                    aborted = listener.next_row("ExecutionAborted", "executionAbortedEventDetails", details)
                    last = listener.last_row
                    if last is not None and last[2] == "ExecutionAborted":  # the engine's: keep id, time
                        aborted = (*last[:4], aborted[4])
                    events = [r for r in listener.drain() if r[0] != aborted[0]]
                    events.append(aborted)  # written with INSERT OR REPLACE: the stop's error/cause win
                else:
                    events = listener.drain()
                stored = self.store.finish(
                    run.arn,
                    status=status,
                    output=output,
                    error=error,
                    cause=cause,
                    stop_date=datetime.fromtimestamp(events[-1][3], tz=UTC) if events else datetime.now(UTC),
                    events=events,
                )
            if not stored:
                log.info("execution %s was ended from outside (stopped); result dropped", run.arn)
        except Exception:
            log.exception("could not record the end of execution %s", run.arn)
        finally:
            _RUNS.remove(run.arn)
            run.done.set()

    def describe_execution(self, ref: str) -> ExecutionRecord:
        record = self.store.get_execution(ref)
        if record.status == "RUNNING":
            self.reconcile([record])
            record = self.store.get_execution(record.arn)
        return record

    def list_executions(
        self, machine_ref: str | None = None, status: str | None = None, limit: int | None = None
    ) -> list[ExecutionRecord]:
        """Newest first. A version ARN (``...:stateMachine:x:2``) lists only the executions of that
        version (started through it or through an alias that routed to it), an alias ARN only those
        started through the alias, as ListExecutions does; the unqualified ARN or name lists them all."""
        machine_arn = self.machine_of(machine_ref).arn if machine_ref else None
        version_arn = _version(machine_ref) if machine_ref else None
        alias_arn = machine_ref if machine_ref and alias_arn_of(machine_ref) else None
        running = self.store.list_executions(
            machine_arn, status="RUNNING", version_arn=version_arn, alias_arn=alias_arn
        )
        self.reconcile(running)
        return self.store.list_executions(
            machine_arn, status=status, limit=limit, version_arn=version_arn, alias_arn=alias_arn
        )

    def history(self, ref: str) -> tuple[ExecutionRecord, list[dict[str, Any]]]:
        record = self.describe_execution(ref)
        run = _RUNS.get(record.arn)
        if run is not None:
            run.listener.flush()
        return record, self.store.history(record.arn)

    def wait(self, ref: str, timeout: float | None = None) -> ExecutionRecord:
        """Block until the execution ends (or ``timeout`` passes); return its latest record."""
        record = self.store.get_execution(ref)
        deadline = None if timeout is None else time.monotonic() + timeout
        run = _RUNS.get(record.arn)
        if run is not None:
            run.done.wait(timeout)
            return self.store.get_execution(record.arn)
        while record.status == "RUNNING" and (deadline is None or time.monotonic() < deadline):
            time.sleep(0.1)
            record = self.describe_execution(record.arn)
        return record

    def stop_execution(
        self, ref: str, *, error: str | None = None, cause: str | None = None
    ) -> ExecutionRecord:
        """Abort a RUNNING execution (ExecutionAborted); a finished one is returned unchanged."""
        if error is not None and len(error) > 256:
            raise ValidationException("error must be at most 256 characters")
        if cause is not None and len(cause) > 32_768:
            raise ValidationException("cause must be at most 32768 characters")
        record = self.store.get_execution(ref)
        if record.status != "RUNNING":
            return record
        run = _RUNS.get(record.arn)
        if run is not None:
            run.request_stop(error, cause)
            run.done.wait(STOP_WAIT_S)
        elif self._runner_dead(record) is None:
            self.store.request_stop(record.arn, error, cause)
            deadline = time.monotonic() + STOP_WAIT_S
            while time.monotonic() < deadline:
                if self.store.get_execution(record.arn).status != "RUNNING":
                    break
                time.sleep(0.05)
        # the runner did not end it in time (busy in a Lambda call) or is gone: end it here
        self.store.force_abort(record.arn, error=error, cause=cause, stop_date=datetime.now(UTC))
        return self.store.get_execution(record.arn)

    # -- crash detection ----------------------------------------------------------------------
    def _runner_dead(self, record: ExecutionRecord) -> str | None:
        """Why the runner of a RUNNING execution is known to be gone, or None if it may be alive."""
        if _RUNS.get(record.arn) is not None:
            return None
        pid = record.runner_pid or 0
        where = f"pid {pid} on {record.runner_host}"
        if record.runner_token == _PROCESS_TOKEN:
            return f"its runner thread in this process ({where}) ended without recording a result"
        if record.runner_host == _HOST and (pid == os.getpid() or not pid_alive(pid)):
            return f"the process that ran it ({where}) exited before the execution finished"
        if record.heartbeat is not None and time.time() - record.heartbeat > STALE_AFTER_S:
            beat = datetime.fromtimestamp(record.heartbeat, tz=UTC).isoformat(timespec="seconds")
            return f"the process that ran it ({where}) stopped sending heartbeats (last {beat})"
        return None

    def reconcile(self, records: list[ExecutionRecord]) -> int:
        """Mark RUNNING executions whose runner died as ABORTED (error RunnerDied). Returns how many."""
        count = 0
        for record in records:
            if record.status != "RUNNING":
                continue
            reason = self._runner_dead(record)
            if reason is None:
                continue
            cause = f"The execution was aborted because {reason}."
            if self.store.force_abort(
                record.arn, error="RunnerDied", cause=cause, stop_date=datetime.now(UTC)
            ):
                log.info("execution %s: %s", record.arn, cause)
                count += 1
        return count


__all__ = [
    "ConflictException",
    "InvalidArn",
    "InvalidExecutionInput",
    "InvalidName",
    "ResourceNotFound",
    "ServiceQuotaExceeded",
    "StateMachineTypeNotSupported",
    "StepFunctionsService",
    "TooManyTags",
    "ValidationException",
    "check_input",
    "check_name",
    "check_tags",
    "event_to_row",
]
