"""Static validation of ASL definitions, with diagnostics shaped like ValidateStateMachineDefinition.

Works on the raw JSON text so that duplicate keys (which ``json.loads`` silently collapses) are seen.
Codes follow AWS: ``INVALID_JSON_DESCRIPTION``, ``SCHEMA_VALIDATION_FAILED``,
``MISSING_TRANSITION_TARGET``, ``DUPLICATE_STATE_NAME``, ``UNREACHABLE_STATE``, ``INVALID_RESOURCE``,
plus ``UNSUPPORTED_LOCALLY`` for integrations sconeflow cannot run.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from sconeflow.stepfunctions import choice, intrinsics, jsonata_eval, jsonpath

SCHEMA = "SCHEMA_VALIDATION_FAILED"
INVALID_JSON = "INVALID_JSON_DESCRIPTION"
MISSING_TARGET = "MISSING_TRANSITION_TARGET"
DUPLICATE_NAME = "DUPLICATE_STATE_NAME"
UNREACHABLE = "UNREACHABLE_STATE"
INVALID_RESOURCE = "INVALID_RESOURCE"
UNSUPPORTED = "UNSUPPORTED_LOCALLY"


@dataclass(frozen=True)
class Diagnostic:
    severity: str  # "ERROR" | "WARNING"
    code: str  # e.g. "SCHEMA_VALIDATION_FAILED", "INVALID_JSON_DESCRIPTION"
    message: str
    location: str | None = None  # e.g. "/States/Classify/Next"

    def to_api(self) -> dict[str, str]:
        out = {"severity": self.severity, "code": self.code, "message": self.message}
        if self.location is not None:
            out["location"] = self.location
        return out


@dataclass(frozen=True)
class ValidationResult:
    result: str  # "OK" | "FAIL"
    diagnostics: list[Diagnostic] = field(default_factory=list)
    truncated: bool = False

    def to_api(self) -> dict:
        return {
            "result": self.result,
            "diagnostics": [d.to_api() for d in self.diagnostics],
            "truncated": self.truncated,
        }

    @property
    def ok(self) -> bool:
        return self.result == "OK"


class _Obj(dict):
    """A JSON object that remembers the keys it saw more than once."""

    duplicates: list[str]


def _pairs_hook(pairs: list[tuple[str, Any]]) -> _Obj:
    obj = _Obj()
    obj.duplicates = []
    for key, value in pairs:
        if key in obj:
            obj.duplicates.append(key)
        obj[key] = value
    return obj


COMMON = {"Type", "Comment", "QueryLanguage"}
TRANSITION = {"Next", "End"}
FIELDS: dict[str, set[str]] = {
    "Pass": COMMON
    | TRANSITION
    | {"InputPath", "OutputPath", "ResultPath", "Parameters", "Result", "Assign", "Output"},
    "Task": COMMON
    | TRANSITION
    | {
        "InputPath",
        "OutputPath",
        "ResultPath",
        "Parameters",
        "ResultSelector",
        "Resource",
        "TimeoutSeconds",
        "TimeoutSecondsPath",
        "HeartbeatSeconds",
        "HeartbeatSecondsPath",
        "Retry",
        "Catch",
        "Credentials",
        "Assign",
        "Arguments",
        "Output",
    },
    "Choice": COMMON | {"Choices", "Default", "InputPath", "OutputPath", "Assign", "Output"},
    "Wait": COMMON
    | TRANSITION
    | {"InputPath", "OutputPath", "Seconds", "Timestamp", "SecondsPath", "TimestampPath", "Assign", "Output"},
    "Succeed": COMMON | {"InputPath", "OutputPath", "Output"},
    "Fail": COMMON | {"Error", "Cause", "ErrorPath", "CausePath"},
    "Parallel": COMMON
    | TRANSITION
    | {
        "InputPath",
        "OutputPath",
        "ResultPath",
        "Parameters",
        "ResultSelector",
        "Branches",
        "Retry",
        "Catch",
        "Assign",
        "Arguments",
        "Output",
    },
    "Map": COMMON
    | TRANSITION
    | {
        "InputPath",
        "OutputPath",
        "ResultPath",
        "Parameters",
        "ResultSelector",
        "ItemsPath",
        "Items",
        "ItemSelector",
        "ItemProcessor",
        "Iterator",
        "ItemReader",
        "ItemBatcher",
        "ResultWriter",
        "MaxConcurrency",
        "MaxConcurrencyPath",
        "ToleratedFailurePercentage",
        "ToleratedFailurePercentagePath",
        "ToleratedFailureCount",
        "ToleratedFailureCountPath",
        "Label",
        "Retry",
        "Catch",
        "Assign",
        "Arguments",
        "Output",
    },
}
JSONPATH_ONLY = {
    "InputPath",
    "OutputPath",
    "ResultPath",
    "Parameters",
    "ResultSelector",
    "ItemsPath",
    "SecondsPath",
    "TimestampPath",
    "ErrorPath",
    "CausePath",
    "MaxConcurrencyPath",
    "TimeoutSecondsPath",
    "HeartbeatSecondsPath",
    "ToleratedFailurePercentagePath",
    "ToleratedFailureCountPath",
}
JSONATA_ONLY = {"Arguments", "Output", "Items"}

LAMBDA_FUNCTION_ARN = re.compile(
    r"^arn:aws[a-zA-Z-]*:lambda:[a-z0-9-]+:\d{12}:function:[A-Za-z0-9_-]+(:(\$LATEST|[A-Za-z0-9_-]+))?$"
)
SUPPORTED_RESOURCES = {
    "arn:aws:states:::lambda:invoke",
    "arn:aws:states:::aws-sdk:lambda:invoke",
    "arn:aws:states:::sns:publish",
}


class _Checker:
    def __init__(self, state_machine_type: str) -> None:
        self.diagnostics: list[Diagnostic] = []
        self.type = state_machine_type
        self.names: dict[str, str] = {}  # state name -> first location

    def error(self, code: str, message: str, location: str | None) -> None:
        self.diagnostics.append(Diagnostic("ERROR", code, message, location))

    def warning(self, code: str, message: str, location: str | None) -> None:
        self.diagnostics.append(Diagnostic("WARNING", code, message, location))

    # --- machine ---------------------------------------------------------------------------

    def machine(self, raw: Any, loc: str, parent_ql: str, top: bool = False) -> None:
        if not isinstance(raw, dict):
            self.error(SCHEMA, "Expected an object", loc or "/")
            return
        missing = [f for f in ("States", "StartAt") if f not in raw]
        if missing:
            self.error(SCHEMA, f"These fields are required: [{', '.join(missing)}]", loc or "/")
            if "States" not in raw:
                return
        allowed = {"StartAt", "States", "Comment", "QueryLanguage"}
        allowed |= {"TimeoutSeconds", "Version"} if top else {"ProcessorConfig"}
        for key in raw:
            if key not in allowed:
                self.error(SCHEMA, f"Field '{key}' is not supported", f"{loc}/{key}")
        ql = raw.get("QueryLanguage", parent_ql)
        if "QueryLanguage" in raw and ql not in ("JSONPath", "JSONata"):
            self.error(SCHEMA, f"Invalid QueryLanguage: {ql}", f"{loc}/QueryLanguage")
            ql = parent_ql
        if top and "TimeoutSeconds" in raw:
            ts = raw["TimeoutSeconds"]
            if isinstance(ts, bool) or not isinstance(ts, int) or ts < 0:
                self.error(SCHEMA, "TimeoutSeconds must be a non-negative integer", f"{loc}/TimeoutSeconds")
        states = raw["States"]
        if not isinstance(states, dict) or not states:
            self.error(SCHEMA, "States must be a non-empty object", f"{loc}/States")
            return
        for dup in getattr(states, "duplicates", []):
            self.error(DUPLICATE_NAME, f"Duplicate State name: {dup}", f"{loc}/States/{dup}")
        start = raw.get("StartAt")
        if "StartAt" in raw and not isinstance(start, str):
            self.error(SCHEMA, "StartAt must be a state name", f"{loc}/StartAt")
        elif start is not None and start not in states:
            self.error(MISSING_TARGET, f"Missing 'Next' target: {start}", f"{loc}/StartAt")
        for name, body in states.items():
            sloc = f"{loc}/States/{name}"
            if name in self.names:
                self.error(DUPLICATE_NAME, f"Duplicate State name: {name}", sloc)
            else:
                self.names[name] = sloc
            if not 1 <= len(name) <= 80:
                self.error(SCHEMA, "State names must be 1 to 80 characters long", sloc)
            self.state(name, body, sloc, ql, states)
        self.reachability(start, states, loc)

    def reachability(self, start: Any, states: dict, loc: str) -> None:
        if not isinstance(start, str) or start not in states:
            return
        seen = set()
        todo = [start]
        while todo:
            name = todo.pop()
            if name in seen or name not in states:
                continue
            seen.add(name)
            body = states[name]
            if not isinstance(body, dict):
                continue
            targets = [body.get("Next"), body.get("Default")]
            for key in ("Choices", "Catch"):
                rules = body.get(key)
                if isinstance(rules, list):
                    targets += [c.get("Next") for c in rules if isinstance(c, dict)]
            todo.extend(t for t in targets if isinstance(t, str))
        for name in states:
            if name not in seen:
                self.error(UNREACHABLE, f"State '{name}' is not reachable", f"{loc}/States/{name}")

    # --- states ----------------------------------------------------------------------------

    def state(self, name: str, body: Any, loc: str, parent_ql: str, states: dict) -> None:
        if not isinstance(body, dict):
            self.error(SCHEMA, "A state must be an object", loc)
            return
        for dup in getattr(body, "duplicates", []):
            self.error(SCHEMA, f"Field '{dup}' is defined more than once", f"{loc}/{dup}")
        kind = body.get("Type")
        if not isinstance(kind, str) or kind not in FIELDS:
            if kind is None:
                self.error(SCHEMA, "These fields are required: [Type]", loc)
            else:
                self.error(SCHEMA, f"Unknown state type: {kind}", f"{loc}/Type")
            return
        ql = body.get("QueryLanguage", parent_ql)
        if "QueryLanguage" in body:
            if ql not in ("JSONPath", "JSONata"):
                self.error(SCHEMA, f"Invalid QueryLanguage: {ql}", f"{loc}/QueryLanguage")
                ql = parent_ql
            elif parent_ql == "JSONata" and ql == "JSONPath":
                self.error(
                    SCHEMA,
                    "'QueryLanguage' can not be 'JSONPath' if set to 'JSONata' for whole state machine",
                    f"{loc}/QueryLanguage",
                )
        for key in body:
            if key not in FIELDS[kind]:
                self.error(SCHEMA, f"Field '{key}' is not supported for state type '{kind}'", f"{loc}/{key}")
            elif ql == "JSONata" and key in JSONPATH_ONLY:
                self.error(SCHEMA, f"The field '{key}' is not supported in JSONata states", f"{loc}/{key}")
            elif ql == "JSONPath" and key in JSONATA_ONLY:
                self.error(
                    SCHEMA,
                    f"The field '{key}' is supported only when QueryLanguage is JSONata",
                    f"{loc}/{key}",
                )
        self.transition(kind, body, loc, states)
        self.io(body, loc, ql)
        getattr(self, f"state_{kind.lower()}")(name, body, loc, ql, states)
        if "Retry" in body:
            self.retry(body["Retry"], f"{loc}/Retry", ql)
        if "Catch" in body:
            self.catch(body["Catch"], f"{loc}/Catch", ql, states)

    def transition(self, kind: str, body: dict, loc: str, states: dict) -> None:
        if kind in ("Choice", "Succeed", "Fail"):
            return
        has_next, has_end = "Next" in body, "End" in body
        if has_next and has_end:
            self.error(SCHEMA, "Only one of 'Next' or 'End' can be set", loc)
        elif not has_next and not has_end:
            self.error(SCHEMA, "These fields are required: [Next or End]", loc)
        if has_end and body["End"] is not True and (body["End"] is not False or not has_next):
            self.error(SCHEMA, "End must be true", f"{loc}/End")
        if has_next:
            self.target(body["Next"], f"{loc}/Next", states)

    def target(self, name: Any, loc: str, states: dict) -> None:
        if not isinstance(name, str):
            self.error(SCHEMA, "Next must be a state name", loc)
        elif name not in states:
            self.error(MISSING_TARGET, f"Missing 'Next' target: {name}", loc)

    def path_field(self, value: Any, loc: str, *, reference: bool = False, nullable: bool = True) -> None:
        if value is None and nullable:
            return
        if not isinstance(value, str):
            self.error(SCHEMA, "Expected a JSONPath string", loc)
            return
        if value.startswith("$") and not value.startswith("$$") and _is_variable_ref(value):
            return
        ok = jsonpath.is_reference_path(value) if reference else jsonpath.is_valid_path(value)
        if reference and value.startswith("$$"):
            ok = False
        if not ok:
            self.error(
                SCHEMA, f"The value for the field '{loc.rsplit('/', 1)[-1]}' must be a valid JSONPath", loc
            )

    def io(self, body: dict, loc: str, ql: str) -> None:
        for key in ("InputPath", "OutputPath"):
            if key in body:
                self.path_field(body[key], f"{loc}/{key}")
        if "ResultPath" in body:
            self.path_field(body["ResultPath"], f"{loc}/ResultPath", reference=True)
        for key in ("Parameters", "ResultSelector", "ItemSelector"):
            if key in body and ql == "JSONPath":
                self.payload_template(body[key], f"{loc}/{key}")
        if "ResultSelector" in body and not isinstance(body["ResultSelector"], dict):
            self.error(SCHEMA, "ResultSelector must be an object", f"{loc}/ResultSelector")
        if "Assign" in body:
            if not isinstance(body["Assign"], dict):
                self.error(SCHEMA, "Assign must be an object", f"{loc}/Assign")
            elif ql == "JSONPath":
                self.payload_template(body["Assign"], f"{loc}/Assign")
            else:
                self.jsonata_template(body["Assign"], f"{loc}/Assign")
        if ql == "JSONata":
            for key in ("Arguments", "Output", "Items", "ItemSelector"):
                if key in body:
                    self.jsonata_template(body[key], f"{loc}/{key}")

    def payload_template(self, value: Any, loc: str) -> None:
        if isinstance(value, dict):
            for key, sub in value.items():
                if key.endswith(".$"):
                    self.dynamic_value(sub, f"{loc}/{key}")
                else:
                    self.payload_template(sub, f"{loc}/{key}")
        elif isinstance(value, list):
            for i, sub in enumerate(value):
                self.payload_template(sub, f"{loc}/{i}")

    def dynamic_value(self, value: Any, loc: str) -> None:
        if not isinstance(value, str):
            self.error(SCHEMA, "The value of a field ending in '.$' must be a JSONPath or an intrinsic", loc)
            return
        if intrinsics.looks_like_intrinsic(value):
            try:
                intrinsics.parse_intrinsic(value)
            except intrinsics.IntrinsicSyntaxError as exc:
                self.error(SCHEMA, f"Invalid intrinsic function: {exc}", loc)
            return
        if _is_variable_ref(value):
            return
        if not jsonpath.is_valid_path(value):
            self.error(
                SCHEMA, f"The value for the field '{loc.rsplit('/', 1)[-1]}' must be a valid JSONPath", loc
            )

    def jsonata_template(self, value: Any, loc: str) -> None:
        if isinstance(value, str):
            if jsonata_eval.is_expression(value):
                problem = jsonata_eval.check_syntax(jsonata_eval.expression_body(value))
                if problem:
                    self.error(SCHEMA, f"Invalid JSONata expression: {problem}", loc)
        elif isinstance(value, dict):
            for key, sub in value.items():
                self.jsonata_template(sub, f"{loc}/{key}")
        elif isinstance(value, list):
            for i, sub in enumerate(value):
                self.jsonata_template(sub, f"{loc}/{i}")

    def number_field(self, body: dict, key: str, loc: str, ql: str, minimum: int) -> None:
        if key not in body:
            return
        value = body[key]
        if ql == "JSONata" and jsonata_eval.is_expression(value):
            self.jsonata_template(value, f"{loc}/{key}")
            return
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            self.error(SCHEMA, f"{key} must be an integer >= {minimum}", f"{loc}/{key}")

    # --- per type --------------------------------------------------------------------------

    def state_pass(self, name: str, body: dict, loc: str, ql: str, states: dict) -> None:
        pass

    def state_succeed(self, name: str, body: dict, loc: str, ql: str, states: dict) -> None:
        pass

    def state_task(self, name: str, body: dict, loc: str, ql: str, states: dict) -> None:
        resource = body.get("Resource")
        if "Resource" not in body:
            self.error(SCHEMA, "These fields are required: [Resource]", loc)
        elif not isinstance(resource, str):
            self.error(SCHEMA, "Resource must be a string", f"{loc}/Resource")
        else:
            self.resource(resource, f"{loc}/Resource")
        self.number_field(body, "TimeoutSeconds", loc, ql, 1)
        self.number_field(body, "HeartbeatSeconds", loc, ql, 1)
        for key in ("TimeoutSecondsPath", "HeartbeatSecondsPath"):
            if key in body:
                self.path_field(body[key], f"{loc}/{key}", nullable=False)
        if "TimeoutSeconds" in body and "TimeoutSecondsPath" in body:
            self.error(SCHEMA, "Only one of TimeoutSeconds or TimeoutSecondsPath can be set", loc)
        ts, hb = body.get("TimeoutSeconds"), body.get("HeartbeatSeconds")
        if isinstance(ts, int) and isinstance(hb, int) and hb >= ts:
            self.error(
                SCHEMA, "HeartbeatSeconds must be smaller than TimeoutSeconds", f"{loc}/HeartbeatSeconds"
            )

    def resource(self, resource: str, loc: str) -> None:
        if resource.endswith(".waitForTaskToken"):
            if self.type == "EXPRESS":
                self.error(
                    SCHEMA,
                    "Express state machine does not support '.waitForTaskToken' service integration ",
                    loc,
                )
            else:
                self.error(
                    UNSUPPORTED,
                    f"The resource '{resource}' (.waitForTaskToken callbacks) is not supported locally",
                    loc,
                )
            return
        if LAMBDA_FUNCTION_ARN.match(resource) or resource in SUPPORTED_RESOURCES:
            return
        parts = resource.split(":")
        well_formed = (
            len(parts) >= 7
            and parts[0] == "arn"
            and parts[1].startswith("aws")
            and parts[2] == "states"
            and all(parts[5:])
        )
        if well_formed:
            self.error(
                UNSUPPORTED,
                f"The resource '{resource}' is not supported locally (supported: Lambda "
                "function ARNs, arn:aws:states:::lambda:invoke, arn:aws:states:::aws-sdk:lambda:invoke, "
                "arn:aws:states:::sns:publish)",
                loc,
            )
            return
        self.error(INVALID_RESOURCE, f"Invalid resource ARN: '{resource}'", loc)

    def state_choice(self, name: str, body: dict, loc: str, ql: str, states: dict) -> None:
        choices = body.get("Choices")
        if not isinstance(choices, list) or not choices:
            self.error(
                SCHEMA,
                "These fields are required: [Choices]"
                if choices is None
                else "Choices must be a non-empty array",
                f"{loc}/Choices" if choices is not None else loc,
            )
        else:
            for i, rule in enumerate(choices):
                rloc = f"{loc}/Choices/{i}"
                if not isinstance(rule, dict):
                    self.error(SCHEMA, "A choice rule must be an object", rloc)
                    continue
                if "Next" not in rule:
                    self.error(SCHEMA, "These fields are required: [Next]", rloc)
                else:
                    self.target(rule["Next"], f"{rloc}/Next", states)
                self.rule(rule, rloc, ql, top=True)
        if "Default" in body:
            self.target(body["Default"], f"{loc}/Default", states)

    def rule(self, rule: Any, loc: str, ql: str, top: bool = False) -> None:
        if not isinstance(rule, dict):
            self.error(SCHEMA, "A choice rule must be an object", loc)
            return
        if ql == "JSONata":
            if "Condition" not in rule:
                self.error(SCHEMA, "These fields are required: [Condition]", loc)
            else:
                cond = rule["Condition"]
                if isinstance(cond, str):
                    self.jsonata_template(cond, f"{loc}/Condition")
                elif not isinstance(cond, bool):
                    self.error(
                        SCHEMA, "Condition must be a JSONata expression or a boolean", f"{loc}/Condition"
                    )
            for key in ("Output", "Assign"):
                if key in rule:
                    self.jsonata_template(rule[key], f"{loc}/{key}")
            return
        if "Assign" in rule and top:
            self.payload_template(rule["Assign"], f"{loc}/Assign")
        combinators = [k for k in ("And", "Or", "Not") if k in rule]
        if combinators:
            key = combinators[0]
            sub = rule[key]
            if key == "Not":
                self.rule(sub, f"{loc}/Not", ql)
            elif not isinstance(sub, list) or not sub:
                self.error(SCHEMA, f"{key} must be a non-empty array", f"{loc}/{key}")
            else:
                for i, r in enumerate(sub):
                    self.rule(r, f"{loc}/{key}/{i}", ql)
            return
        ops = [k for k in rule if k in choice.OPERATORS]
        if len(ops) != 1:
            self.error(
                SCHEMA,
                "A choice rule needs exactly one comparison operator"
                if not ops
                else f"A choice rule can have only one comparison operator, found {ops}",
                loc,
            )
            return
        if "Variable" not in rule:
            self.error(SCHEMA, "These fields are required: [Variable]", loc)
        else:
            self.path_field(rule["Variable"], f"{loc}/Variable", nullable=False)
        op = ops[0]
        value = rule[op]
        if op.endswith("Path") and op not in choice.UNARY:
            self.path_field(value, f"{loc}/{op}", nullable=False)
        elif op.startswith("Is") and not isinstance(value, bool):
            self.error(SCHEMA, f"{op} must be a boolean", f"{loc}/{op}")
        elif op.startswith(("String", "Timestamp")) and not isinstance(value, str):
            self.error(SCHEMA, f"{op} must be a string", f"{loc}/{op}")
        elif op.startswith("Numeric") and (isinstance(value, bool) or not isinstance(value, int | float)):
            self.error(SCHEMA, f"{op} must be a number", f"{loc}/{op}")
        elif op == "BooleanEquals" and not isinstance(value, bool):
            self.error(SCHEMA, f"{op} must be a boolean", f"{loc}/{op}")
        for key in rule:
            if key not in choice.OPERATORS and key not in ("Variable", "Next", "Comment", "Assign"):
                self.error(SCHEMA, f"Field '{key}' is not supported in a choice rule", f"{loc}/{key}")

    def state_wait(self, name: str, body: dict, loc: str, ql: str, states: dict) -> None:
        present = [k for k in ("Seconds", "Timestamp", "SecondsPath", "TimestampPath") if k in body]
        if len(present) != 1:
            self.error(
                SCHEMA, "Exactly one of Seconds, Timestamp, SecondsPath or TimestampPath is required", loc
            )
        self.number_field(body, "Seconds", loc, ql, 0)
        if "Timestamp" in body:
            value = body["Timestamp"]
            if ql == "JSONata" and jsonata_eval.is_expression(value):
                self.jsonata_template(value, f"{loc}/Timestamp")
            elif choice.parse_timestamp(value) is None:
                self.error(
                    SCHEMA, "Timestamp must be an ISO-8601 extended offset date-time", f"{loc}/Timestamp"
                )
        for key in ("SecondsPath", "TimestampPath"):
            if key in body:
                self.path_field(body[key], f"{loc}/{key}", nullable=False)

    def state_fail(self, name: str, body: dict, loc: str, ql: str, states: dict) -> None:
        for a, b in (("Error", "ErrorPath"), ("Cause", "CausePath")):
            if a in body and b in body:
                self.error(SCHEMA, f"Only one of {a} or {b} can be set", loc)
            if b in body:
                value = body[b]
                if isinstance(value, str) and intrinsics.looks_like_intrinsic(value):
                    self.dynamic_value(value, f"{loc}/{b}")
                else:
                    self.path_field(value, f"{loc}/{b}", nullable=False)
            if a in body:
                if ql == "JSONata":
                    self.jsonata_template(body[a], f"{loc}/{a}")
                elif not isinstance(body[a], str):
                    self.error(SCHEMA, f"{a} must be a string", f"{loc}/{a}")

    def state_parallel(self, name: str, body: dict, loc: str, ql: str, states: dict) -> None:
        branches = body.get("Branches")
        if not isinstance(branches, list) or not branches:
            self.error(
                SCHEMA,
                "These fields are required: [Branches]"
                if branches is None
                else "Branches must be a non-empty array",
                loc,
            )
            return
        for i, branch in enumerate(branches):
            self.machine(branch, f"{loc}/Branches/{i}", ql)

    def state_map(self, name: str, body: dict, loc: str, ql: str, states: dict) -> None:
        key = "ItemProcessor" if "ItemProcessor" in body else "Iterator" if "Iterator" in body else None
        if key is None:
            self.error(SCHEMA, "These fields are required: [ItemProcessor]", loc)
        else:
            proc = body[key]
            self.machine(proc, f"{loc}/{key}", ql)
            if (
                isinstance(proc, dict)
                and "ProcessorConfig" in proc
                and not isinstance(proc["ProcessorConfig"], dict)
            ):
                self.error(SCHEMA, "ProcessorConfig must be an object", f"{loc}/{key}/ProcessorConfig")
            elif isinstance(proc, dict) and isinstance(proc.get("ProcessorConfig"), dict):
                config = proc["ProcessorConfig"]
                if config.get("Mode", "INLINE") not in ("INLINE", "DISTRIBUTED"):
                    self.error(
                        SCHEMA,
                        "ProcessorConfig.Mode must be INLINE or DISTRIBUTED",
                        f"{loc}/{key}/ProcessorConfig/Mode",
                    )
        if "ItemsPath" in body:
            self.path_field(body["ItemsPath"], f"{loc}/ItemsPath", nullable=False)
        for k in ("ItemReader", "ResultWriter"):
            if k in body:
                self.error(
                    UNSUPPORTED, f"{k} (Distributed Map over S3) is not supported locally", f"{loc}/{k}"
                )
        self.number_field(body, "MaxConcurrency", loc, ql, 0)
        self.number_field(body, "ToleratedFailureCount", loc, ql, 0)
        if "ToleratedFailurePercentage" in body:
            value = body["ToleratedFailurePercentage"]
            if not (ql == "JSONata" and jsonata_eval.is_expression(value)) and (
                isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 100
            ):
                self.error(
                    SCHEMA,
                    "ToleratedFailurePercentage must be a number between 0 and 100",
                    f"{loc}/ToleratedFailurePercentage",
                )
        for k in ("MaxConcurrencyPath", "ToleratedFailureCountPath", "ToleratedFailurePercentagePath"):
            if k in body:
                self.path_field(body[k], f"{loc}/{k}", nullable=False)

    # --- Retry / Catch ---------------------------------------------------------------------

    def error_equals(self, value: Any, loc: str, last: bool) -> None:
        if not isinstance(value, list) or not value or not all(isinstance(e, str) for e in value):
            self.error(SCHEMA, "ErrorEquals must be a non-empty array of strings", loc)
            return
        if "States.ALL" in value:
            if len(value) != 1:
                self.error(SCHEMA, "States.ALL must appear alone in ErrorEquals", loc)
            elif not last:
                self.error(SCHEMA, "States.ALL must be in the last retrier or catcher", loc)

    def retry(self, retriers: Any, loc: str, ql: str) -> None:
        if not isinstance(retriers, list):
            self.error(SCHEMA, "Retry must be an array", loc)
            return
        for i, r in enumerate(retriers):
            rloc = f"{loc}/{i}"
            if not isinstance(r, dict):
                self.error(SCHEMA, "A retrier must be an object", rloc)
                continue
            if "ErrorEquals" not in r:
                self.error(SCHEMA, "These fields are required: [ErrorEquals]", rloc)
            else:
                self.error_equals(r["ErrorEquals"], f"{rloc}/ErrorEquals", i == len(retriers) - 1)
            for key in r:
                if key not in (
                    "ErrorEquals",
                    "IntervalSeconds",
                    "MaxAttempts",
                    "BackoffRate",
                    "MaxDelaySeconds",
                    "JitterStrategy",
                    "Comment",
                ):
                    self.error(SCHEMA, f"Field '{key}' is not supported in a retrier", f"{rloc}/{key}")
            self.number_field(r, "IntervalSeconds", rloc, ql, 1)
            self.number_field(r, "MaxAttempts", rloc, ql, 0)
            self.number_field(r, "MaxDelaySeconds", rloc, ql, 1)
            if "BackoffRate" in r:
                br = r["BackoffRate"]
                if not (ql == "JSONata" and jsonata_eval.is_expression(br)) and (
                    isinstance(br, bool) or not isinstance(br, int | float) or br < 1.0
                ):
                    self.error(SCHEMA, "BackoffRate must be a number >= 1.0", f"{rloc}/BackoffRate")
            if "JitterStrategy" in r and r["JitterStrategy"] not in ("FULL", "NONE"):
                self.error(SCHEMA, "JitterStrategy must be FULL or NONE", f"{rloc}/JitterStrategy")

    def catch(self, catchers: Any, loc: str, ql: str, states: dict) -> None:
        if not isinstance(catchers, list):
            self.error(SCHEMA, "Catch must be an array", loc)
            return
        for i, c in enumerate(catchers):
            cloc = f"{loc}/{i}"
            if not isinstance(c, dict):
                self.error(SCHEMA, "A catcher must be an object", cloc)
                continue
            missing = [k for k in ("ErrorEquals", "Next") if k not in c]
            if missing:
                self.error(SCHEMA, f"These fields are required: [{', '.join(missing)}]", cloc)
            if "ErrorEquals" in c:
                self.error_equals(c["ErrorEquals"], f"{cloc}/ErrorEquals", i == len(catchers) - 1)
            if "Next" in c:
                self.target(c["Next"], f"{cloc}/Next", states)
            allowed = {"ErrorEquals", "Next", "Comment", "Assign"}
            allowed |= {"Output"} if ql == "JSONata" else {"ResultPath"}
            for key in c:
                if key not in allowed:
                    self.error(SCHEMA, f"Field '{key}' is not supported in a catcher", f"{cloc}/{key}")
            if "ResultPath" in c:
                self.path_field(c["ResultPath"], f"{cloc}/ResultPath", reference=True)
            if ql == "JSONata":
                for key in ("Output", "Assign"):
                    if key in c:
                        self.jsonata_template(c[key], f"{cloc}/{key}")
            elif "Assign" in c:
                self.payload_template(c["Assign"], f"{cloc}/Assign")


_VAR_RE = re.compile(r"^\$[A-Za-z_][A-Za-z0-9_]*([.\[].*)?$")


def _is_variable_ref(text: str) -> bool:
    return bool(_VAR_RE.match(text))


def validate_definition(
    definition: str,
    *,
    state_machine_type: str = "STANDARD",
    severity: str = "ERROR",
    max_results: int = 100,
) -> ValidationResult:
    """Check a definition (JSON text) without running it."""
    if not isinstance(definition, str) or not definition.strip():
        return ValidationResult(
            "FAIL", [Diagnostic("ERROR", SCHEMA, "Definition must be a valid JSON object")]
        )
    try:
        raw = json.loads(definition, object_pairs_hook=_pairs_hook)
    except json.JSONDecodeError as exc:
        return ValidationResult(
            "FAIL",
            [
                Diagnostic(
                    "ERROR", INVALID_JSON, f"Invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
                )
            ],
        )
    if not isinstance(raw, dict):
        return ValidationResult(
            "FAIL", [Diagnostic("ERROR", SCHEMA, "Definition must be a valid JSON object")]
        )
    checker = _Checker(state_machine_type)
    for dup in getattr(raw, "duplicates", []):
        checker.error(SCHEMA, f"Field '{dup}' is defined more than once", f"/{dup}")
    top_ql = raw.get("QueryLanguage", "JSONPath")
    checker.machine(raw, "", top_ql if top_ql in ("JSONPath", "JSONata") else "JSONPath", top=True)
    diagnostics = checker.diagnostics
    if severity == "ERROR":
        shown = [d for d in diagnostics if d.severity == "ERROR"]
    else:
        shown = list(diagnostics)
    failed = any(d.severity == "ERROR" for d in diagnostics)
    truncated = len(shown) > max_results
    return ValidationResult("FAIL" if failed else "OK", shown[:max_results], truncated)
