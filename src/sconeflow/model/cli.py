"""``sconeflow train`` (+ ``train list|describe``), ``sconeflow evaluate`` and ``sconeflow predict``.

Heavy modules (torch, onnxruntime, matplotlib) are imported inside the commands.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from sconeflow.cliutil import (
    HomeOption,
    console,
    err_console,
    progress,
    settings_for,
    sigterm_as_interrupt,
)

if TYPE_CHECKING:
    from sconeflow.model.evaluate import EvaluationReport

train_app = typer.Typer(
    help="Train the image classifier (default: the benchmarked recipe; --fast for a quick look), "
    "list and describe training jobs.",
    invoke_without_command=True,
    no_args_is_help=False,
)

ModelOption = Annotated[
    str,
    typer.Option(
        "--model", "-m", help="A training-job name, a model.tar.gz path, or s3://bucket/key in the store."
    ),
]


@train_app.callback()
def train_command(
    ctx: typer.Context,
    epochs: Annotated[int | None, typer.Option(help="Epochs per network (default 30; --fast 10).")] = None,
    learning_rate: Annotated[
        float | None, typer.Option("--learning-rate", help="Peak SGD learning rate.")
    ] = None,
    mini_batch_size: Annotated[
        int | None, typer.Option("--mini-batch-size", help="Batch size (default 64).")
    ] = None,
    num_classes: Annotated[
        int | None,
        typer.Option("--num-classes", help="Expected number of classes (checked vs classes.json)."),
    ] = None,
    image_shape: Annotated[str, typer.Option("--image-shape", help="Input shape C,H,W.")] = "3,32,32",
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same data -> same model).")] = 0,
    ensemble_size: Annotated[
        int | None, typer.Option("--ensemble-size", help="Networks to train (default 5; --fast 1).")
    ] = None,
    distill: Annotated[
        bool | None,
        typer.Option(
            "--distill/--no-distill", help="Distill the ensemble into one student network (fast inference)."
        ),
    ] = None,
    distill_targets: Annotated[
        str | None,
        typer.Option(
            "--distill-targets",
            help="fixed: the ensemble's probabilities once per image (default); live: it labels "
            "every augmented batch the student sees (~1.8x slower student, no better on validation).",
        ),
    ] = None,
    color_jitter: Annotated[
        bool | None,
        typer.Option(
            "--color-jitter/--no-color-jitter",
            help="Per-image brightness, contrast and saturation jitter on top of the crops and flips.",
        ),
    ] = None,
    distill_epochs: Annotated[
        int | None, typer.Option("--distill-epochs", help="Student epochs (default: same as --epochs).")
    ] = None,
    tta: Annotated[
        str,
        typer.Option(
            help="Test-time augmentation in the graph: none, flip, or auto (flip when it raises the "
            "members' out-of-fold validation accuracy; the default)."
        ),
    ] = "auto",
    val_fraction: Annotated[
        float, typer.Option("--val-fraction", help="Stratified validation fold per network (0 = none).")
    ] = 0.1,
    widths: Annotated[
        str | None,
        typer.Option(help="Channel widths of the three blocks (default 64,256,256; --fast 32,128,128)."),
    ] = None,
    student_widths: Annotated[
        str | None,
        typer.Option(
            "--student-widths",
            help="Widths of the distilled student, e.g. 32,128,128 (default or 'same': the members' widths).",
        ),
    ] = None,
    quantize: Annotated[
        str,
        typer.Option(
            help="The shipped graph: auto (int8 when it agrees with float32 on >= 99% of the training "
            "and held-out validation images and is not significantly worse on the held-out ones; the "
            "default), int8, or none (float32).",
        ),
    ] = "auto",
    precision: Annotated[
        str,
        typer.Option(
            help="Training arithmetic: auto (bfloat16 where the hardware has it natively, else "
            "float32; the default), bfloat16 or float32. The exported graph is float32/int8 either way.",
        ),
    ] = "auto",
    fast: Annotated[bool, typer.Option("--fast", help="Short schedule: one small net, 10 epochs.")] = False,
    bucket: Annotated[
        str | None, typer.Option(help="Bucket of the prepared dataset (default: the configured bucket).")
    ] = None,
    job_name: Annotated[
        str | None, typer.Option("--job-name", help="Name of the job (default: generated).")
    ] = None,
    role_arn: Annotated[
        str | None,
        typer.Option("--role-arn", help="IAM role ARN recorded as the job's RoleArn (as on SageMaker)."),
    ] = None,
    threads: Annotated[int, typer.Option(help="CPU threads for torch.")] = 2,
    device: Annotated[str, typer.Option(help="auto (CUDA when present), cpu or cuda.")] = "auto",
    no_evaluate: Annotated[
        bool, typer.Option("--no-evaluate", help="Skip the test-split evaluation.")
    ] = False,
    calibrate: Annotated[
        bool,
        typer.Option(
            "--calibrate/--no-calibrate",
            help="Temperature scaling fitted on the members' out-of-fold validation predictions.",
        ),
    ] = True,
    student_calibration: Annotated[
        str,
        typer.Option(
            "--student-calibration",
            help="The distilled student's temperature: holdout (one more student trained without a "
            "validation fold predicts it; costs one more training) or members (their out-of-fold T).",
        ),
    ] = "holdout",
    home: HomeOption = None,
) -> None:
    """Train on the prepared dataset, write models/<job>/output/model.tar.gz, record the training job."""
    if ctx.invoked_subcommand is not None:
        return
    from sconeflow.model.jobs import validate_job_name
    from sconeflow.model.recipe import TrainConfig

    if job_name is not None:
        validate_job_name(job_name)

    changes: dict[str, Any] = {
        "image_shape": image_shape,
        "seed": seed,
        "tta": tta,
        "quantize": quantize,
        "precision": precision,
        "val_fraction": val_fraction,
        "num_threads": threads,
        "device": device,
        "bucket": bucket,
        "evaluate_test": not no_evaluate,
        "calibrate": calibrate,
        "student_calibration": student_calibration,
    }
    for key, value in (
        ("epochs", epochs),
        ("learning_rate", learning_rate),
        ("mini_batch_size", mini_batch_size),
        ("num_classes", num_classes),
        ("ensemble_size", ensemble_size),
        ("distill", distill),
        ("distill_targets", distill_targets),
        ("distill_epochs", distill_epochs),
        ("color_jitter", color_jitter),
    ):
        if value is not None:
            changes[key] = value
    for key, text in (("widths", widths), ("student_widths", student_widths)):
        if key == "student_widths" and text == "same":
            changes[key] = None  # the members' widths
        elif text is not None:
            try:
                changes[key] = tuple(int(w) for w in text.split(","))
            except ValueError as exc:
                from sconeflow.model.errors import InvalidHyperparameter

                option = "--" + key.replace("_", "-")
                message = f"{option} {text!r} must be three integers like 64,256,256"
                raise InvalidHyperparameter(message) from exc
    config = TrainConfig.fast(**changes) if fast else TrainConfig(**changes)
    settings = settings_for(home)

    from sconeflow.model.train import total_epochs, train

    with sigterm_as_interrupt(), progress() as bar:
        task = bar.add_task("training", total=total_epochs(config))

        def on_epoch(report: Any) -> None:
            val = f" val {report.val_accuracy:.1%}" if report.val_accuracy is not None else ""
            bar.update(
                task,
                advance=1,
                description=f"{report.stage} epoch {report.epoch}/{report.epochs} loss {report.loss:.3f}{val}"
                f" ({report.seconds:.1f}s)",
            )

        job = train(settings, config, job_name=job_name, role_arn=role_arn, on_epoch=on_epoch)
    _print_job_summary(settings, job)


def _print_job_summary(settings: Any, job: Any) -> None:
    metrics = job.final_metrics
    table = Table(title=f"training job {job.name}", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value", overflow="fold")  # the artifact URI whole (folded), never cut with "…"
    table.add_row("status", job.status)
    table.add_row("model artifact", job.model_artifacts or "-")
    for key in ("val_accuracy", "val_accuracy_flip_tta", "test_accuracy", "test_ece"):
        if key in metrics:
            value = metrics[key]
            table.add_row(key, f"{value:.2%}" if "accuracy" in key else f"{value:.4f}")
    if "train_wall_seconds" in metrics:
        table.add_row(
            "training time",
            f"{metrics['train_wall_seconds']:.1f} s wall, {metrics['train_cpu_seconds']:.1f} s CPU",
        )
    if "latency_ms_batch1" in metrics:
        table.add_row("ONNX latency (batch 1)", f"{metrics['latency_ms_batch1']:.2f} ms")
    if "latency_ms_batch1_float32" in metrics:
        table.add_row("float32 graph latency (batch 1)", f"{metrics['latency_ms_batch1_float32']:.2f} ms")
    console.print(table)
    report_key = f"models/{job.name}/output/evaluation"
    try:
        from sconeflow.model.evaluate import EvaluationReport
        from sconeflow.store import open_store

        store = open_store(settings.resolved_store_uri)
        doc = json.loads(store.get_object(job.bucket, report_key + ".json"))
        _print_report(_report_from_dict(doc, EvaluationReport))
        console.print(f"evaluation PNG: s3://{job.bucket}/{report_key}.png")
    except Exception:  # no test split: nothing more to show
        pass


def _report_from_dict(doc: dict[str, Any], cls: type) -> Any:
    per = doc["per_class"]
    return cls(
        classes=doc["classes"],
        n=doc["n"],
        accuracy=doc["accuracy"],
        precision=[per[c]["precision"] for c in doc["classes"]],
        recall=[per[c]["recall"] for c in doc["classes"]],
        f1=[per[c]["f1"] for c in doc["classes"]],
        support=[per[c]["support"] for c in doc["classes"]],
        confusion=doc["confusion_matrix"]["matrix"],
        ece=doc["ece"],
        nll=doc["nll"],
        reliability=doc["reliability"],
        misclassified=doc["misclassified"],
    )


def _print_report(report: EvaluationReport) -> None:
    console.print(
        f"accuracy [bold]{report.accuracy:.2%}[/] on {report.n} images, "
        f"ECE {report.ece:.4f}, NLL {report.nll:.4f}"
    )
    per_class = Table(title="per class")
    for column in ("class", "precision", "recall", "F1", "support"):
        per_class.add_column(column, justify="right" if column != "class" else "left")
    for i, name in enumerate(report.classes):
        per_class.add_row(
            name,
            f"{report.precision[i]:.3f}",
            f"{report.recall[i]:.3f}",
            f"{report.f1[i]:.3f}",
            str(report.support[i]),
        )
    console.print(per_class)
    confusion = Table(title="confusion matrix (rows: true, columns: predicted)")
    confusion.add_column("")
    for name in report.classes:
        confusion.add_column(name, justify="right")
    for name, row in zip(report.classes, report.confusion, strict=True):
        confusion.add_row(name, *(str(v) for v in row))
    console.print(confusion)


@train_app.command("list")
def list_jobs(
    status: Annotated[
        str | None,
        typer.Option(help="Only jobs with this status: InProgress, Completed, Failed, Stopping, Stopped."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    home: HomeOption = None,
) -> None:
    """List training jobs, newest first."""
    from sconeflow.model.jobs import STATUSES, TrainingJobs

    if status is not None and status not in STATUSES:
        raise typer.BadParameter(f"{status!r} is not one of {', '.join(STATUSES)}", param_hint="'--status'")

    jobs = TrainingJobs(settings_for(home)).list(status=status)
    if as_json:
        console.print_json(_strict_json({"TrainingJobSummaries": [job.summary() for job in jobs]}))
        return
    table = Table(title="training jobs")
    # The name is what describe/evaluate/predict take: never cut it (nor the status) to fit the width.
    table.add_column("name", no_wrap=True)
    table.add_column("status", no_wrap=True)
    for column in ("created", "duration", "val acc", "test acc"):
        table.add_column(column)
    for job in jobs:
        seconds = job.training_seconds
        metrics = job.final_metrics
        table.add_row(
            job.name,
            job.status,
            job.created_at,
            f"{seconds:.0f} s" if seconds is not None else "-",
            _percent(metrics.get("val_accuracy")),
            _percent(metrics.get("test_accuracy")),
        )
    console.print(table)


def _percent(value: Any) -> str:
    """A metric as a percentage; "-" when absent or not a finite number (NaN in older records)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return "-"
    return f"{value:.1%}"


def _strict_json(doc: Any) -> str:
    """``doc`` as strict JSON: a non-finite number left anywhere becomes null (never a bare NaN)."""
    from sconeflow.model.jobs import json_safe

    return json.dumps(json_safe(doc), allow_nan=False)


@train_app.command("describe")
def describe_job(
    name: Annotated[str, typer.Argument(help="Training-job name.")], home: HomeOption = None
) -> None:
    """Print a training job like DescribeTrainingJob (JSON)."""
    from sconeflow.model.jobs import TrainingJobs

    job = TrainingJobs(settings_for(home)).get(name)
    console.print_json(_strict_json(job.describe()))


def evaluate_command(
    model: ModelOption,
    split: Annotated[str, typer.Option(help="Split of the prepared dataset to evaluate on.")] = "test",
    bucket: Annotated[
        str | None, typer.Option(help="Bucket of the prepared dataset (default: the configured bucket).")
    ] = None,
    png: Annotated[
        Path | None,
        typer.Option("--png", help="Where to write the PNG (default: <home>/reports/<model>-<split>.png)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the full report as JSON.")] = False,
    threads: Annotated[int, typer.Option(min=1, help="onnxruntime intra-op threads (>= 1).")] = 2,
    home: HomeOption = None,
) -> None:
    """Evaluate a model on a split: accuracy, per-class P/R/F1, confusion matrix, ECE, and a PNG.

    The PNG holds the confusion matrix, a reliability diagram and the misclassified images.
    """
    from sconeflow.model.artifact import load_classifier, resolve_model
    from sconeflow.model.dataload import load_split_data
    from sconeflow.model.evaluate import evaluate, render_png
    from sconeflow.store import open_store

    settings = settings_for(home)
    resolved = resolve_model(settings, model)
    classifier = load_classifier(resolved, intra_op_threads=threads)
    store = open_store(settings.resolved_store_uri)
    data = load_split_data(store, bucket or settings.bucket, split)
    report = evaluate(classifier, data)
    target = png or settings.home / "reports" / f"{_report_label(resolved)}-{split}.png"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(render_png(report, title=f"{resolved.ref} on {split}"))
    if as_json:
        console.print_json(json.dumps({**report.as_dict(), "png": str(target), "model": resolved.uri}))
        return
    console.print(f"model {resolved.uri}")
    _print_report(report)
    console.print(f"PNG: {target}")


def _report_label(resolved: Any) -> str:
    """The default report name of a model: its training job's name (also for its artifact in the store),
    else the file's name and the first 8 hex digits of its SHA-256, so two different artifacts never
    write (and overwrite) one report."""
    if resolved.job_name:
        return str(resolved.job_name)
    parts = resolved.uri.rstrip("/").split("/")
    if len(parts) >= 4 and parts[-4] == "models" and parts[-2] == "output" and parts[-1] == "model.tar.gz":
        return parts[-3]  # models/<job>/output/model.tar.gz
    stem = parts[-1]
    for suffix in (".tar.gz", ".tgz", ".tar", ".gz"):
        if stem.endswith(suffix) and len(stem) > len(suffix):
            stem = stem[: -len(suffix)]
            break
    return f"{stem or 'model'}-{resolved.sha256[:8]}"


MAX_IMAGE_FILE_BYTES = 256 * 1024 * 1024


def _read_image_file(path: Path) -> bytes:
    from sconeflow.model.errors import InvalidImage

    try:
        with path.open("rb") as handle:  # bounded: a device or a FIFO would never end
            data = handle.read(MAX_IMAGE_FILE_BYTES + 1)
    except OSError as exc:
        raise InvalidImage(f"cannot read {path}: {exc.strerror or exc}") from exc
    if len(data) > MAX_IMAGE_FILE_BYTES:
        raise InvalidImage(f"{path} is larger than {MAX_IMAGE_FILE_BYTES} bytes")
    return data


def predict_command(
    images: Annotated[list[Path], typer.Argument(help="Image files (PNG, JPEG, ...; any size).")],
    model: ModelOption,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON lines: file, class, probabilities.")
    ] = False,
    threads: Annotated[int, typer.Option(min=1, help="onnxruntime intra-op threads (>= 1).")] = 2,
    home: HomeOption = None,
) -> None:
    """Print class probabilities for each image."""
    import numpy as np

    from sconeflow.model.artifact import load_classifier, resolve_model
    from sconeflow.model.errors import InvalidImage
    from sconeflow.model.evaluate import require_finite

    settings = settings_for(home)
    classifier = load_classifier(resolve_model(settings, model), intra_op_threads=threads)
    pixels = []
    for path in images:
        try:  # one file at a time, so that the error names the file that is not an image
            pixels.append(classifier.preprocess([_read_image_file(path)]))
        except InvalidImage as exc:
            message = str(exc)
            raise InvalidImage(message if str(path) in message else f"{path}: {message}") from exc
    probs = require_finite(classifier.predict_proba(np.concatenate(pixels)))
    if as_json:
        for path, row in zip(images, probs, strict=True):
            line = {
                "file": str(path),
                "class": classifier.classes[int(row.argmax())],
                "probabilities": {c: float(p) for c, p in zip(classifier.classes, row, strict=True)},
            }
            console.print(json.dumps(line), highlight=False, soft_wrap=True)
        return
    table = Table(title="predictions")
    table.add_column("image")
    table.add_column("class", style="bold")
    for name in classifier.classes:
        table.add_column(name, justify="right")
    for path, row in zip(images, probs, strict=True):
        table.add_row(str(path), classifier.classes[int(row.argmax())], *(f"{p:.4f}" for p in row))
    console.print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(train_app, name="train")
    app.command("evaluate")(evaluate_command)
    app.command("predict")(predict_command)


__all__ = ["err_console", "register"]
