"""``sconeflow endpoint deploy|list|describe|invoke|update|delete`` (+ the hidden ``serve``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from sconeflow.cliutil import HomeOption, console, err_console, settings_for

endpoint_app = typer.Typer(
    name="endpoint",
    help="Real-time endpoints: SageMaker's InvokeEndpoint contract, micro-batching, data capture.",
    no_args_is_help=True,
)

_STATUS_STYLE = {
    "InService": "green",
    "Failed": "red",
    "Creating": "yellow",
    "Updating": "yellow",
    "Deleting": "yellow",
}


@endpoint_app.command()
def deploy(
    model: Annotated[
        str, typer.Option("--model", help="Training-job name, or a model.tar.gz path / s3:// URI.")
    ],
    name: Annotated[
        str | None, typer.Option("--name", help="Endpoint name (default image-classification-<timestamp>).")
    ] = None,
    capture_percent: Annotated[
        int,
        typer.Option("--capture-percent", min=0, max=100, help="Data-capture sampling percentage (0 = off)."),
    ] = 100,
    capture_dest: Annotated[
        str | None,
        typer.Option(
            "--capture-dest",
            help="Capture destination, s3://bucket/prefix in the store (default s3://<bucket>/data_capture).",
        ),
    ] = None,
    max_batch: Annotated[int, typer.Option("--max-batch", min=1, help="Largest micro-batch.")] = 64,
    max_wait_ms: Annotated[
        float, typer.Option("--max-wait-ms", min=0.0, help="How long a batch may wait for more requests.")
    ] = 0.0,
    max_queue: Annotated[
        int, typer.Option("--max-queue", min=1, help="Requests queued before throttling (429).")
    ] = 256,
    threads: Annotated[
        int, typer.Option("--threads", min=0, help="ONNX Runtime threads (0 = CPU cores, max 4).")
    ] = 0,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            min=0,
            help="Inference threads taking batches side by side (0 = CPU cores, max 4; 1 = one at a time).",
        ),
    ] = 0,
    refill_ms: Annotated[
        float,
        typer.Option(
            "--refill-ms",
            min=0.0,
            help="After a batch, wait up to this long for its callers to come back (0 = off).",
        ),
    ] = 4.0,
    spin_max_batch: Annotated[
        int,
        typer.Option(
            "--spin-max-batch",
            min=0,
            help="Batches up to this size run on a spinning ONNX Runtime session (0 = never).",
        ),
    ] = 2,
    home: HomeOption = None,
) -> None:
    """Create the model, endpoint config (DataCaptureConfig) and endpoint; start it; wait for InService."""
    from sconeflow.endpoint.registry import deploy as do_deploy

    settings = settings_for(home)
    serving = {
        "max_batch": max_batch,
        "max_wait_ms": max_wait_ms,
        "max_queue": max_queue,
        "threads": threads,
        "workers": workers,
        "refill_ms": refill_ms,
        "spin_max_batch": spin_max_batch,
    }
    with err_console.status("Creating endpoint (loading the model)..."):
        view = do_deploy(
            settings,
            model,
            name=name,
            capture_percent=capture_percent,
            capture_dest=capture_dest,
            serving=serving,
        )
    err_console.print(
        f"[green]InService[/] at {view.url}  (capture {capture_percent}% -> "
        f"{view.config.data_capture.destination_s3_uri})",
        highlight=False,
    )
    console.print(view.endpoint.name, highlight=False)


@endpoint_app.command("list")
def list_endpoints(home: HomeOption = None) -> None:
    """All endpoints of this home with status, server state and capture settings."""
    from sconeflow.endpoint.registry import list_views

    views = list_views(settings_for(home))
    if not views:
        err_console.print("No endpoints. Create one with `sconeflow endpoint deploy --model ...`.")
        return
    table = Table()
    # the whole name (to copy into other commands); on a narrow terminal only the short columns
    wide = console.width >= 120
    columns = (
        ("Name", "Status", "Server", "URL", "Model", "Capture", "Created")
        if wide
        else ("Name", "Status", "Server", "Capture")
    )
    for column in columns:
        table.add_column(column, no_wrap=column != "Model", overflow="fold")
    for view in views:
        capture = view.config.data_capture
        style = _STATUS_STYLE.get(view.status, "")
        cells = {
            "Name": view.endpoint.name,
            "Status": f"[{style}]{view.status}[/]" if style else view.status,
            "Server": view.server,
            "URL": view.url or "-",
            "Model": view.model.source_ref,
            "Capture": f"{capture.initial_sampling_percentage}%" if capture.enable_capture else "off",
            "Created": view.endpoint.created_at,
        }
        table.add_row(*(cells[column] for column in columns))
    console.print(table)


@endpoint_app.command()
def describe(name: Annotated[str, typer.Argument(help="Endpoint name.")], home: HomeOption = None) -> None:
    """DescribeEndpoint-style JSON (with the endpoint config, model and server state)."""
    from sconeflow.endpoint.registry import EndpointRegistry

    settings = settings_for(home)
    registry = EndpointRegistry(settings)
    view = registry.view(name)
    out = view.to_api(settings)
    out["EndpointConfig"] = view.config.to_api()
    out["Serving"] = view.config.serving
    console.print_json(json.dumps(out))


@endpoint_app.command()
def invoke(
    name: Annotated[str, typer.Argument(help="Endpoint name.")],
    file: Annotated[Path, typer.Argument(help="Image file (PNG or JPEG).", exists=True, dir_okay=False)],
    content_type: Annotated[
        str | None,
        typer.Option("--content-type", help="Default: from the file name (image/png, image/jpeg)."),
    ] = None,
    inference_id: Annotated[
        str | None, typer.Option("--inference-id", help="InferenceId for capture.")
    ] = None,
    home: HomeOption = None,
) -> None:
    """InvokeEndpoint through boto3 sagemaker-runtime against the endpoint's server; prints the JSON."""
    import boto3
    from botocore.config import Config

    from sconeflow.endpoint.registry import resolve_endpoint_url

    settings = settings_for(home)
    url = resolve_endpoint_url(settings, name)
    if content_type is None:
        content_type = "image/jpeg" if file.suffix.lower() in (".jpg", ".jpeg") else "image/png"
    client = boto3.client(
        "sagemaker-runtime",
        endpoint_url=url,
        region_name=settings.region,
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=Config(retries={"max_attempts": 1}),
    )
    kwargs = {"EndpointName": name, "ContentType": content_type, "Body": file.read_bytes()}
    if inference_id:
        kwargs["InferenceId"] = inference_id
    try:
        response = client.invoke_endpoint(**kwargs)
    except client.exceptions.ClientError as exc:
        from sconeflow.endpoint.errors import InvocationError

        error = exc.response.get("Error", {})
        raise InvocationError(f"{error.get('Code')}: {error.get('Message')}") from exc
    body = response["Body"].read()
    classes_header = response["ResponseMetadata"]["HTTPHeaders"].get("x-sconeflow-classes")
    console.print(body.decode(errors="replace"), highlight=False, markup=False)
    if classes_header:
        from sconeflow.endpoint.answer import best_class
        from sconeflow.endpoint.errors import InvalidEndpointAnswer

        try:
            best, probability = best_class(body, classes_header)
        except ValueError as exc:
            raise InvalidEndpointAnswer(f"endpoint {name} answered 200 with a malformed body: {exc}") from exc
        err_console.print(f"-> {best} ({probability:.3f})", highlight=False, markup=False)


@endpoint_app.command()
def update(
    name: Annotated[str, typer.Argument(help="Endpoint name.")],
    model: Annotated[
        str, typer.Option("--model", help="Training-job name, or a model.tar.gz path / s3:// URI.")
    ],
    capture_percent: Annotated[
        int | None, typer.Option("--capture-percent", min=0, max=100, help="New sampling percentage.")
    ] = None,
    capture_dest: Annotated[
        str | None, typer.Option("--capture-dest", help="New capture destination.")
    ] = None,
    home: HomeOption = None,
) -> None:
    """Swap the model with no failed request; a model that cannot load leaves the old one serving."""
    from sconeflow.endpoint.registry import update as do_update

    settings = settings_for(home)
    with err_console.status("Updating endpoint (loading the new model)..."):
        view = do_update(settings, name, model, capture_percent=capture_percent, capture_dest=capture_dest)
    err_console.print(f"[green]{view.status}[/] with config {view.config.name}", highlight=False)
    console.print(view.endpoint.name, highlight=False)


@endpoint_app.command()
def delete(name: Annotated[str, typer.Argument(help="Endpoint name.")], home: HomeOption = None) -> None:
    """Stop the server (flushing capture) and delete the endpoint, its config and model records."""
    from sconeflow.endpoint.registry import delete as do_delete

    do_delete(settings_for(home), name)
    err_console.print(f"Deleted endpoint {name} (captured data stays in the store).", highlight=False)


@endpoint_app.command(hidden=True)
def serve(
    name: Annotated[str, typer.Argument(help="Endpoint name.")],
    port: Annotated[int, typer.Option("--port")] = 8080,
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    home: HomeOption = None,
) -> None:
    """Run the endpoint's server in the foreground (started by deploy / `sconeflow up`)."""
    from sconeflow.endpoint.server import serve as run_server

    run_server(settings_for(home), name, host=host, port=port)


def register(app: typer.Typer) -> None:
    app.add_typer(endpoint_app, name="endpoint")
