"""``sconeflow up`` / ``sconeflow down``: the local AWS-compatible gateway and the endpoint servers."""

from __future__ import annotations

import logging
import os
import signal
import threading
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.panel import Panel

from sconeflow.cliutil import HomeOption, console, err_console, settings_for

log = logging.getLogger(__name__)

HostOption = Annotated[
    str,
    typer.Option("--host", help="Address to bind. Anything but loopback exposes unauthenticated AWS APIs."),
]
PortOption = Annotated[int, typer.Option("--port", min=0, max=65535, help="TCP port (0: any free port).")]


def _warn_host(host: str) -> None:
    from sconeflow.gateway.server import LOOPBACK_HOSTS

    if host not in LOOPBACK_HOSTS:
        err_console.print(
            Panel(
                f"[bold]The gateway will listen on {host}.[/]\n"
                "It does NOT verify request signatures: anyone who can reach this address can read and "
                "write your buckets, invoke your functions and endpoints, and start executions.\n"
                "Bind 127.0.0.1 (the default) unless you really mean it.",
                title="[bold red]WARNING: gateway reachable beyond this machine[/]",
                border_style="bold red",
            )
        )


def up(
    port: PortOption = 4566,
    host: HostOption = "127.0.0.1",
    foreground: Annotated[
        bool, typer.Option("--foreground", help="Serve in this process (Ctrl-C stops).")
    ] = False,
    endpoints: Annotated[
        bool, typer.Option("--endpoints/--no-endpoints", help="Also start the InService endpoint servers.")
    ] = True,
    home: HomeOption = None,
) -> None:
    """Start the local AWS gateway (S3, Lambda, SageMaker Runtime, Step Functions) in the background."""
    settings = settings_for(home)
    _warn_host(host)
    if foreground:
        _serve_foreground(settings, host, port)
        return
    url, started = start_background(settings, host, port)
    if started:
        console.print(f"gateway listening on {url} (log: {settings.logs_dir / 'gateway.log'})")
    else:
        console.print(f"gateway already running on {url}")
    if endpoints:
        _start_endpoints(settings)
    console.print(f"export AWS_ENDPOINT_URL={url}", highlight=False, soft_wrap=True)


def start_background(settings, host: str = "127.0.0.1", port: int = 4566) -> tuple[str, bool]:  # type: ignore[no-untyped-def]
    """The Python API of ``sconeflow up``: start the gateway in the background unless it is running.

    Returns ``(url, started)``; ``started`` is False when this home's gateway was already running.
    """
    from sconeflow import services
    from sconeflow.gateway.client import GATEWAY_SERVICE, gateway_url

    url = gateway_url(settings)
    if url is not None:
        return url, False
    from sconeflow.gateway.server import PortInUse, bind

    server, url = bind(settings, host, port)  # fails fast with PortInUse, and finds the port for 0
    bound_port = server.server_address[1]
    server.server_close()
    server.router.close()
    try:
        services.start_service(
            settings,
            name=GATEWAY_SERVICE,
            kind="gateway",
            args=["up", "--foreground", "--no-endpoints", "--host", host, "--port", str(bound_port)],
            url=url,
            health_url=url + "/_sconeflow/health",
            timeout=30.0,
        )
    except services.ServiceError as exc:
        raise PortInUse(str(exc)) from exc
    return url, True


def _start_endpoints(settings) -> None:  # type: ignore[no-untyped-def]
    try:
        from sconeflow.endpoint.registry import start_all
    except ImportError:
        return
    for name in start_all(settings):
        console.print(f"endpoint {name} started")


def _serve_foreground(settings, host: str, port: int) -> None:  # type: ignore[no-untyped-def]
    from sconeflow import services
    from sconeflow.gateway.client import GATEWAY_SERVICE
    from sconeflow.gateway.server import bind

    server, url = bind(settings, host, port)
    record = services.read_record(settings, GATEWAY_SERVICE)
    if record is None or not record.alive or record.pid == os.getpid():
        services.write_record(
            settings,
            services.ServiceRecord(
                name=GATEWAY_SERVICE,
                kind="gateway",
                pid=os.getpid(),
                url=url,
                log_path=str(settings.logs_dir / "gateway.log"),
                started_at=datetime.now(UTC).isoformat(),
            ),
        )

    def stop(signum: int, frame: object) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    err_console.print(f"gateway serving on {url}", highlight=False)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        server.router.close()
        record = services.read_record(settings, GATEWAY_SERVICE)
        if record is not None and record.pid == os.getpid():
            services.remove_record(settings, GATEWAY_SERVICE)


def down(home: HomeOption = None) -> None:
    """Stop the gateway, every endpoint server and every running execution of this home."""
    from sconeflow import services
    from sconeflow.gateway.client import GATEWAY_SERVICE

    settings = settings_for(home)
    stopped = []
    try:
        from sconeflow.endpoint.registry import stop_all
    except ImportError:
        stop_all = None
    if stop_all is not None:
        stopped += [f"endpoint {name}" for name in stop_all(settings)]
    if services.stop_service(settings, GATEWAY_SERVICE):
        stopped.append("gateway")
    for record in services.list_records(settings):
        if services.stop_service(settings, record.name):
            stopped.append(f"{record.kind} {record.name}")
    stopped += [f"execution {name}" for name in _stop_executions(settings)]
    console.print("stopped " + ", ".join(stopped) if stopped else "nothing was running")


def _stop_executions(settings) -> list[str]:  # type: ignore[no-untyped-def]
    """Abort the executions still running here (`sfn start` without a gateway runs them in a detached
    process, which would otherwise outlive `down`); the gateway's own were aborted as it stopped."""
    if not settings.db_path.exists():
        return []
    try:
        from sconeflow.stepfunctions.service import StepFunctionsService
    except ImportError:
        return []
    service = StepFunctionsService(settings)
    names = []
    for record in service.list_executions(status="RUNNING"):
        service.stop_execution(record.arn, error="RunnerStopped", cause="Stopped by `sconeflow down`.")
        names.append(record.name)
    return names


def register(app: typer.Typer) -> None:
    app.command("up")(up)
    app.command("down")(down)
