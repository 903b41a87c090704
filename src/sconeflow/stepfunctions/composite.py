"""Parallel and Map states: branches and iterations, concurrency, tolerated failures."""

from __future__ import annotations

import copy
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sconeflow.stepfunctions import errors as E
from sconeflow.stepfunctions import jsonata_eval, jsonpath
from sconeflow.stepfunctions.definition import (
    MapState,
    ParallelState,
    StateMachine,
)
from sconeflow.stepfunctions.errors import StatesError
from sconeflow.stepfunctions.history import History
from sconeflow.stepfunctions.runtime import (
    MAX_INLINE_CONCURRENCY,
    Fatal,
    Frame,
    StateCtx,
    Stopped,
    compact,
    error_details,
    json_type,
)


class CompositeStates:
    """Parallel and Map; mixed into :class:`sconeflow.stepfunctions.engine._Run`."""

    def state_parallel(self, sctx: StateCtx, data: Any) -> tuple[Any, str | None, dict | None]:
        state: ParallelState = sctx.state  # type: ignore[assignment]
        if state.is_jsonata:
            states = self.states_binding(sctx, data)
            branch_input = (
                self.jsonata(sctx, state.arguments, states, "Arguments") if state.has_arguments else data
            )
        else:
            effective = self.apply_path(sctx, state.input_path, data)
            branch_input = (
                self.template(sctx, state.parameters, effective) if state.has_parameters else effective
            )

        def attempt() -> list:
            self.history.add("ParallelStateStarted", None)
            if self.concurrent and len(state.branches) > 1:
                return self.parallel_threads(sctx, state.branches, branch_input)
            results = []
            for branch in state.branches:
                results.append(self.run_program(branch, branch_input, sctx.frame.child(sctx.frame.map_item)))
            return results

        try:
            result = self.with_retry(sctx, attempt)
        except StatesError as err:
            if not isinstance(err, Fatal):
                self.history.add("ParallelStateFailed", error_details(err))
            raise
        return self.finish_composite(sctx, data, result)

    def parallel_threads(self, sctx: StateCtx, branches: tuple[StateMachine, ...], data: Any) -> list:
        """Run every branch in its own thread; the first failure stops the others."""
        stop = threading.Event()
        results: list[Any] = [None] * len(branches)
        errors: list[BaseException] = []
        lock = threading.Lock()

        start_tip = self.history.tip()

        def one(index: int) -> None:
            try:
                frame = sctx.frame.child(sctx.frame.map_item, stop)
                with self.history.branch(start_tip):
                    results[index] = self.run_program(branches[index], data, frame)
            except Stopped:
                pass
            except BaseException as exc:  # re-raised in the state's thread below
                with lock:
                    errors.append(exc)
                stop.set()

        with ThreadPoolExecutor(len(branches), thread_name_prefix="sfn-parallel") as pool:
            list(pool.map(one, range(len(branches))))
        if errors:
            raise errors[0]
        return results

    def finish_composite(self, sctx: StateCtx, data: Any, result: Any) -> tuple[Any, str | None, dict | None]:
        state = sctx.state
        if state.is_jsonata:
            states = self.states_binding(sctx, data, result=result)
            assigned = self.assign(sctx, state.assign, data, states)
            output = self.jsonata(sctx, state.output, states, "Output") if state.has_output else result
            return output, state.next, assigned
        if state.result_selector is not None:
            result = self.template(sctx, state.result_selector, result)
        assigned = self.assign(sctx, state.assign, result, None)
        output = self.result_path(sctx, state.result_path, data, result)
        output = self.apply_path(sctx, state.output_path, output)
        return output, state.next, assigned

    def state_map(self, sctx: StateCtx, data: Any) -> tuple[Any, str | None, dict | None]:
        try:
            return self.map_state(sctx, data)
        except StatesError as err:
            if not isinstance(err, Fatal):
                self.history.add("MapStateFailed", error_details(err))
            raise

    def map_state(self, sctx: StateCtx, data: Any) -> tuple[Any, str | None, dict | None]:
        state: MapState = sctx.state  # type: ignore[assignment]
        if state.is_jsonata:
            states = self.states_binding(sctx, data)
            effective = data
            if state.has_items:
                raw_items = state.items
                items = self.jsonata(sctx, raw_items, states, "Items")
                if not isinstance(items, list):
                    body = (
                        jsonata_eval.expression_body(raw_items)
                        if isinstance(raw_items, str)
                        else compact(raw_items)
                    )
                    raise self.query_error(
                        sctx,
                        f"The JSONata expression '{body}' specified for the field 'Items' returned an "
                        f"unexpected result type. Expected 'array', but was '{json_type(items)}' for value: "
                        f"{compact(items)}",
                        "Items",
                    )
            else:
                items = data
                if not isinstance(items, list):
                    raise self.query_error(
                        sctx, f"Map state input must be an array but was: {compact(items)}"
                    )
        else:
            states = None
            effective = self.apply_path(sctx, state.input_path, data)
            try:
                items = self.lookup(state.items_path, effective, sctx)
            except jsonpath.PathNotFound:
                raise self.runtime_error(
                    sctx, f"Invalid path '{state.items_path}' : No results for path: {state.items_path}"
                ) from None
            if not isinstance(items, list):
                raise self.runtime_error(sctx, f"Map state input must be an array but was: {compact(items)}")
        max_conc = self.map_concurrency(sctx, effective, states)

        def attempt() -> list:
            self.history.add("MapStateStarted", {"length": len(items)})
            tol_count, tol_pct = self.map_tolerance(sctx, effective, states)
            tolerant = tol_count is not None or tol_pct is not None
            if state.distributed:
                map_run_arn = (
                    f"arn:aws:states:{self.region}:{self.account}:mapRun:{self.context.state_machine_name}/"
                    f"{state.label or state.name}:{uuid.uuid4()}"
                )
                self.history.add("MapRunStarted", {"mapRunArn": map_run_arn})
            try:
                results, failures = self.run_iterations(sctx, items, effective, states, max_conc, tolerant)
                if failures and not self.tolerated(len(failures), len(items), tol_count, tol_pct):
                    if tolerant:
                        raise StatesError(
                            E.EXCEED_TOLERATED_FAILURE_THRESHOLD,
                            "The specified tolerance threshold was exceeded",
                        )
                    raise failures[0]
            except StatesError as err:
                if state.distributed and not isinstance(err, Fatal):
                    self.history.add("MapRunFailed", error_details(err))
                raise
            if state.distributed:
                self.history.add("MapRunSucceeded", None)
            self.history.add("MapStateSucceeded", None)
            return results

        result = self.with_retry(sctx, attempt)
        return self.finish_composite(sctx, data, result)

    def map_concurrency(self, sctx: StateCtx, effective: Any, states: dict | None) -> int:
        state: MapState = sctx.state  # type: ignore[assignment]
        if states is not None:
            max_conc = self.jsonata_int(sctx, state.max_concurrency, states, "MaxConcurrency") or 0
        else:
            max_conc = state.max_concurrency or 0
            if state.max_concurrency_path:
                max_conc = self.path_int(sctx, state.max_concurrency_path, effective, "MaxConcurrencyPath")
        if isinstance(max_conc, bool) or not isinstance(max_conc, int | float) or max_conc < 0:
            raise self.runtime_error(sctx, "MaxConcurrency must be a non-negative integer.")
        return int(max_conc)

    def map_tolerance(self, sctx: StateCtx, effective: Any, states: dict | None) -> tuple[Any, Any]:
        state: MapState = sctx.state  # type: ignore[assignment]
        if states is not None:
            tol_count = self.jsonata_int(sctx, state.tolerated_failure_count, states, "ToleratedFailureCount")
            tol_pct = self.jsonata_int(
                sctx, state.tolerated_failure_percentage, states, "ToleratedFailurePercentage"
            )
        else:
            tol_count = state.tolerated_failure_count
            if state.tolerated_failure_count_path:
                tol_count = self.path_int(
                    sctx, state.tolerated_failure_count_path, effective, "ToleratedFailureCountPath"
                )
            tol_pct = state.tolerated_failure_percentage
            if state.tolerated_failure_percentage_path:
                try:
                    tol_pct = self.lookup(state.tolerated_failure_percentage_path, effective, sctx)
                except jsonpath.PathNotFound:
                    tol_pct = None
                if isinstance(tol_pct, str):
                    try:
                        tol_pct = float(tol_pct)
                    except ValueError:
                        pass
                if isinstance(tol_pct, bool) or not isinstance(tol_pct, int | float):
                    shown = tol_pct if isinstance(tol_pct, str) else compact(tol_pct)
                    raise self.runtime_error(
                        sctx,
                        f'The ToleratedFailurePercentagePath field refers to value "{shown}" which is not a '
                        f"valid float: {state.tolerated_failure_percentage_path}",
                    )
        if tol_count is not None and tol_count < 0:
            raise self.runtime_error(sctx, "ToleratedFailureCount cannot be negative.")
        if tol_pct is not None and not 0 <= tol_pct <= 100:
            raise self.runtime_error(sctx, "ToleratedFailurePercentage must be between 0 and 100.")
        return tol_count, tol_pct

    @staticmethod
    def tolerated(failed: int, total: int, count: Any, pct: Any) -> bool:
        if count is not None and failed <= count:
            return True
        return pct is not None and total > 0 and failed * 100.0 / total <= pct

    def run_iterations(
        self,
        sctx: StateCtx,
        items: list,
        effective: Any,
        states: dict | None,
        max_conc: int,
        tolerant: bool,
    ) -> tuple[list, list[StatesError]]:
        state: MapState = sctx.state  # type: ignore[assignment]
        processor = state.processor
        assert processor is not None
        results: list[Any] = [None] * len(items)
        failures: list[StatesError] = []
        distributed = state.distributed
        if self.concurrent and not distributed and max_conc != 1 and len(items) > 1:
            return self.map_threads(sctx, items, effective, states, max_conc, tolerant)
        for index, item in enumerate(items):
            self.check_time()
            map_item = {"Index": index, "Value": item}
            value = self.item_value(sctx, index, item, effective, states)
            frame = sctx.frame.child(map_item)
            if not distributed:
                self.history.add("MapIterationStarted", {"name": state.name, "index": index})
            try:
                results[index] = (
                    self.run_program(processor, value, frame)
                    if not distributed
                    else (self.run_child(processor, value, frame))
                )
            except StatesError as err:
                if not distributed:
                    self.history.add("MapIterationFailed", {"name": state.name, "index": index})
                if isinstance(err, Fatal) and not distributed:
                    raise
                failures.append(err)
                results[index] = {"Error": err.error, "Cause": err.cause}
                if not tolerant:
                    return results, failures
                continue
            if not distributed:
                self.history.add("MapIterationSucceeded", {"name": state.name, "index": index})
        return results, failures

    def item_value(self, sctx: StateCtx, index: int, item: Any, effective: Any, states: dict | None) -> Any:
        state: MapState = sctx.state  # type: ignore[assignment]
        if not state.has_item_selector:
            return item
        item_ctx = StateCtx(
            state,
            Frame(sctx.frame.scope, {"Index": index, "Value": item}),
            sctx.entered_id,
            sctx.entered_time,
        )
        if states is not None:
            binding = self.states_binding(item_ctx, effective)
            return self.jsonata(item_ctx, state.item_selector, binding, "ItemSelector")
        return self.template(item_ctx, state.item_selector, effective)

    def map_threads(
        self,
        sctx: StateCtx,
        items: list,
        effective: Any,
        states: dict | None,
        max_conc: int,
        tolerant: bool,
    ) -> tuple[list, list[StatesError]]:
        """Inline Map iterations on up to ``max_conc`` threads (0 = unlimited, capped at 40 like AWS)."""
        state: MapState = sctx.state  # type: ignore[assignment]
        processor = state.processor
        assert processor is not None
        values = [self.item_value(sctx, i, item, effective, states) for i, item in enumerate(items)]
        workers = min(len(items), max_conc or MAX_INLINE_CONCURRENCY, MAX_INLINE_CONCURRENCY)
        stop = threading.Event()
        results: list[Any] = [None] * len(items)
        failures: list[StatesError] = []
        other_errors: list[BaseException] = []
        lock = threading.Lock()

        start_tip = self.history.tip()

        def one(index: int) -> None:
            with self.history.branch(start_tip):
                one_iteration(index)

        def one_iteration(index: int) -> None:
            if stop.is_set():
                return
            map_item = {"Index": index, "Value": items[index]}
            self.history.add("MapIterationStarted", {"name": state.name, "index": index})
            try:
                results[index] = self.run_program(processor, values[index], sctx.frame.child(map_item, stop))
            except Stopped:
                self.history.add("MapIterationAborted", {"name": state.name, "index": index})
                return
            except StatesError as err:
                self.history.add("MapIterationFailed", {"name": state.name, "index": index})
                with lock:
                    failures.append(err)
                    results[index] = {"Error": err.error, "Cause": err.cause}
                if not tolerant or isinstance(err, Fatal):
                    stop.set()
                return
            except BaseException as exc:  # abort / execution timeout: re-raised below
                with lock:
                    other_errors.append(exc)
                stop.set()
                return
            self.history.add("MapIterationSucceeded", {"name": state.name, "index": index})

        with ThreadPoolExecutor(workers, thread_name_prefix="sfn-map") as pool:
            list(pool.map(one, range(len(items))))
        if other_errors:
            raise other_errors[0]
        fatal = [f for f in failures if isinstance(f, Fatal)]
        if fatal:
            raise fatal[0]
        return results, failures

    def run_child(self, processor: StateMachine, value: Any, frame: Frame) -> Any:
        """A Distributed Map child: its events go to a child history, not the parent's.

        The child runs on a shallow copy of this run (same clock, integrations, context), so threads
        still running elsewhere in the parent keep writing to the parent's history.
        """
        child = copy.copy(self)
        child.history = History(self.clock.now, None)
        child.first_state = True
        return child.run_program(processor, value, frame)
