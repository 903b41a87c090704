"""Pictures of a state machine and of one execution, drawn like the AWS console's Graph view.

Pure Python (matplotlib, Agg backend): Start and End circles, states as boxes along the flow from top
to bottom, Parallel and Map as groups holding their branches, Choice rules and ``Catch #n`` edges
labelled, each box coloured by what happened to that state in the execution (succeeded, failed,
caught error, canceled, in progress, not started) with a legend. PNG or SVG by file extension.

``state_statuses`` reads the statuses from an AWS history (it follows ``previousEventId`` to tie each
failure to the state that was entered); ``render_graph`` lays out and draws, and returns the pixel box
of every state so tests can check colours.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sconeflow.errors import SconeflowError

log = logging.getLogger(__name__)

SUCCEEDED = "succeeded"
FAILED = "failed"
CAUGHT = "caught"
CANCELED = "canceled"
IN_PROGRESS = "in_progress"
NOT_STARTED = "not_started"

# (fill, border, legend label, icon) — the console's light theme
STATUS_STYLE: dict[str, tuple[str, str, str, str]] = {
    SUCCEEDED: ("#d7f0d2", "#1d8102", "Succeeded", "✓"),
    FAILED: ("#fcd9d6", "#d13212", "Failed", "✗"),
    CAUGHT: ("#ffe2b8", "#e07800", "Caught error", "⚠"),
    CANCELED: ("#e1e4e6", "#687078", "Canceled", "⊖"),
    IN_PROGRESS: ("#d4e8fb", "#0972d3", "In progress", "●"),
    NOT_STARTED: ("#ffffff", "#9ba7b6", "Not started", ""),
}
_PRIORITY = [FAILED, IN_PROGRESS, CANCELED, CAUGHT, SUCCEEDED, NOT_STARTED]
START_END_FILL = "#f4ead6"
START_END_BORDER = "#b8a07a"
EDGE_COLOR = "#545b64"
TAKEN_EDGE_COLOR = "#16191f"  # transitions the execution took
IDLE_EDGE_COLOR = "#9ba7b6"  # transitions it did not take
TEXT_COLOR = "#16191f"

_FAILURE_EVENTS = {
    "TaskFailed",
    "TaskTimedOut",
    "TaskStartFailed",
    "TaskSubmitFailed",
    "LambdaFunctionFailed",
    "LambdaFunctionTimedOut",
    "LambdaFunctionStartFailed",
    "LambdaFunctionScheduleFailed",
    "MapStateFailed",
    "ParallelStateFailed",
    "ActivityFailed",
    "ActivityTimedOut",
    "EvaluationFailed",
}
_SUCCESS_EVENTS = {
    "TaskSucceeded",
    "LambdaFunctionSucceeded",
    "MapStateSucceeded",
    "ParallelStateSucceeded",
    "ActivitySucceeded",
}
_ABORT_EVENTS = {"MapStateAborted", "ParallelStateAborted", "TaskStateAborted", "MapIterationAborted"}

# layout constants, in inches (1 inch = ``dpi`` pixels)
_BOX_H = 0.62
_ROW_GAP = 0.55
_COL_GAP = 0.45
_CIRCLE = 0.36
_GROUP_PAD = 0.25
_GROUP_HEADER = 0.42
_LANE = 0.24
_MARGIN = 0.35


class RenderError(SconeflowError):
    """The picture cannot be drawn (unknown format, unreadable definition)."""


# -- statuses from a history ----------------------------------------------------------------------


@dataclass
class _Visit:
    name: str
    entered_id: int
    type: str
    exited: bool = False
    outcome: str | None = None  # "failure" | "success" | "aborted" (the last one seen)


def _details(event: dict[str, Any]) -> dict[str, Any]:
    for key, value in event.items():
        if key.endswith("EventDetails") and isinstance(value, dict):
            return value
    return {}


def state_statuses(events: list[dict[str, Any]], execution_status: str | None = None) -> dict[str, str]:
    """What happened to each state name in an execution, from its AWS history events."""
    by_id = {int(e["id"]): e for e in events if "id" in e}
    visits: dict[int, _Visit] = {}
    open_by_name: dict[str, list[_Visit]] = {}
    order: list[_Visit] = []

    def visit_of(event: dict[str, Any]) -> _Visit | None:
        """The state visit an event belongs to: up the previousEventId chain to a visit of its type."""
        kind = str(event.get("type", ""))
        wanted = next((t for t in ("Map", "Parallel") if kind.startswith(t)), None)
        if wanted is None and kind.startswith(("Task", "LambdaFunction", "Activity")):
            wanted = "Task"
        seen = 0
        prev = int(event.get("previousEventId") or 0)
        while prev and seen < 500:
            visit = visits.get(prev)
            if visit is not None and (wanted is None or visit.type == wanted):
                return visit
            parent = by_id.get(prev)
            if parent is None:
                break
            prev = int(parent.get("previousEventId") or 0)
            seen += 1
        opened = [v for v in order if not v.exited and (wanted is None or v.type == wanted)]
        return opened[-1] if opened else None

    status = execution_status
    for event in sorted(events, key=lambda e: int(e.get("id", 0))):
        kind = str(event.get("type", ""))
        if kind.endswith("StateEntered"):
            name = _details(event).get("name", "")
            visit = _Visit(name=name, entered_id=int(event["id"]), type=kind[: -len("StateEntered")])
            visits[visit.entered_id] = visit
            open_by_name.setdefault(name, []).append(visit)
            order.append(visit)
        elif kind.endswith("StateExited"):
            name = _details(event).get("name", "")
            pending = open_by_name.get(name) or []
            if pending:
                pending.pop(0).exited = True
        elif kind in _FAILURE_EVENTS or kind in _SUCCESS_EVENTS or kind in _ABORT_EVENTS:
            visit = visit_of(event)
            if visit is not None:
                visit.outcome = (
                    "failure"
                    if kind in _FAILURE_EVENTS
                    else "success"
                    if kind in _SUCCESS_EVENTS
                    else "aborted"
                )
        elif kind == "ExecutionSucceeded" and status is None:
            status = "SUCCEEDED"
        elif kind == "ExecutionFailed" and status is None:
            status = "FAILED"
        elif kind == "ExecutionAborted" and status is None:
            status = "ABORTED"
        elif kind == "ExecutionTimedOut" and status is None:
            status = "TIMED_OUT"

    per_name: dict[str, list[str]] = {}
    for visit in order:
        if visit.type == "Fail":
            result = FAILED
        elif visit.exited:
            result = CAUGHT if visit.outcome == "failure" else SUCCEEDED
        elif visit.outcome == "aborted":
            result = CANCELED
        elif status in (None, "RUNNING"):
            result = IN_PROGRESS
        elif status in ("ABORTED",):
            result = CANCELED
        elif visit.outcome == "failure" or status == "TIMED_OUT":
            result = FAILED
        else:
            result = CANCELED  # e.g. a sibling branch failed and this one was stopped
        per_name.setdefault(visit.name, []).append(result)
    return {name: min(results, key=_PRIORITY.index) for name, results in per_name.items()}


def taken_edges(events: list[dict[str, Any]]) -> set[tuple[str, str]]:
    """Transitions an execution took, as (from, to) state names ("__start__"/"__end__" at the ends)."""
    by_id = {int(e["id"]): e for e in events if "id" in e}
    taken: set[tuple[str, str]] = set()
    for event in events:
        kind = str(event.get("type", ""))
        if kind.endswith("StateEntered"):
            target = _details(event).get("name", "")
        elif kind in ("ExecutionSucceeded", "ExecutionFailed"):
            target = "__end__"
        else:
            continue
        prev = by_id.get(int(event.get("previousEventId") or 0))
        prev_kind = str(prev.get("type", "")) if prev else ""
        if prev is None or prev_kind == "ExecutionStarted":
            if target != "__end__" and int(event.get("previousEventId") or 0) in (0, 1):
                taken.add(("__start__", target))
        elif prev_kind.endswith("StateExited") or (target == "__end__" and prev_kind == "FailStateEntered"):
            taken.add((_details(prev).get("name", ""), target))
    return taken


# -- layout ---------------------------------------------------------------------------------------


@dataclass
class _Node:
    key: str
    label: str
    kind: str  # "state" | "start" | "end"
    state_type: str = ""
    subtitle: str = ""
    w: float = 0.0
    h: float = 0.0
    x: float = 0.0  # top-left, inches; relative to the containing graph until placed
    y: float = 0.0
    children: list[_Graph] = field(default_factory=list)

    @property
    def cx(self) -> float:
        return self.x + self.w / 2

    @property
    def cy(self) -> float:
        return self.y + self.h / 2


@dataclass
class _Edge:
    src: str
    dst: str
    label: str = ""
    dashed: bool = False


@dataclass
class _Graph:
    nodes: dict[str, _Node]
    edges: list[_Edge]
    ranks: dict[str, int]
    w: float = 0.0
    h: float = 0.0
    left_lanes: int = 0
    right_lanes: int = 0
    edge_sides: dict[int, str] = field(default_factory=dict)


def _subtitle(state: dict[str, Any]) -> str:
    kind = state.get("Type", "")
    if kind != "Task":
        return f"{kind} state"
    resource = str(state.get("Resource", ""))
    if resource.startswith("arn:aws:states:::"):
        service, _, action = resource[len("arn:aws:states:::") :].partition(":")
        if service == "aws-sdk":
            service, _, action = action.partition(":")
        action = action.split(".")[0]
        pretty = {
            "lambda": "AWS Lambda",
            "sns": "Amazon SNS",
            "sqs": "Amazon SQS",
            "states": "Step Functions",
        }
        return f"{pretty.get(service, service)}: {action[:1].upper() + action[1:]}"
    if ":lambda:" in resource:
        return "AWS Lambda: function"
    return "Task"


def _text_width(text: str, size: float, bold: bool = False) -> float:
    return (0.0090 if bold else 0.0076) * size * len(text)  # DejaVu Sans, roughly


def _build(states: dict[str, Any], start_at: str, top_level: bool) -> _Graph:
    nodes: dict[str, _Node] = {}
    edges: list[_Edge] = []
    if top_level:
        nodes["__start__"] = _Node("__start__", "Start", "start", w=_CIRCLE * 2.2, h=_CIRCLE)
        edges.append(_Edge("__start__", start_at))
    needs_end = False
    for name, state in states.items():
        if not isinstance(state, dict):
            continue
        kind = str(state.get("Type", ""))
        node = _Node(name, name, "state", state_type=kind, subtitle=_subtitle(state))
        if kind == "Parallel":
            for branch in state.get("Branches") or []:
                if isinstance(branch, dict):
                    node.children.append(_build(branch.get("States") or {}, branch.get("StartAt", ""), False))
        elif kind == "Map":
            proc = state.get("ItemProcessor") or state.get("Iterator") or {}
            if isinstance(proc, dict):
                node.children.append(_build(proc.get("States") or {}, proc.get("StartAt", ""), False))
        if node.children:
            inner_w = sum(c.w for c in node.children) + _COL_GAP * (len(node.children) - 1)
            node.w = max(inner_w + 2 * _GROUP_PAD, _text_width(name, 10) + 1.2)
            node.h = _GROUP_HEADER + max(c.h for c in node.children) + _GROUP_PAD
        else:
            node.w = max(2.3, _text_width(name, 10, True) + 0.9, _text_width(node.subtitle, 8) + 0.9)
            node.h = _BOX_H
        nodes[name] = node
        if isinstance(state.get("Next"), str):
            edges.append(_Edge(name, state["Next"]))
        for i, rule in enumerate(state.get("Choices") or [], start=1):
            if isinstance(rule, dict) and isinstance(rule.get("Next"), str):
                edges.append(_Edge(name, rule["Next"], f"Rule #{i}"))
        if isinstance(state.get("Default"), str):
            edges.append(_Edge(name, state["Default"], "Default"))
        for i, catcher in enumerate(state.get("Catch") or [], start=1):
            if isinstance(catcher, dict) and isinstance(catcher.get("Next"), str):
                edges.append(_Edge(name, catcher["Next"], f"Catch #{i}", dashed=True))
        if top_level and (state.get("End") is True or kind in ("Succeed", "Fail")):
            edges.append(_Edge(name, "__end__"))
            needs_end = True
    if top_level and (needs_end or not states):
        nodes["__end__"] = _Node("__end__", "End", "end", w=_CIRCLE * 2.2, h=_CIRCLE)
    edges = [e for e in edges if e.src in nodes and e.dst in nodes]
    # merge parallel edges (two catchers to the same state): one arrow, both labels
    merged: dict[tuple[str, str], _Edge] = {}
    for edge in edges:
        key = (edge.src, edge.dst)
        if key in merged:
            old = merged[key]
            old.label = " / ".join(p or "Next" for p in (old.label, edge.label))
            old.dashed = old.dashed and edge.dashed
        else:
            merged[key] = edge
    edges = list(merged.values())

    # discovery order (BFS along edges in definition order), then unreachable states
    out: dict[str, list[str]] = {}
    for edge in edges:
        out.setdefault(edge.src, []).append(edge.dst)
    root = "__start__" if top_level else start_at
    order: list[str] = []
    seen: set[str] = set()
    queue = [root] if root in nodes else []
    while queue:
        current = queue.pop(0)
        if current in seen:
            continue
        seen.add(current)
        order.append(current)
        queue.extend(n for n in out.get(current, []) if n not in seen and n != "__end__")
    order += [n for n in nodes if n not in seen and n != "__end__"]
    if "__end__" in nodes:
        order.append("__end__")
    index = {n: i for i, n in enumerate(order)}

    # back edges: DFS from the root
    back: set[tuple[str, str]] = set()
    state_of: dict[str, int] = {}

    def dfs(start: str) -> None:
        stack: list[tuple[str, int]] = [(start, 0)]
        state_of[start] = 1
        while stack:
            current, i = stack[-1]
            targets = out.get(current, [])
            if i < len(targets):
                stack[-1] = (current, i + 1)
                nxt = targets[i]
                if state_of.get(nxt) == 1:
                    back.add((current, nxt))
                elif nxt not in state_of:
                    state_of[nxt] = 1
                    stack.append((nxt, 0))
            else:
                state_of[current] = 2
                stack.pop()

    for name in order:
        if name not in state_of:
            dfs(name)

    # longest-path ranks over forward edges
    ranks = {n: 0 for n in order}
    forward = [e for e in edges if (e.src, e.dst) not in back and e.src != e.dst]
    for _ in range(len(order)):
        changed = False
        for edge in forward:
            if ranks[edge.dst] < ranks[edge.src] + 1:
                ranks[edge.dst] = ranks[edge.src] + 1
                changed = True
        if not changed:
            break
    if "__end__" in nodes:
        ranks["__end__"] = max((r for n, r in ranks.items() if n != "__end__"), default=0) + 1

    rows: dict[int, list[str]] = {}
    for name in sorted(order, key=lambda n: index[n]):
        rows.setdefault(ranks[name], []).append(name)
    content_w = max(
        (sum(nodes[n].w for n in row) + _COL_GAP * (len(row) - 1) for row in rows.values()), default=1.0
    )
    graph = _Graph(nodes=nodes, edges=edges, ranks=ranks)

    # which side each long edge runs on
    for i, edge in enumerate(edges):
        gap = ranks[edge.dst] - ranks[edge.src]
        if (edge.src, edge.dst) in back or gap <= 0:
            graph.edge_sides[i] = "left"
            graph.left_lanes += 1
        elif gap > 1:
            graph.edge_sides[i] = "pending"
    y = 0.0
    for rank in sorted(rows):
        row = rows[rank]
        row_h = max(nodes[n].h for n in row)
        row_w = sum(nodes[n].w for n in row) + _COL_GAP * (len(row) - 1)
        x = (content_w - row_w) / 2
        for name in row:
            node = nodes[name]
            node.x, node.y = x, y + (row_h - node.h) / 2
            x += node.w + _COL_GAP
        y += row_h + _ROW_GAP
    for i, side in list(graph.edge_sides.items()):
        if side == "pending":
            edge = edges[i]
            right = nodes[edge.dst].cx >= nodes[edge.src].cx - 1e-6
            graph.edge_sides[i] = "right" if right else "left"
            if right:
                graph.right_lanes += 1
            else:
                graph.left_lanes += 1
    shift = graph.left_lanes * _LANE + (0.15 if graph.left_lanes else 0)
    for node in nodes.values():
        node.x += shift
    graph.w = content_w + shift + graph.right_lanes * _LANE + (0.15 if graph.right_lanes else 0)
    graph.h = max(y - _ROW_GAP, _BOX_H)
    return graph


def _place(graph: _Graph, dx: float, dy: float) -> None:
    """Turn relative positions into absolute ones (recursively into groups)."""
    for node in graph.nodes.values():
        node.x += dx
        node.y += dy
        if node.children:
            inner_w = sum(c.w for c in node.children) + _COL_GAP * (len(node.children) - 1)
            cx = node.x + (node.w - inner_w) / 2
            for child in node.children:
                _place(child, cx, node.y + _GROUP_HEADER)
                cx += child.w + _COL_GAP


# -- drawing --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RenderResult:
    path: Path
    width_px: int
    height_px: int
    boxes: dict[str, tuple[int, int, int, int]]  # state name -> (left, top, right, bottom) pixels
    statuses: dict[str, str]


def _all_nodes(graph: _Graph) -> list[_Node]:
    out = []
    for node in graph.nodes.values():
        out.append(node)
        for child in node.children:
            out.extend(_all_nodes(child))
    return out


def render_graph(
    definition: str | dict[str, Any],
    output: str | Path,
    *,
    events: list[dict[str, Any]] | None = None,
    execution_status: str | None = None,
    title: str | None = None,
    subtitle: str | None = None,
    dpi: int = 110,
) -> RenderResult:
    """Draw the state machine (coloured by ``events`` when given) to ``output`` (.png or .svg)."""
    path = Path(output)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in ("png", "svg"):
        raise RenderError(f"cannot render to {path.name!r}: use a .png or .svg file name")
    try:
        spec = json.loads(definition) if isinstance(definition, str) else definition
    except ValueError as exc:
        raise RenderError(f"the definition is not JSON: {exc}") from exc
    if not isinstance(spec, dict) or not isinstance(spec.get("States"), dict):
        raise RenderError("the definition has no States object")

    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch, Rectangle

    statuses = state_statuses(events, execution_status) if events is not None else {}
    taken = taken_edges(events) if events is not None else set()
    graph = _build(spec["States"], str(spec.get("StartAt", "")), True)
    header_h = 0.75 if (title or subtitle) else 0.2
    legend_h = 0.7
    _place(graph, _MARGIN, header_h)
    legend_w = sum(0.75 + _text_width(STATUS_STYLE[k][2], 8.5) for k in STATUS_STYLE) + 2 * _MARGIN
    width = max(graph.w + 2 * _MARGIN, legend_w, 6.6)
    if width > graph.w + 2 * _MARGIN:  # centre a narrow graph
        shift = (width - graph.w - 2 * _MARGIN) / 2
        for node in _all_nodes(graph):
            node.x += shift
    height = header_h + graph.h + 0.35 + legend_h

    fig = plt.figure(figsize=(width, height), dpi=dpi)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)
    ax.axis("off")
    fig.patch.set_facecolor("white")

    if title:
        ax.text(_MARGIN, 0.32, title, fontsize=13, fontweight="bold", color=TEXT_COLOR, va="center")
    if subtitle:
        ax.text(_MARGIN, 0.58, subtitle, fontsize=9, color="#5f6b7a", va="center")

    boxes: dict[str, tuple[int, int, int, int]] = {}

    def status_of(name: str) -> str:
        return statuses.get(name, NOT_STARTED) if events is not None else NOT_STARTED

    def draw_graph(g: _Graph) -> None:
        for node in g.nodes.values():
            if node.kind in ("start", "end"):
                ax.add_patch(
                    Circle(
                        (node.cx, node.cy),
                        _CIRCLE / 2,
                        facecolor=START_END_FILL,
                        edgecolor=START_END_BORDER,
                        linewidth=1.2,
                        zorder=3,
                    )
                )
                ax.text(
                    node.cx,
                    node.cy,
                    node.label,
                    fontsize=7.5,
                    ha="center",
                    va="center",
                    color=TEXT_COLOR,
                    zorder=4,
                )
                continue
            st = status_of(node.key)
            fill, border, _, icon = STATUS_STYLE[st]
            if node.children:
                ax.add_patch(
                    FancyBboxPatch(
                        (node.x, node.y),
                        node.w,
                        node.h,
                        boxstyle="round,pad=0,rounding_size=0.08",
                        facecolor="#fafbfc",
                        edgecolor=border,
                        linewidth=1.3,
                        linestyle=(0, (4, 2)),
                        zorder=1,
                    )
                )
                ax.add_patch(
                    Rectangle(
                        (node.x + 0.03, node.y + 0.03),
                        node.w - 0.06,
                        _GROUP_HEADER - 0.1,
                        facecolor=fill,
                        edgecolor="none",
                        zorder=1.5,
                    )
                )
                ax.text(
                    node.x + 0.18,
                    node.y + _GROUP_HEADER / 2 - 0.02,
                    f"{node.state_type}: {node.label}",
                    fontsize=9.5,
                    fontweight="bold",
                    va="center",
                    color=TEXT_COLOR,
                    zorder=4,
                )
                if icon:
                    ax.text(
                        node.x + node.w - 0.2,
                        node.y + _GROUP_HEADER / 2 - 0.02,
                        icon,
                        fontsize=11,
                        ha="center",
                        va="center",
                        color=border,
                        zorder=4,
                    )
                box_y0, box_y1 = node.y + 0.03, node.y + _GROUP_HEADER - 0.07
                for child in node.children:
                    draw_graph(child)
            else:
                ax.add_patch(
                    FancyBboxPatch(
                        (node.x, node.y),
                        node.w,
                        node.h,
                        boxstyle="round,pad=0,rounding_size=0.07",
                        facecolor=fill,
                        edgecolor=border,
                        linewidth=1.6 if st != NOT_STARTED else 1.1,
                        zorder=3,
                    )
                )
                ax.text(
                    node.cx,
                    node.y + 0.23,
                    node.label,
                    fontsize=10,
                    fontweight="bold",
                    ha="center",
                    va="center",
                    color=TEXT_COLOR,
                    zorder=4,
                )
                ax.text(
                    node.cx,
                    node.y + 0.45,
                    node.subtitle,
                    fontsize=8,
                    ha="center",
                    va="center",
                    color="#5f6b7a",
                    zorder=4,
                )
                if icon:
                    ax.text(
                        node.x + node.w - 0.17,
                        node.y + 0.2,
                        icon,
                        fontsize=11,
                        ha="center",
                        va="center",
                        color=border,
                        zorder=4,
                    )
                box_y0, box_y1 = node.y, node.y + node.h
            boxes[node.key] = (
                round(node.x * dpi),
                round(box_y0 * dpi),
                round((node.x + node.w) * dpi),
                round(box_y1 * dpi),
            )
        draw_edges(g)

    def draw_edges(g: _Graph) -> None:
        lane = {"left": 0, "right": 0}
        lefts = [n.x for n in g.nodes.values()]
        rights = [n.x + n.w for n in g.nodes.values()]
        min_x, max_x = min(lefts), max(rights)
        for i, edge in enumerate(g.edges):
            src, dst = g.nodes[edge.src], g.nodes[edge.dst]
            side = g.edge_sides.get(i)
            was_taken = (edge.src, edge.dst) in taken
            color = TAKEN_EDGE_COLOR if was_taken else (EDGE_COLOR if events is None else IDLE_EDGE_COLOR)
            line_w = 2.0 if was_taken else 1.1
            style = (0, (4, 3)) if edge.dashed else "-"
            if side is None:
                start = (src.cx, src.y + src.h)
                end = (dst.cx, dst.y)
                if abs(start[0] - end[0]) < 1e-6:
                    points = [start, end]
                else:
                    mid = (start[1] + end[1]) / 2
                    points = [start, (start[0], mid), (end[0], mid), end]
                label_at = ((start[0] + end[0]) / 2, (start[1] + end[1]) / 2)
            else:
                lane[side] += 1
                if side == "right":
                    lx = max_x + 0.12 + lane[side] * _LANE
                    start = (src.x + src.w, src.cy)
                else:
                    lx = min_x - 0.12 - lane[side] * _LANE
                    start = (src.x, src.cy)
                above = dst.y - 0.18
                points = [start, (lx, start[1]), (lx, above), (dst.cx, above), (dst.cx, dst.y)]
                label_at = ((start[0] + lx) / 2, start[1] - 0.09)
            xs = [p[0] for p in points]
            ys = [p[1] for p in points]
            ax.plot(
                xs,
                [*ys[:-1], ys[-1] - 0.02],
                color=color,
                linewidth=line_w,
                linestyle=style,
                zorder=2.2 if was_taken else 2,
                solid_capstyle="butt",
            )
            ax.add_patch(
                FancyArrowPatch(
                    points[-2],
                    points[-1],
                    arrowstyle="-|>",
                    mutation_scale=11,
                    color=color,
                    linewidth=0,
                    zorder=2.5,
                    shrinkA=0,
                    shrinkB=0,
                )
            )
            if edge.label:
                ax.text(
                    label_at[0],
                    label_at[1],
                    edge.label,
                    fontsize=7.5,
                    ha="center",
                    va="center",
                    color="#414750",
                    zorder=5,
                    bbox={
                        "boxstyle": "round,pad=0.18",
                        "facecolor": "white",
                        "edgecolor": "#c6ccd2",
                        "linewidth": 0.6,
                    },
                )

    draw_graph(graph)

    # legend
    ly = height - legend_h / 2 - 0.05
    ax.plot([_MARGIN, width - _MARGIN], [ly - 0.33, ly - 0.33], color="#e9ebed", linewidth=1)
    x = _MARGIN
    for key in (IN_PROGRESS, FAILED, CAUGHT, CANCELED, SUCCEEDED, NOT_STARTED):
        fill, border, label, icon = STATUS_STYLE[key]
        ax.add_patch(
            FancyBboxPatch(
                (x, ly - 0.11),
                0.32,
                0.22,
                boxstyle="round,pad=0,rounding_size=0.04",
                facecolor=fill,
                edgecolor=border,
                linewidth=1.2,
            )
        )
        if icon:
            ax.text(x + 0.16, ly, icon, fontsize=7.5, ha="center", va="center", color=border)
        ax.text(x + 0.4, ly, label, fontsize=8.5, va="center", color=TEXT_COLOR)
        x += 0.4 + _text_width(label, 8.5) + 0.35

    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format=fmt, dpi=dpi, facecolor="white")
    plt.close(fig)
    width_px, height_px = round(width * dpi), round(height * dpi)
    return RenderResult(
        path=path,
        width_px=width_px,
        height_px=height_px,
        boxes=boxes,
        statuses={n: status_of(n) for n in boxes},
    )


def render_execution(service: Any, execution: str, output: str | Path, *, dpi: int = 110) -> RenderResult:
    """Draw one execution of a :class:`~sconeflow.stepfunctions.service.StepFunctionsService` (by ARN or name)
    with the definition revision it ran, titled like the console's execution page."""
    record, events = service.history(execution)
    definition = service.store.machine_for_execution(record).definition
    started = record.start_date.strftime("%Y-%m-%d %H:%M:%S UTC")
    subtitle = f"{record.state_machine_name} · {record.status} · started {started}"
    if record.error:
        subtitle += f" · {record.error}"
    return render_graph(
        definition,
        output,
        events=events,
        execution_status=record.status,
        title=f"Execution {record.name}",
        subtitle=subtitle,
        dpi=dpi,
    )
