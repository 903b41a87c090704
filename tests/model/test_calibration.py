"""Temperature scaling: the fit, the graph (arg-max kept, ONNX = softmax(logits / T)), the job's record."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sconeflow.model.artifact import OnnxClassifier, read_artifact, resolve_model
from sconeflow.model.calibration import T_MAX, T_MIN, calibrate, fit_temperature, nll, softmax
from sconeflow.model.dataload import load_split_data
from sconeflow.model.export import export_onnx
from sconeflow.model.net import AirbenchNet, ProbabilityModel
from sconeflow.model.recipe import TrainConfig
from sconeflow.model.train import FitResult, build_metadata, fit, to_tensor, train


def synthetic_logits(scale: float, n: int = 3000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Logits whose calibrated scale is known: the true log-odds are 3 x (z_y - z_other) / 1."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    z = rng.normal(0, 1, (n, 3))
    z[np.arange(n), labels] += 2.0
    return z * scale, labels


@pytest.mark.parametrize("scale", [0.6, 6.0])
def test_fitted_temperature_lowers_nll_and_ece(scale):
    logits, labels = synthetic_logits(scale)
    cal = calibrate(logits, labels, "synthetic")
    assert T_MIN < cal.temperature < T_MAX
    # Under-confident logits need sharpening (T < 1), over-confident ones softening (T > 1).
    assert (cal.temperature < 1) == (scale < 1)
    assert cal.nll_after < cal.nll_before - 0.02
    assert cal.ece_after < cal.ece_before / 2 and cal.ece_after < 0.03
    assert (cal.confidence_after > cal.confidence_before) == (scale < 1)
    # It is the minimum: nudging T either way does not lower NLL.
    for factor in (0.9, 1.1):
        assert nll(logits, labels, cal.temperature * factor) >= cal.nll_after
    assert cal.metrics()["temperature"] == pytest.approx(cal.temperature, rel=1e-5)


def test_temperature_never_changes_the_argmax():
    logits, _ = synthetic_logits(1.0)
    for t in (T_MIN, 0.37, 1.0, 4.2, T_MAX):
        assert (softmax(logits, t).argmax(1) == logits.argmax(1)).all()
    torch.manual_seed(0)
    nets = [AirbenchNet(3, (8, 8, 8)).eval() for _ in range(3)]
    x = torch.randn(24, 3, 32, 32)
    for members, flip in (([nets[0]], False), ([nets[0]], True), (nets, False), (nets, True)):
        with torch.no_grad():
            plain = ProbabilityModel(members, flip_tta=flip)(x)
            for t in (0.2, 0.5, 3.0):
                scaled = ProbabilityModel(members, flip_tta=flip, temperature=t)(x)
                assert torch.equal(scaled.argmax(1), plain.argmax(1))
                torch.testing.assert_close(scaled.sum(1), torch.ones(24))
                # Sharper below 1, flatter above 1.
                assert (scaled.max(1).values >= plain.max(1).values - 1e-6).all() == (t < 1)


def test_degenerate_inputs():
    assert fit_temperature(np.zeros((0, 2)), np.zeros(0, dtype=np.int64)) == 1.0
    perfect = np.array([[5.0, 0.0], [0.0, 5.0]] * 10)
    assert fit_temperature(perfect, np.array([0, 1] * 10)) == pytest.approx(T_MIN, rel=1e-3)
    with pytest.raises(ValueError):
        ProbabilityModel([AirbenchNet(2, (8, 8, 8))], temperature=0.0)


def test_onnx_probabilities_are_softmax_of_logits_over_t():
    torch.manual_seed(1)
    net = AirbenchNet(2, (8, 8, 8)).eval()
    model = ProbabilityModel([net], temperature=0.37).eval()
    result = FitResult(model, [0.5, 0.5, 0.5], [0.25, 0.25, 0.25], ["bicycle", "motorcycle"])
    classifier = OnnxClassifier(export_onnx(model), build_metadata(result, TrainConfig.tiny(), "j", "b", {}))
    images = np.random.default_rng(0).integers(0, 256, (20, 32, 32, 3), dtype=np.uint8)
    x = to_tensor(images, result.mean, result.std, torch.device("cpu"))
    with torch.no_grad():
        expected = torch.softmax(net(x) / 0.37, dim=1).numpy()
    np.testing.assert_allclose(classifier.predict_proba(images), expected, atol=1e-5)


def test_training_calibrates_by_default_and_records_it(settings, prepared):
    job = train(settings, TrainConfig.tiny(seed=5, label_smoothing=0.4), store=prepared)
    m = job.final_metrics
    t = m["temperature"]
    assert T_MIN <= t <= T_MAX and m["temperature_source"] == "members_out_of_fold"
    assert m["val_nll"] <= m["val_nll_uncalibrated"]
    assert job.hyperparameters["calibrate"] == "true"
    assert {"test_ece_uncalibrated", "test_mean_confidence", "test_confidence_at_least_0_93"} <= m.keys()
    _, meta = read_artifact(resolve_model(settings, job.name).data)
    assert meta["calibration"]["temperature"] == t == meta["metrics"]["temperature"]
    assert meta["architecture"]["temperature"] == pytest.approx(t, rel=1e-5)


def test_fit_temperature_keeps_accuracy_and_onnx_matches(settings, prepared):
    split = load_split_data(prepared, settings.bucket, "train", require_classes=2)
    test = load_split_data(prepared, settings.bucket, "test")
    config = TrainConfig.tiny(seed=6, label_smoothing=0.4)
    result = fit(split, config)
    model = result.model
    assert result.calibration is not None and model.temperature == result.calibration.temperature
    x = to_tensor(test.images, result.mean, result.std, torch.device("cpu"))
    with torch.no_grad():
        logits = model.members[0](x)
        calibrated = model(x)
        model.temperature = 1.0
        raw = model(x)
        model.temperature = result.calibration.temperature
    assert torch.equal(calibrated.argmax(1), raw.argmax(1))
    expected = torch.softmax(logits / model.temperature, dim=1).numpy()
    classifier = OnnxClassifier(export_onnx(model), build_metadata(result, config, "j", "b", {}))
    np.testing.assert_allclose(classifier.predict_proba(test.images), expected, atol=1e-5)


def test_no_calibrate_keeps_temperature_one(settings, prepared):
    split = load_split_data(prepared, settings.bucket, "train", require_classes=2)
    result = fit(split, TrainConfig.tiny(seed=6, epochs=2, calibrate=False))
    assert result.calibration is None and result.model.temperature == 1.0
    meta = build_metadata(result, TrainConfig.tiny(calibrate=False), "j", "b", {})
    assert meta["calibration"] == {"method": "none", "temperature": 1.0}


def test_student_calibration_holdout_fits_t_on_a_held_out_student(settings, prepared):
    config = TrainConfig.tiny(seed=8, ensemble_size=2, distill=True, epochs=3, label_smoothing=0.4)
    assert config.student_calibration == "holdout"  # the default
    job = train(settings, config, store=prepared)
    m = job.final_metrics
    assert m["temperature_source"] == "student_held_out_fold"
    assert m["val_nll"] <= m["val_nll_uncalibrated"]
    assert "val_accuracy_calibration_student" in m
    stages = [e["stage"] for e in job.epoch_metrics]
    assert stages.count("calibration student") == 3 and stages.count("student") == 3
    _, meta = read_artifact(resolve_model(settings, job.name).data)
    assert meta["architecture"]["members"] == 1
    assert meta["calibration"]["fitted_on"] == "student_held_out_fold"


def test_student_calibration_members_uses_the_members_t(settings, prepared):
    split = load_split_data(prepared, settings.bucket, "train", require_classes=2)
    config = TrainConfig.tiny(seed=8, ensemble_size=2, distill=True, epochs=2, student_calibration="members")
    result = fit(split, config)
    assert result.calibration is not None
    assert result.calibration.source == "members_out_of_fold_for_student"
    assert "calibration student" not in {r.stage for r in result.epochs}


def test_student_calibration_choice_is_checked():
    from sconeflow.model.errors import InvalidHyperparameter

    with pytest.raises(InvalidHyperparameter):
        TrainConfig(student_calibration="test")
