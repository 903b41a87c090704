"""``sconeflow traffic``: a steady stream (or a burst) of test-split inputs, optionally shifted."""

from __future__ import annotations

import json
import signal
import threading
from typing import Annotated, Any

import typer
from rich.table import Table

from sconeflow.cliutil import HomeOption, console, err_console, settings_for


def _table(stats: dict[str, Any], title: str) -> Table:
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column("what", style="bold")
    table.add_column("value")
    table.add_row("target", stats["target"])
    table.add_row("shift", stats["shift"])
    table.add_row("elapsed", f"{stats['elapsed_s']:.1f} s")
    if stats["requests"] != stats["sent"]:
        table.add_row("executions", str(stats["requests"]))
    table.add_row("sent", str(stats["sent"]))
    table.add_row("succeeded", f"[green]{stats['succeeded']}[/]")
    table.add_row("failed", f"[red]{stats['failed']}[/]" if stats["failed"] else "0")
    if stats["skipped"]:
        table.add_row("skipped (target busy)", f"[yellow]{stats['skipped']}[/]")
    if stats["unfinished"]:
        table.add_row("unfinished", f"[yellow]{stats['unfinished']}[/]")
    in_flight = stats["sent"] - stats["succeeded"] - stats["failed"]
    if in_flight and not stats["stopped_by"]:
        table.add_row("in flight", str(in_flight))
    if stats["achieved_rate_per_s"] is not None:
        table.add_row("rate", f"{stats['achieved_rate_per_s']:.2f}/s")
    if stats["mean_latency_ms"] is not None:
        table.add_row(
            "latency (succeeded)",
            f"mean {stats['mean_latency_ms']:.1f} ms, max {stats['max_latency_ms']:.1f} ms",
        )
    if stats["failed_mean_latency_ms"] is not None:
        table.add_row(
            "latency (failed)",
            f"mean {stats['failed_mean_latency_ms']:.1f} ms, max {stats['failed_max_latency_ms']:.1f} ms",
        )
    if stats["true_classes"]:
        table.add_row("drawn (true class)", ", ".join(f"{k} {v}" for k, v in stats["true_classes"].items()))
    if stats["outcomes"]:
        table.add_row("outcomes", ", ".join(f"{k} {v}" for k, v in stats["outcomes"].items()))
    if stats["errors"]:
        table.add_row("errors", ", ".join(f"{k} {v}" for k, v in stats["errors"].items()))
    if stats["stopped_by"]:
        table.add_row("stopped by", stats["stopped_by"])
    return table


def traffic(
    rate: Annotated[
        str, typer.Option("--rate", help="Inputs per second: 5/s, 300/m, 100/h or a number.")
    ] = "5/s",
    duration: Annotated[
        str, typer.Option("--duration", help="How long to send: 30s, 10m, 1h (Ctrl-C stops earlier).")
    ] = "10m",
    endpoint: Annotated[
        str | None, typer.Option("--endpoint", help="Send to this endpoint (InvokeEndpoint through boto3).")
    ] = None,
    workflow: Annotated[
        str | None,
        typer.Option("--workflow", help="Start one execution of this state machine per input."),
    ] = None,
    shift: Annotated[
        str, typer.Option("--shift", help="none, dark, noise or one-class: drifted traffic for monitoring.")
    ] = "none",
    shift_class: Annotated[
        str | None, typer.Option("--class", help="The class of --shift one-class (default: the first).")
    ] = None,
    burst: Annotated[
        int | None, typer.Option("--burst", help="Send this many inputs at once instead of a paced stream.")
    ] = None,
    batch_size: Annotated[
        int | None,
        typer.Option(
            "--batch-size",
            help="With --workflow: this many images per execution as {s3_bucket, s3_keys} "
            "(workflow/step-function-batch.json); --rate then counts executions.",
        ),
    ] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Seed of the draws and of the noise.")] = None,
    concurrency: Annotated[int, typer.Option("--concurrency", help="Requests in flight at most.")] = 8,
    bucket: Annotated[
        str | None, typer.Option("--bucket", help="Bucket of the prepared dataset (default: the home's).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the final counts as JSON.")] = False,
    home: HomeOption = None,
) -> None:
    """Simulate traffic: inputs from the prepared test split, optionally shifted, sent at a steady rate."""
    from rich.live import Live

    from sconeflow.monitor.timeutil import parse_duration
    from sconeflow.store import open_store
    from sconeflow.traffic.generator import InputPool, TrafficPlan, make_target, parse_rate, run_traffic

    settings = settings_for(home)
    plan = TrafficPlan(
        rate=parse_rate(rate),
        duration=parse_duration(duration).total_seconds(),
        burst=burst,
        batch_size=batch_size,
        shift=shift,
        shift_class=shift_class,
        seed=seed,
        concurrency=concurrency,
    )
    plan.check()
    store = open_store(settings.resolved_store_uri)
    pool = InputPool(store, bucket or settings.bucket, shift=shift, shift_class=shift_class, seed=seed)
    target = make_target(
        settings,
        store,
        endpoint=endpoint,
        workflow=workflow,
        concurrency=concurrency,
        batch_size=batch_size,
        bucket=bucket,
    )
    what = f"{plan.burst} at once" if plan.burst else f"{plan.rate:g}/s for {duration}"
    err_console.print(
        f"traffic: {what} to {target.description}, shift {shift}, {len(pool)} test images; Ctrl-C stops",
        highlight=False,
    )
    stop = threading.Event()
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set()) if main else None  # `kill`: like Ctrl-C
    try:
        with Live(console=err_console, refresh_per_second=4, transient=True) as live:
            stats = run_traffic(
                plan,
                pool,
                target,
                stop=stop,
                on_tick=lambda s: live.update(_table(s.as_dict(), "sconeflow traffic")),
            )
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous)
    summary = stats.as_dict()
    if as_json:
        console.print_json(json.dumps(summary))
    else:
        console.print(_table(summary, "sconeflow traffic: done"))


def register(app: typer.Typer) -> None:
    app.command(name="traffic")(traffic)
