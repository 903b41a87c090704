"""``sconeflow data ...``: stage CIFAR-100 into the object store and look at what is there."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from sconeflow.cliutil import HomeOption, console, progress, settings_for, sigterm_as_interrupt

data_app = typer.Typer(
    help="Stage the CIFAR-100 data (extract, transform, load) and inspect it.", no_args_is_help=True
)


def _split_list(value: str | None) -> list[str] | None:
    if value is None:
        return None
    return [item.strip() for item in value.split(",") if item.strip()]


@data_app.command("prepare")
def prepare(
    source: Annotated[
        Path | None,
        typer.Option(
            "--source", help="A local CIFAR-100 python tarball, or an extracted cifar-100-python/ folder."
        ),
    ] = None,
    classes: Annotated[
        str | None,
        typer.Option("--classes", help="Comma-separated fine label names (default: bicycle,motorcycle)."),
    ] = None,
    coarse: Annotated[
        str | None,
        typer.Option(
            "--coarse",
            help="Comma-separated coarse groups whose fine classes to add, e.g. vehicles_1,vehicles_2.",
        ),
    ] = None,
    bucket: Annotated[
        str | None,
        typer.Option("--bucket", help="Target bucket (default: $SCONEFLOW_BUCKET or sconeflow-default)."),
    ] = None,
    url: Annotated[
        str | None,
        typer.Option("--url", help="Download from this URL instead of the official CIFAR-100 tarball."),
    ] = None,
    md5: Annotated[
        str | None, typer.Option("--md5", help="Expected MD5 of the tarball (download or --source).")
    ] = None,
    home: HomeOption = None,
) -> None:
    """Extract CIFAR-100, keep the chosen classes as 32x32 PNGs, and load them with manifests."""
    from sconeflow.data.prepare import prepare_dataset

    settings = settings_for(home)
    with sigterm_as_interrupt(), progress(transient=True) as bar:
        tasks: dict[str, int] = {}

        def report(phase: str, done: int, total: int | None) -> None:
            if phase not in tasks:
                label = {"download": "Downloading", "extract": "Extracting", "upload": "Loading objects"}.get(
                    phase, phase
                )
                tasks[phase] = bar.add_task(label, total=total)
            bar.update(tasks[phase], completed=done, total=total)

        result = prepare_dataset(
            settings,
            source=source,
            classes=_split_list(classes),
            coarse=_split_list(coarse),
            bucket=bucket,
            url=url,
            md5=md5,
            progress=report,
        )
    table = Table(title=f"Prepared {result.total_images} images in {result.seconds:.2f} s")
    table.add_column("class index", justify="right")
    table.add_column("class")
    for split in result.counts:
        table.add_column(split, justify="right")
    for index, name in enumerate(result.classes):
        table.add_row(str(index), name, *(str(result.counts[s][name]) for s in result.counts))
    table.add_row("", "[bold]total[/]", *(f"[bold]{sum(c.values())}[/]" for c in result.counts.values()))
    console.print(table)
    console.print(f"source: {result.source}")
    console.print(f"store:  {result.store_uri}")
    for what, uri in result.keys.items():
        console.print(f"  {what:<15} {uri}")
    console.print(
        f"objects: {result.written} written, {result.unchanged} unchanged, {result.removed} stale removed"
    )


@data_app.command("info")
def info(
    bucket: Annotated[
        str | None, typer.Option("--bucket", help="Bucket (default: SCONEFLOW_BUCKET or sconeflow-default).")
    ] = None,
    home: HomeOption = None,
) -> None:
    """Show the prepared dataset in a bucket: classes and image counts per split."""
    from sconeflow.data.dataset import SPLITS, load_classes, read_manifest
    from sconeflow.store import open_store

    settings = settings_for(home)
    store = open_store(settings.resolved_store_uri)
    bucket = bucket or settings.bucket
    document = load_classes(store, bucket)
    classes = [str(c) for c in document["classes"]]
    table = Table(title=f"s3://{bucket}/ ({store.uri})")
    table.add_column("class index", justify="right")
    table.add_column("class")
    counts = {}
    for split in SPLITS:
        table.add_column(split, justify="right")
        labels = [entry.label for entry in read_manifest(store, bucket, split)]
        counts[split] = [labels.count(i) for i in range(len(classes))]
    for index, name in enumerate(classes):
        table.add_row(str(index), name, *(str(counts[s][index]) for s in SPLITS))
    console.print(table)
    if document.get("source"):
        console.print(f"source: {document['source']}")


@data_app.command("synthesize")
def synthesize(
    out: Annotated[Path, typer.Argument(help="Where to write the .tar.gz.")],
    classes: Annotated[str, typer.Option("--classes", help="Comma-separated fine label names.")] = (
        "bicycle,motorcycle"
    ),
    n_train: Annotated[int, typer.Option("--n-train", min=0, help="Training rows per class.")] = 50,
    n_test: Annotated[int, typer.Option("--n-test", min=0, help="Test rows per class.")] = 10,
    distractors: Annotated[int, typer.Option("--distractors", min=0, help="Noise rows per split.")] = 0,
    seed: Annotated[int, typer.Option("--seed", help="Same seed and arguments, same bytes.")] = 0,
    home: HomeOption = None,
) -> None:
    """Write a small synthetic CIFAR-100-format tarball with learnable classes (for demos and tests).

    It writes only OUT; --home is accepted like on every command (nothing in the home changes).
    """
    from sconeflow.data.synthetic import make_cifar_tarball

    names = _split_list(classes) or []
    path = make_cifar_tarball(out, names, n_train=n_train, n_test=n_test, seed=seed, distractors=distractors)
    console.print(
        f"wrote {path} ({path.stat().st_size} bytes): {len(names)} classes x "
        f"({n_train} train + {n_test} test) rows, {distractors} distractors per split"
    )


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")
