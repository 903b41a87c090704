"""Pass, Succeed, Fail, Choice and Wait states (methods of the interpreter, see engine._Run)."""

from __future__ import annotations

from typing import Any

from sconeflow.stepfunctions import choice as choice_mod
from sconeflow.stepfunctions import errors as E
from sconeflow.stepfunctions import intrinsics, jsonata_eval, jsonpath
from sconeflow.stepfunctions.definition import (
    ChoiceState,
    FailState,
    PassState,
    WaitState,
)
from sconeflow.stepfunctions.errors import StatesError
from sconeflow.stepfunctions.runtime import (
    MISSING,
    FailStateError,
    StateCtx,
    compact,
    json_type,
    plain,
    to_text,
)


class BasicStates:
    """The simple state types; mixed into :class:`sconeflow.stepfunctions.engine._Run`."""

    def state_pass(self, sctx: StateCtx, data: Any) -> tuple[Any, str | None, dict | None]:
        state: PassState = sctx.state  # type: ignore[assignment]
        if state.is_jsonata:
            states = self.states_binding(sctx, data)
            result = state.result if state.has_result else data
            if state.has_result:
                states["result"] = result
            assigned = self.assign(sctx, state.assign, data, states)
            output = self.jsonata(sctx, state.output, states, "Output") if state.has_output else result
            return output, state.next, assigned
        effective = self.apply_path(sctx, state.input_path, data)
        if state.has_result:
            result = state.result
        elif state.has_parameters:
            result = self.template(sctx, state.parameters, effective)
        else:
            result = effective
        assigned = self.assign(sctx, state.assign, result, None)
        output = self.result_path(sctx, state.result_path, data, result)
        output = self.apply_path(sctx, state.output_path, output)
        return output, state.next, assigned

    def state_succeed(self, sctx: StateCtx, data: Any) -> tuple[Any, str | None, dict | None]:
        state = sctx.state
        if state.is_jsonata:
            if state.has_output:
                return self.jsonata(sctx, state.output, self.states_binding(sctx, data), "Output"), None, None
            return data, None, None
        effective = self.apply_path(sctx, state.input_path, data)
        return self.apply_path(sctx, state.output_path, effective), None, None

    def state_fail(self, sctx: StateCtx, data: Any) -> tuple[Any, str | None, dict | None]:
        state: FailState = sctx.state  # type: ignore[assignment]
        if state.is_jsonata:
            states = self.states_binding(sctx, data)
            error = self.jsonata(sctx, state.error, states, "Error") if state.error is not None else None
            cause = self.jsonata(sctx, state.cause, states, "Cause") if state.cause is not None else None
        else:
            error = self.fail_field(sctx, state.error, state.error_path, "ErrorPath", data)
            cause = self.fail_field(sctx, state.cause, state.cause_path, "CausePath", data)
        raise FailStateError(
            None if error is None else to_text(error), None if cause is None else to_text(cause)
        )

    def fail_field(self, sctx: StateCtx, literal: Any, path: str | None, name: str, data: Any) -> Any:
        if path is None:
            return literal
        if intrinsics.looks_like_intrinsic(path):
            return self.intrinsic(sctx, path, data)
        try:
            return self.lookup(path, data, sctx)
        except jsonpath.PathNotFound:
            raise self.runtime_error(
                sctx,
                f"The JSONPath '{path}' specified for the field '{name}' could not be found in the input "
                f"'{compact(data)}'",
            ) from None

    def state_choice(self, sctx: StateCtx, data: Any) -> tuple[Any, str | None, dict | None]:
        state: ChoiceState = sctx.state  # type: ignore[assignment]
        if state.is_jsonata:
            states = self.states_binding(sctx, data)

            def condition(expr: Any) -> bool:
                value = self.jsonata(sctx, expr, states, "Condition")
                if not isinstance(value, bool):
                    raise self.query_error(
                        sctx,
                        f"The JSONata expression '{jsonata_eval.expression_body(expr)}' specified for the "
                        f"field 'Condition' returned an unexpected result type. Expected 'boolean', but was "
                        f"'{json_type(value)}' for value: {compact(value)}",
                        "Condition",
                    )
                return value

            for rule in state.choices:
                if choice_mod.evaluate_rule(rule.rule, lambda p: MISSING, condition):
                    assigned = self.assign(sctx, rule.assign, data, states)
                    if rule.has_output:
                        output = self.jsonata(sctx, rule.output, states, "Output")
                    elif state.has_output:
                        output = self.jsonata(sctx, state.output, states, "Output")
                    else:
                        output = data
                    return output, rule.next, assigned
            if state.default is None:
                raise StatesError(E.NO_CHOICE_MATCHED, self.runtime_error(sctx, "No Matches!").cause)
            assigned = self.assign(sctx, state.assign, data, states)
            output = self.jsonata(sctx, state.output, states, "Output") if state.has_output else data
            return output, state.default, assigned

        effective = self.apply_path(sctx, state.input_path, data)

        def lookup(path: str) -> Any:
            try:
                return self.lookup(path, effective, sctx)
            except jsonpath.PathNotFound:
                return MISSING

        for rule in state.choices:
            try:
                matched = choice_mod.evaluate_rule(rule.rule, lookup, lambda expr: bool(expr))
            except choice_mod.ConditionPathMissing as missing:
                raise self.runtime_error(
                    sctx,
                    f"Invalid path '{missing.path}': The choice state's condition path references an "
                    "invalid value.",
                ) from None
            if matched:
                assigned = self.assign(sctx, rule.assign, effective, None)
                return self.apply_path(sctx, state.output_path, effective), rule.next, assigned
        if state.default is None:
            raise StatesError(E.NO_CHOICE_MATCHED, self.runtime_error(sctx, "No Matches!").cause)
        assigned = self.assign(sctx, state.assign, effective, None)
        return self.apply_path(sctx, state.output_path, effective), state.default, assigned

    def state_wait(self, sctx: StateCtx, data: Any) -> tuple[Any, str | None, dict | None]:
        state: WaitState = sctx.state  # type: ignore[assignment]
        states = self.states_binding(sctx, data) if state.is_jsonata else None
        effective = data if state.is_jsonata else self.apply_path(sctx, state.input_path, data)
        seconds: float = 0
        if state.seconds is not None:
            value = state.seconds
            if states is not None and jsonata_eval.is_expression(value):
                value = self.jsonata(sctx, value, states, "Seconds")
                whole = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
                if isinstance(value, bool) or not whole or value < 0:  # AWS: "must evaluate to an integer"
                    raise self.query_error(
                        sctx,
                        f"The JSONata expression '{jsonata_eval.expression_body(state.seconds)}' "
                        "specified for the field 'Seconds' returned an unexpected result type. "
                        f"Expected 'integer', but was '{json_type(value)}' for value: {compact(value)}",
                        "Seconds",
                    )
            seconds = float(value)
        elif state.seconds_path is not None:
            try:
                value = self.lookup(state.seconds_path, effective, sctx)
            except jsonpath.PathNotFound:
                raise self.runtime_error(
                    sctx, f"Invalid path '{state.seconds_path}' : No results for path: {state.seconds_path}"
                ) from None
            if isinstance(value, bool) or not (
                isinstance(value, int) or (isinstance(value, float) and value.is_integer())
            ):
                raise self.runtime_error(
                    sctx,
                    f"The SecondsPath parameter cannot be parsed as a long value: {state.seconds_path} == "
                    f"{plain(value)}",
                )
            if value < 0:
                raise self.runtime_error(
                    sctx,
                    f"The SecondsPath parameter references a negative value: {state.seconds_path} == "
                    f"{plain(value)}",
                )
            seconds = float(value)
        else:
            if state.timestamp is not None:
                value = state.timestamp
                if states is not None and jsonata_eval.is_expression(value):
                    value = self.jsonata(sctx, value, states, "Timestamp")
                moment = choice_mod.parse_timestamp(value)
                if moment is None:
                    detail = (
                        "The Timestamp field cannot be parsed as an ISO-8601 extended offset date-time "
                        f"format string: {plain(value)}"
                    )
                    if state.is_jsonata:
                        raise self.query_error(sctx, detail, "Timestamp")
                    raise self.runtime_error(sctx, detail)
            else:
                try:
                    value = self.lookup(state.timestamp_path, effective, sctx)  # type: ignore[arg-type]
                except jsonpath.PathNotFound:
                    raise self.runtime_error(
                        sctx,
                        f"Invalid path '{state.timestamp_path}' : "
                        f"No results for path: {state.timestamp_path}",
                    ) from None
                moment = choice_mod.parse_timestamp(value)
                if moment is None:
                    raise self.runtime_error(
                        sctx,
                        "The TimestampPath parameter does not reference a valid ISO-8601 extended offset "
                        f"date-time format string: {state.timestamp_path} == {plain(value)}",
                    )
            # AWS "considers the time value up to seconds and truncates milliseconds" (state-wait docs)
            seconds = (moment.replace(microsecond=0) - self.clock.now()).total_seconds()
        self.sleep(seconds, sctx.frame)
        if state.is_jsonata:
            assigned = self.assign(sctx, state.assign, data, states)
            output = self.jsonata(sctx, state.output, states or {}, "Output") if state.has_output else data
            return output, state.next, assigned
        assigned = self.assign(sctx, state.assign, effective, None)
        return self.apply_path(sctx, state.output_path, effective), state.next, assigned
