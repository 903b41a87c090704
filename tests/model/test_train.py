"""Training end to end on a small synthetic prepared dataset: accuracy, the artifact, the job record."""

from __future__ import annotations

import itertools
import re

import numpy as np
import pytest
import torch
from torch import nn

from sconeflow.model.artifact import artifact_key, load_classifier, read_artifact, resolve_model
from sconeflow.model.dataload import load_split_data
from sconeflow.model.errors import InvalidHyperparameter
from sconeflow.model.export import export_onnx
from sconeflow.model.jobs import TrainingJobs
from sconeflow.model.recipe import TrainConfig
from sconeflow.model.train import Teacher, fit, fit_network, to_tensor, train

from .conftest import THREE, write_prepared

JOB_NAME = re.compile(r"^image-classification-\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2}-\d{3}$")


def test_tiny_training_learns_the_synthetic_task_and_records_the_job(settings, prepared):
    job = train(settings, TrainConfig.tiny(seed=1), store=prepared)
    assert JOB_NAME.match(job.name)
    assert job.status == "Completed" and job.failure_reason is None
    assert job.model_artifacts == f"s3://{settings.bucket}/{artifact_key(job.name)}"
    assert job.final_metrics["test_accuracy"] >= 0.95
    assert job.final_metrics["val_accuracy"] >= 0.9
    assert len(job.epoch_metrics) == 5 and job.epoch_metrics[-1]["epoch"] == 5
    assert job.hyperparameters["epochs"] == "5" and job.hyperparameters["mini_batch_size"] == "16"
    assert job.classes == ["bicycle", "motorcycle"]
    described = job.describe()
    assert described["TrainingJobStatus"] == "Completed"
    assert described["ModelArtifacts"]["S3ModelArtifacts"] == job.model_artifacts
    # The evaluation report and its PNG sit beside the artifact.
    png = prepared.get_object(settings.bucket, f"models/{job.name}/output/evaluation.png")
    assert png.startswith(b"\x89PNG")
    # The artifact loads by job name, s3 URI and bytes, and predicts the test split well.
    test = load_split_data(prepared, settings.bucket, "test")
    for ref in (job.name, job.model_artifacts):
        classifier = load_classifier(ref, settings=settings)
        probs = classifier.predict_proba(test.images)
        assert probs.dtype == np.float32 and probs.shape == (len(test), 2)
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
        assert (probs.argmax(axis=1) == test.labels).mean() >= 0.95
    resolved = resolve_model(settings, job.name)
    assert resolved.job_name == job.name and resolved.uri == job.model_artifacts
    _, meta = read_artifact(resolved.data)
    assert meta["classes"] == ["bicycle", "motorcycle"]
    assert meta["training"]["job_name"] == job.name
    assert meta["metrics"]["test_accuracy"] == job.final_metrics["test_accuracy"]
    assert [j.name for j in TrainingJobs(settings).list()] == [job.name]


def test_onnx_and_pytorch_give_the_same_probabilities(settings, prepared):
    split = load_split_data(prepared, settings.bucket, "train", require_classes=2)
    test = load_split_data(prepared, settings.bucket, "test")
    config = TrainConfig.tiny(seed=2, ensemble_size=2, distill=False, tta="flip")
    result = fit(split, config)
    from sconeflow.model.artifact import OnnxClassifier
    from sconeflow.model.train import build_metadata

    classifier = OnnxClassifier(export_onnx(result.model), build_metadata(result, config, "j", "b", {}))
    with torch.no_grad():
        expected = result.model(to_tensor(test.images, result.mean, result.std, torch.device("cpu"))).numpy()
    got = classifier.predict_proba(test.images)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert (got.argmax(1) == expected.argmax(1)).all()


@pytest.mark.parametrize("targets", ["live", "fixed"])
def test_ensemble_distilled_into_one_student(settings, prepared, targets):
    config = TrainConfig.tiny(seed=3, ensemble_size=2, distill=True, epochs=4, distill_targets=targets)
    job = train(settings, config, store=prepared)
    _, meta = read_artifact(resolve_model(settings, job.name).data)
    assert meta["architecture"]["members"] == 1
    assert meta["architecture"]["distilled_from"] == 2
    stages = {m["stage"] for m in job.epoch_metrics}
    assert stages == {"member 1/2", "member 2/2", "student", "calibration student"}
    assert job.final_metrics["temperature_source"] == "student_held_out_fold"
    assert job.final_metrics["test_accuracy"] >= 0.9
    assert "test_accuracy_teachers" in job.final_metrics


def test_a_narrower_student_is_what_the_artifact_holds(settings, prepared):
    wide = (8, 16, 16)
    config = TrainConfig.tiny(seed=3, ensemble_size=2, distill=True, epochs=3, student_widths=(4, 8, 8))
    job = train(settings, config, store=prepared)
    _, meta = read_artifact(resolve_model(settings, job.name).data)
    assert meta["architecture"]["widths"] == [4, 8, 8]
    assert meta["architecture"]["teacher_widths"] == list(wide)
    assert job.hyperparameters["student_widths"] == "4,8,8"
    narrow = TrainConfig.tiny(seed=3, ensemble_size=1, distill=False, epochs=3, widths=(4, 8, 8))
    same_size = train(settings, narrow, store=prepared)
    _, narrow_meta = read_artifact(resolve_model(settings, same_size.name).data)
    assert meta["architecture"]["parameters"] == narrow_meta["architecture"]["parameters"]
    with pytest.raises(InvalidHyperparameter):
        TrainConfig(student_widths=(4, 8))


def test_three_classes(settings, store, tmp_path):
    write_prepared(store, settings.bucket, classes=THREE, n_train=40, n_test=10, tmp_dir=tmp_path)
    job = train(settings, TrainConfig.tiny(seed=4, num_classes=3), store=store)
    classifier = load_classifier(job.name, settings=settings)
    assert classifier.classes == list(THREE)
    test = load_split_data(store, settings.bucket, "test")
    probs = classifier.predict_proba(test.images)
    assert probs.shape == (30, 3)
    assert (probs.argmax(1) == test.labels).mean() >= 0.9


def test_seed_makes_training_reproducible(settings, prepared):
    split = load_split_data(prepared, settings.bucket, "train", require_classes=2)
    config = TrainConfig.tiny(seed=7, epochs=2)
    a, b = fit(split, config), fit(split, config)
    x = to_tensor(split.images[:8], a.mean, a.std, torch.device("cpu"))
    with torch.no_grad():
        np.testing.assert_allclose(a.model(x).numpy(), b.model(x).numpy(), atol=1e-6)


class _ConstantTeacher(nn.Module):
    """Says 80% class 1 whatever it sees; remembers what it was shown."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(x.clone())
        return torch.log(torch.tensor([[0.2, 0.8]])).expand(len(x), 2)


def test_live_distillation_asks_the_teacher_about_each_augmented_batch(settings, prepared):
    split = load_split_data(prepared, settings.bucket, "train", require_classes=2)
    x = to_tensor(split.images, [0.5] * 3, [0.25] * 3, torch.device("cpu"))
    hard = torch.nn.functional.one_hot(torch.from_numpy(split.labels), 2).float()
    spy = _ConstantTeacher()
    config = TrainConfig.tiny(epochs=6, learning_rate=0.05)
    student, _ = fit_network(
        x, hard, config, 2, seed=0, epochs=6, stage="student", teacher=Teacher([spy], weight=1.0)
    )
    # one question per batch, each about a batch of (augmented) training images, never the raw ones
    batches = -(-len(x) // config.mini_batch_size)
    assert len(spy.seen) == 6 * batches
    assert all(len(seen) <= config.mini_batch_size for seen in spy.seen)
    raw = {tuple(img.flatten()[:64].tolist()) for img in x}
    assert any(tuple(seen[0].flatten()[:64].tolist()) not in raw for seen in spy.seen)
    # with weight 1 the labels are ignored: the student learns the teacher's answer
    with torch.no_grad():
        probs = torch.softmax(student(x), dim=1)
    assert abs(float(probs[:, 1].mean()) - 0.8) < 0.1


def test_every_batch_of_an_epoch_has_nearly_the_same_size(settings, prepared):
    """No small remainder batch: with BatchNorm momentum 0.4 a batch of 4 images (900 = 14 x 64 + 4)
    overwrote the running statistics once per epoch."""
    split = load_split_data(prepared, settings.bucket, "train", require_classes=2)
    x = to_tensor(split.images, [0.5] * 3, [0.25] * 3, torch.device("cpu"))
    batch = len(x) // 2 - 1  # slicing by batch would leave a remainder of 2
    spy = _ConstantTeacher()
    config = TrainConfig.tiny(epochs=2, mini_batch_size=batch)
    hard = torch.nn.functional.one_hot(torch.from_numpy(split.labels), 2).float()
    fit_network(x, hard, config, 2, seed=0, epochs=2, stage="s", teacher=Teacher([spy], weight=0.5))
    sizes = [len(seen) for seen in spy.seen]
    assert len(sizes) == 2 * 3 and sum(sizes) == 2 * len(x)
    assert max(sizes) - min(sizes) <= 1 and max(sizes) <= batch


def test_batch_bounds_cover_every_sample_once() -> None:
    from sconeflow.model.train import batch_bounds

    for n, steps in ((900, 15), (1000, 16), (7, 1), (65, 2), (5, 5)):
        bounds = batch_bounds(n, steps)
        assert len(bounds) == steps and bounds[0][0] == 0 and bounds[-1][1] == n
        assert all(a[1] == b[0] for a, b in itertools.pairwise(bounds))
        sizes = [stop - start for start, stop in bounds]
        assert max(sizes) - min(sizes) <= 1


PRECISIONS = [("float32", torch.float32), ("bfloat16", torch.bfloat16)]


@pytest.mark.parametrize(("precision", "computed"), PRECISIONS)
def test_training_precision_is_the_arithmetic_of_the_passes(settings, prepared, precision, computed):
    """bfloat16 runs the training passes under autocast; the weights the optimizer keeps stay float32."""
    split = load_split_data(prepared, settings.bucket, "train", require_classes=2)
    x = to_tensor(split.images, [0.5] * 3, [0.25] * 3, torch.device("cpu"))
    hard = torch.nn.functional.one_hot(torch.from_numpy(split.labels), 2).float()
    seen: list[tuple[bool, torch.dtype]] = []

    def record(module: nn.Module, _inputs: object, output: torch.Tensor) -> None:
        if isinstance(module, nn.Conv2d):
            seen.append((module.training, output.dtype))

    handle = torch.nn.modules.module.register_module_forward_hook(record)
    try:
        config = TrainConfig.tiny()
        model, _ = fit_network(x, hard, config, 2, seed=0, epochs=2, stage="s", precision=precision)
    finally:
        handle.remove()
    assert {dtype for training, dtype in seen if training} == {computed}
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    assert {b.dtype for b in model.buffers() if b.is_floating_point()} == {torch.float32}


def test_bfloat16_training_learns_and_ships_a_float_graph(settings, prepared):
    job = train(settings, TrainConfig.tiny(seed=1, precision="bfloat16"), store=prepared)
    assert job.final_metrics["test_accuracy"] >= 0.95
    assert job.hyperparameters["precision"] == "bfloat16"
    classifier = load_classifier(job.name, settings=settings)
    assert classifier.metadata["training"]["precision"] == "bfloat16"
    assert classifier.metadata["input"]["dtype"] == "float32"
    # Same seed in float32: a different model (the option is not a no-op), equally good.
    split = load_split_data(prepared, settings.bucket, "train", require_classes=2)
    a = fit(split, TrainConfig.tiny(seed=1, epochs=2, precision="float32"))
    b = fit(split, TrainConfig.tiny(seed=1, epochs=2, precision="bfloat16"))
    assert (a.precision, b.precision) == ("float32", "bfloat16")
    x = to_tensor(split.images[:8], a.mean, a.std, torch.device("cpu"))
    with torch.no_grad():
        assert not torch.allclose(a.model(x), b.model(x), atol=1e-6)


def test_precision_auto_follows_the_hardware():
    from sconeflow.model.train import native_bfloat16, resolve_precision

    cpu = torch.device("cpu")
    assert resolve_precision("auto", cpu) == ("bfloat16" if native_bfloat16(cpu) else "float32")
    assert resolve_precision("float32", cpu) == "float32"
    assert resolve_precision("bfloat16", cpu) == "bfloat16"
    assert TrainConfig().precision == "auto"
    with pytest.raises(InvalidHyperparameter, match="precision"):
        TrainConfig(precision="float16")


def test_color_jitter_shifts_brightness_and_scales_contrast_per_image():
    from sconeflow.model.train import augment, augment_with_color, color_jitter

    x = torch.randn(64, 3, 8, 8).contiguous(memory_format=torch.channels_last)
    out = color_jitter(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and out.is_contiguous(memory_format=torch.channels_last)
    # Saturation and contrast keep each image's mean; brightness adds one shift per image, within +-0.6.
    shift = out.mean((1, 2, 3)) - x.mean((1, 2, 3))
    assert shift.abs().max() <= 0.6 + 1e-5 and shift.std() > 0.1
    # On gray images saturation does nothing: the spread is scaled by the contrast factor, 0.7-1.3.
    gray = x[:, :1].expand(-1, 3, -1, -1).contiguous()
    ratio = color_jitter(gray, torch.Generator().manual_seed(1)).std((1, 2, 3)) / gray.std((1, 2, 3))
    assert ratio.min() >= 0.7 - 1e-4 and ratio.max() <= 1.3 + 1e-4 and ratio.std() > 0.05
    # Same generator state, same images; the crop-and-flip draws come first, then the jitter.
    a = augment_with_color(x, torch.Generator().manual_seed(2))
    g = torch.Generator().manual_seed(2)
    torch.testing.assert_close(a, color_jitter(augment(x, g), g))


def test_color_jitter_option_changes_the_model_and_is_recorded(settings, prepared):
    split = load_split_data(prepared, settings.bucket, "train", require_classes=2)
    plain = fit(split, TrainConfig.tiny(seed=1, epochs=2))
    jittered = fit(split, TrainConfig.tiny(seed=1, epochs=2, color_jitter=True))
    x = to_tensor(split.images[:8], plain.mean, plain.std, torch.device("cpu"))
    with torch.no_grad():
        assert not torch.allclose(plain.model(x), jittered.model(x), atol=1e-6)
    job = train(settings, TrainConfig.tiny(seed=1, color_jitter=True), store=prepared)
    assert job.final_metrics["test_accuracy"] >= 0.95  # still learns the synthetic task
    assert job.hyperparameters["color_jitter"] == "true"
    meta = load_classifier(job.name, settings=settings).metadata
    assert meta["training"]["hyperparameters"]["color_jitter"] == "true"


def test_mixup_blends_images_and_targets_with_one_weight_per_batch():
    from sconeflow.model.train import mixup

    x = torch.arange(8.0).view(8, 1, 1, 1).expand(8, 3, 2, 2).contiguous()
    targets = torch.nn.functional.one_hot(torch.arange(8) % 2, 2).float()
    mixed_x, mixed_t = mixup(x, targets, 0.4, torch.Generator().manual_seed(0))
    torch.testing.assert_close(mixed_t.sum(1), torch.ones(8))  # still distributions
    # Each image is lam * itself + (1 - lam) * a partner from a permutation of the batch, so the batch's
    # totals (pixels and labels) are kept while the images change.
    assert not torch.equal(mixed_x, x) and (mixed_t.max(1).values < 1).any()
    torch.testing.assert_close(mixed_x.sum(), x.sum())
    torch.testing.assert_close(mixed_t.sum(0), targets.sum(0))
    again = mixup(x, targets, 0.4, torch.Generator().manual_seed(0))
    torch.testing.assert_close(again[0], mixed_x)  # deterministic for a generator state


@pytest.mark.parametrize("option", [{"mixup_alpha": 0.4}, {"sam_rho": 0.05}], ids=["mixup", "sam"])
def test_a_fit_network_option_changes_the_fitted_net_deterministically(settings, prepared, option):
    split = load_split_data(prepared, settings.bucket, "train", require_classes=2)
    config = TrainConfig.tiny(seed=1, epochs=2)
    x = to_tensor(split.images, [0.5] * 3, [0.25] * 3, torch.device("cpu"))
    targets = torch.nn.functional.one_hot(torch.from_numpy(split.labels), 2).float()
    plain, _ = fit_network(x, targets, config, 2, 7, epochs=2, stage="s")
    changed, _ = fit_network(x, targets, config, 2, 7, epochs=2, stage="s", **option)
    again, _ = fit_network(x, targets, config, 2, 7, epochs=2, stage="s", **option)
    with torch.no_grad():
        assert not torch.allclose(plain(x[:8]), changed(x[:8]), atol=1e-6)
        torch.testing.assert_close(changed(x[:8]), again(x[:8]))


def _tiny_net_and_batch() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    from sconeflow.model.net import AirbenchNet

    torch.manual_seed(3)
    x = torch.randn(16, 3, 32, 32)
    net = AirbenchNet(2, (8, 16, 16))
    net.init_whitening(x)
    targets = torch.nn.functional.one_hot(torch.arange(16) % 2, 2).float()
    return net.train(), x, targets


def test_sharpness_aware_gradient_is_taken_at_the_moved_weights_and_restores_them():
    from sconeflow.model.train import _sharpness_aware_gradient, soft_cross_entropy

    net, x, targets = _tiny_net_and_batch()
    params = [p for p in net.parameters() if p.requires_grad]
    soft_cross_entropy(net(x), targets).backward()
    plain = [p.grad.clone() for p in params]
    weights = [p.detach().clone() for p in params]
    stats = {k: v.clone() for k, v in net.state_dict().items() if "running" in k}
    _sharpness_aware_gradient(net, params, x, targets, 0.5, "float32")
    for p, w in zip(params, weights, strict=True):
        torch.testing.assert_close(p.detach(), w, rtol=0, atol=1e-6)  # the weights are back where they were
    assert any(not torch.allclose(p.grad, g) for p, g in zip(params, plain, strict=True))
    for name, value in stats.items():  # the second pass leaves BatchNorm's running statistics alone
        torch.testing.assert_close(net.state_dict()[name], value, rtol=0, atol=0)

    # The new gradient is the plain gradient of a copy moved rho * g / ||g|| along the old one.
    moved, _, _ = _tiny_net_and_batch()
    moved.load_state_dict(net.state_dict())
    moved_params = [p for p in moved.parameters() if p.requires_grad]
    norm = torch.linalg.vector_norm(torch.stack([g.norm() for g in plain]))
    with torch.no_grad():
        for p, g in zip(moved_params, plain, strict=True):
            p.add_(g * 0.5 / norm)
    soft_cross_entropy(moved(x), targets).backward()
    for p, q in zip(params, moved_params, strict=True):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-4, atol=1e-6)


def test_fit_network_trains_the_net_its_factory_builds():
    """The benches screen architectures through ``net_factory``: the net it builds is the one trained."""
    from sconeflow.model.net import AirbenchNet

    built: list[tuple[int, tuple[int, int, int]]] = []

    class Marked(AirbenchNet):
        pass

    def factory(num_classes: int, widths: tuple[int, int, int]) -> AirbenchNet:
        built.append((num_classes, widths))
        return Marked(num_classes, widths)

    _, x, targets = _tiny_net_and_batch()
    config = TrainConfig.tiny()
    net, _ = fit_network(x, targets, config, 2, 7, epochs=1, stage="s", net_factory=factory)
    assert isinstance(net, Marked) and built == [(2, config.widths)]
    default, _ = fit_network(x, targets, config, 2, 7, epochs=1, stage="s")
    assert type(default) is AirbenchNet
    with torch.no_grad():  # same seed, same class of net: the factory changes nothing else
        torch.testing.assert_close(net(x), default(x))


def test_a_negative_sam_rho_is_an_invalid_hyperparameter():
    _, x, targets = _tiny_net_and_batch()
    with pytest.raises(InvalidHyperparameter, match="sam_rho"):
        fit_network(x, targets, TrainConfig.tiny(), 2, 7, epochs=1, stage="s", sam_rho=-0.1)


def test_fit_member_trains_the_member_a_job_would(settings, prepared):
    """The benches add members to a cached ensemble through fit_member: it must be the job's member m."""
    from sconeflow.model.train import (
        fit_member,
        normalization_stats,
        smoothed_labels,
        stratified_folds,
        validation_fold_count,
    )

    split = load_split_data(prepared, settings.bucket, "train", require_classes=2)
    config = TrainConfig.tiny(seed=4, epochs=2, ensemble_size=2, val_fraction=0.25, quantize="none")
    result = fit(split, config)
    mean, std = normalization_stats(split.images)
    x = to_tensor(split.images, mean, std, torch.device("cpu"))
    y = torch.from_numpy(split.labels)
    n_folds = validation_fold_count(config)
    assert n_folds == 4
    folds = stratified_folds(split.labels, n_folds, config.seed)
    smoothed = smoothed_labels(y, 2, config.label_smoothing)
    net, reports, train_idx, val_idx = fit_member(
        x, y, smoothed, folds, 1, config, n_folds=n_folds, precision=result.precision
    )
    assert sorted(val_idx.tolist()) == np.flatnonzero(folds == 1).tolist()
    assert len(train_idx) + len(val_idx) == len(y) and reports[-1].stage == "member 2/2"
    with torch.no_grad():
        torch.testing.assert_close(net(x[:8]), result.teachers[1](x[:8]), rtol=0, atol=0)
        assert not torch.allclose(net(x[:8]), result.teachers[0](x[:8]))
