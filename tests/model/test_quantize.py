"""int8 quantization of the exported graph: the graph, the checks, the ``auto`` rule, the artifact."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import onnx
import pytest
import torch

from sconeflow.model.artifact import OnnxClassifier, load_classifier, read_artifact, resolve_model
from sconeflow.model.dataload import load_split_data
from sconeflow.model.errors import QuantizationFailed
from sconeflow.model.export import export_onnx
from sconeflow.model.net import ProbabilityModel
from sconeflow.model.quantize import (
    QuantizationCheck,
    compare,
    default_float_nodes,
    passes,
    quantize_int8,
    run_graph,
    worse_p_value,
)
from sconeflow.model.recipe import TrainConfig
from sconeflow.model.train import build_metadata, choose_graph, fit, to_tensor, train


@pytest.fixture
def fitted(settings, prepared):
    split = load_split_data(prepared, settings.bucket, "train", require_classes=2)
    test = load_split_data(prepared, settings.bucket, "test")
    config = TrainConfig.tiny(seed=4, tta="flip")
    return config, fit(split, config), test


def op_types(graph: bytes) -> list[str]:
    return [node.op_type for node in onnx.load_from_string(graph).graph.node]


def test_int8_graph_quantizes_the_convolutions_and_keeps_float_probabilities(fitted):
    config, result, test = fitted
    float_graph = export_onnx(result.model)
    int8_graph = quantize_int8(float_graph, result.calibration_images)
    ops = op_types(int8_graph)
    assert "DequantizeLinear" in ops and "QuantizeLinear" in ops
    # Softmax is not quantized: no QuantizeLinear reads its output.
    nodes = onnx.load_from_string(int8_graph).graph.node
    softmax_outputs = {o for n in nodes if n.op_type == "Softmax" for o in n.output}
    assert softmax_outputs
    assert not any(n.op_type == "QuantizeLinear" and set(n.input) & softmax_outputs for n in nodes)
    assert len(int8_graph) < len(float_graph)
    # Standard ONNX only (no ONNX Runtime contrib ops), still opset 17: any ONNX runtime can load it.
    model = onnx.load_from_string(int8_graph)
    onnx.checker.check_model(model)
    assert {n.domain for n in nodes} <= {"", "ai.onnx"}
    assert [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] == [17]
    meta = build_metadata(result, config, "j", "b", {})
    float_probs = OnnxClassifier(float_graph, meta).predict_proba(test.images)
    int8_probs = OnnxClassifier(int8_graph, meta).predict_proba(test.images)
    np.testing.assert_allclose(int8_probs.sum(1), 1.0, atol=1e-5)
    assert not np.allclose(np.round(int8_probs * 255), int8_probs * 255, atol=1e-4)  # not rounded to 1/255
    assert np.abs(int8_probs - float_probs).max() < 0.1
    assert (int8_probs.argmax(1) == float_probs.argmax(1)).mean() >= 0.95


def weight_sources(graph: bytes) -> dict[str, str]:
    """Each Conv/MatMul node's name -> the op type producing its weight ("" for a plain initializer)."""
    nodes = onnx.load_from_string(graph).graph.node
    producer = {o: n.op_type for n in nodes for o in n.output}
    return {n.name: producer.get(n.input[1], "") for n in nodes if n.op_type in ("Conv", "MatMul")}


def test_the_whitening_conv_stays_float_and_keep_float_names_the_float_nodes(fitted):
    _, result, _ = fitted
    float_graph = export_onnx(result.model)
    whiten, first = "/members.0/whiten/Conv", "/members.0/block1/conv1/Conv"
    assert default_float_nodes(float_graph) == (whiten,)
    default = weight_sources(quantize_int8(float_graph, result.calibration_images))
    everything = weight_sources(quantize_int8(float_graph, result.calibration_images, keep_float=()))
    chosen = weight_sources(quantize_int8(float_graph, result.calibration_images, keep_float=(first,)))
    assert default[whiten] == "" and everything[whiten] == "DequantizeLinear"
    assert chosen[whiten] == "DequantizeLinear" and chosen[first] == ""
    others = {k for k in default if k not in (whiten, first)}
    assert others and all(g[k] == "DequantizeLinear" for g in (default, everything, chosen) for k in others)


def test_every_nets_whitening_conv_stays_float_in_an_ensemble_graph(fitted):
    _, result, _ = fitted
    net = result.model.members[0]
    other = copy.deepcopy(net)
    other.init_whitening(torch.randn(16, 3, 32, 32))  # distinct weights: no node is merged away
    ensemble = export_onnx(ProbabilityModel([net, other], flip_tta=True))
    names = default_float_nodes(ensemble)
    assert names == ("/members.0/whiten/Conv", "/members.1/whiten/Conv")
    sources = weight_sources(quantize_int8(ensemble, result.calibration_images))
    assert [sources[n] for n in names] == ["", ""]


@pytest.mark.parametrize("method", ["percentile", "entropy"])
def test_other_calibration_methods_give_a_close_int8_graph(fitted, method):
    _, result, test = fitted
    float_graph = export_onnx(result.model)
    x = to_tensor(test.images, result.mean, result.std, torch.device("cpu")).contiguous().numpy()
    int8_graph = quantize_int8(float_graph, result.calibration_images, calibrate_method=method)
    if method == "percentile":  # clips the widest activations: other ranges than min/max
        assert int8_graph != quantize_int8(float_graph, result.calibration_images)
    float_probs, int8_probs = run_graph(float_graph, x), run_graph(int8_graph, x)
    assert np.abs(int8_probs - float_probs).max() < 0.1


def test_unknown_calibration_method_is_a_named_error(fitted):
    _, result, _ = fitted
    with pytest.raises(QuantizationFailed, match="calibration method 'median'"):
        quantize_int8(export_onnx(result.model), result.calibration_images, calibrate_method="median")


def test_compare_counts_agreement_and_errors():
    a = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]], dtype=np.float32)
    b = np.array([[0.8, 0.2], [0.3, 0.7], [0.4, 0.6], [0.3, 0.7]], dtype=np.float32)
    check = compare(a, b, np.array([0, 1, 0, 0]), on="x")
    assert check.images == 4 and check.agreement == 0.75 and check.on == "x"
    assert check.float_errors == 1 and check.int8_errors == 2
    assert (check.int8_only_errors, check.float_only_errors) == (1, 0)
    assert check.max_abs_diff == pytest.approx(0.2, abs=1e-6) and check.mean_abs_diff == pytest.approx(
        0.1, abs=1e-6
    )
    assert compare(a, b).float_errors is None


@pytest.mark.parametrize(
    ("agreement", "errors", "ok"),
    [
        (1.0, (3, 3, 0, 0), True),
        (0.995, (3, 2, 0, 1), True),
        (0.98, (3, 3, 1, 1), False),  # too little agreement, whatever the errors
        (0.999, (3, 4, 1, 0), True),  # one more error: p = 0.5
        (0.994, (1, 7, 6, 0), False),  # six more, none fewer: p = 1/64
        (0.993, (2, 7, 6, 1), True),  # six more, one fewer: p = 8/128 = 0.0625
        (1.0, (None, None, None, None), True),
    ],
)
def test_auto_rule(agreement, errors, ok):
    check = QuantizationCheck(1000, agreement, 0.1, 0.01, *errors)
    assert passes([QuantizationCheck(1000, 1.0, 0.0, 0.0), check]) is ok


def test_sign_test_p_value():
    from sconeflow.model.quantize import worse_p_value

    def held(int8_only, float_only):
        return QuantizationCheck(100, 0.95, 0.1, 0.01, 10, 10 + int8_only - float_only, int8_only, float_only)

    assert worse_p_value([QuantizationCheck(100, 1.0, 0.0, 0.0)]) is None  # no labelled check
    assert worse_p_value([held(0, 0)]) == 1.0
    assert worse_p_value([held(5, 0)]) == pytest.approx(1 / 32)
    assert worse_p_value([held(5, 1)]) == pytest.approx(7 / 64)
    assert worse_p_value([held(3, 0), held(2, 1)]) == pytest.approx(7 / 64)  # pooled over the checks
    assert worse_p_value([held(0, 4)]) == 1.0
    # Checks that only know their totals (recorded before session 8): the smallest split they allow.
    totals = QuantizationCheck(100, 0.95, 0.1, 0.01, 10, 15)
    assert worse_p_value([totals]) == pytest.approx(1 / 32)


@pytest.mark.parametrize(
    ("discordant", "ok"),
    [
        ([(1, 0), (0, 0)], True),  # one more on the twin
        ([(3, 0), (2, 0)], False),  # five more in all, none fewer: p = 1/32
        ([(3, 0), (2, 0), (0, 1)], True),  # five more, one fewer: p = 7/64
        ([(2, 0), (0, 0), (0, 0)], True),
    ],
)
def test_auto_rule_counts_errors_over_all_held_out_checks(discordant, ok):
    checks = [QuantizationCheck(1000, 1.0, 0.0, 0.0, on="training images")]
    checks += [
        QuantizationCheck(200, 0.99, 0.1, 0.01, 10, 10 + b - c, b, c, on=f"fold {i}")
        for i, (b, c) in enumerate(discordant)
    ]
    assert passes(checks) is ok
    # Agreement binds on the held-out images together, whatever the error counts.
    low = dataclasses.replace(checks[-1], agreement=0.98)
    assert passes([*checks[:-1], low]) is False
    # On the training images on their own.
    assert passes([dataclasses.replace(checks[0], agreement=0.98), *checks[1:]]) is False


def test_one_disagreement_in_a_small_check_is_judged_with_the_other_held_out_images():
    # 80-image folds (800 training images): one disagreement is 98.75%, under 99% on its own.
    train_check = QuantizationCheck(800, 1.0, 0.0, 0.0, on="training images")
    small = QuantizationCheck(80, 79 / 80, 0.1, 0.01, 8, 8, on="twin")
    others = [QuantizationCheck(80, 1.0, 0.1, 0.01, 8, 8, on=f"member {i}") for i in range(5)]
    assert passes([train_check, small, *others]) is True  # 479 of 480 agree
    assert passes([train_check, small]) is False  # alone it is 98.75%
    three_small = [small, dataclasses.replace(small, on="m"), dataclasses.replace(small, on="n")]
    assert passes([train_check, *three_small]) is False  # 237 of 240 agree: 98.75%
    assert passes([train_check, *three_small, *others]) is True  # 477 of 480: 99.38%


def test_auto_ships_float32_when_the_int8_graph_disagrees(fitted):
    config, result, _ = fitted
    # Calibrating on blank images leaves the activation ranges near zero: the int8 graph clips everything.
    bad = dataclasses.replace(result, calibration_images=np.zeros_like(result.calibration_images[:8]))
    float_graph = export_onnx(result.model)
    shipped, doc = choose_graph(float_graph, bad, config.with_(quantize="auto"))
    assert shipped == float_graph and doc["method"] == "none" and doc["requested"] == "auto"
    assert not passes([QuantizationCheck(**{k: v for k, v in c.items()}) for c in doc["checks"]])
    forced, forced_doc = choose_graph(float_graph, bad, config.with_(quantize="int8"))
    assert forced != float_graph and forced_doc["method"] == "int8"


def test_the_job_ships_int8_and_records_the_checks(settings, prepared):
    job = train(settings, TrainConfig.tiny(seed=5, quantize="int8"), store=prepared)
    data = resolve_model(settings, job.name).data
    graph, meta = read_artifact(data)
    assert "DequantizeLinear" in op_types(graph)
    quant = meta["quantization"]
    assert quant["method"] == "int8" and quant["requested"] == "int8"
    assert quant["float_nodes"] == ["/members.0/whiten/Conv"]  # and the shipped graph keeps it float:
    assert weight_sources(graph)["/members.0/whiten/Conv"] == ""
    assert quant["calibration_images"] == 2 * 40 - 8  # the training images the model trained on (not fold 0)
    sources = [c["on"] for c in quant["checks"]]
    assert sources == ["training images (the exported model)", "the model on validation fold 0"]
    held = quant["checks"][1]
    assert held["images"] == 8 and held["float_errors"] is not None and held["int8_errors"] is not None
    assert meta["versions"]["onnxruntime"]
    assert {"test_accuracy_float32", "latency_ms_batch1_float32"} <= set(job.final_metrics)
    classifier = load_classifier(job.name, settings=settings)
    test = load_split_data(prepared, settings.bucket, "test")
    assert (classifier.predict_proba(test.images).argmax(1) == test.labels).mean() >= 0.95


def test_quantize_none_ships_the_float_graph(settings, prepared):
    job = train(settings, TrainConfig.tiny(seed=5, quantize="none"), store=prepared)
    graph, meta = read_artifact(resolve_model(settings, job.name).data)
    assert "DequantizeLinear" not in op_types(graph) and meta["quantization"] == {"method": "none"}
    assert "test_accuracy_float32" not in job.final_metrics


def test_distilled_job_checks_the_calibration_student(settings, prepared):
    config = TrainConfig.tiny(seed=6, ensemble_size=2, distill=True, epochs=3, quantize="auto")
    job = train(settings, config, store=prepared)
    _, meta = read_artifact(resolve_model(settings, job.name).data)
    checks = meta["quantization"]["checks"]
    assert [c["on"] for c in checks] == [
        "training images (the exported model)",
        "calibration student on validation fold 0",
        "member 1 on its validation fold 0",
        "member 2 on its validation fold 1",
    ]
    held = checks[1:]
    assert all(c["images"] == 8 and c["float_errors"] is not None for c in held)
    # Each checked model's int8 ranges come from its own training images, never from the fold it is
    # checked on.
    assert meta["quantization"]["heldout_check_calibration_images"] == 80 - 8
    assert [c["calibration_images"] for c in held] == [80 - 8] * 3
    assert checks[0]["calibration_images"] is None
    assert all(c["int8_only_errors"] is not None and c["float_only_errors"] is not None for c in held)
    recorded = [QuantizationCheck(**c) for c in checks]
    assert (meta["quantization"]["method"] == "int8") is passes(recorded)
    assert meta["quantization"]["heldout_worse_p_value"] == pytest.approx(worse_p_value(recorded))
    assert 0 <= meta["quantization"]["heldout_agreement"] <= 1


def test_bad_graph_or_no_calibration_is_a_named_error(fitted):
    _, result, _ = fitted
    with pytest.raises(QuantizationFailed):
        quantize_int8(b"not an onnx graph", result.calibration_images)
    with pytest.raises(QuantizationFailed):
        quantize_int8(export_onnx(result.model), result.calibration_images[:0])


def test_run_graph_matches_the_classifier(fitted):
    config, result, test = fitted
    graph = export_onnx(result.model)
    x = to_tensor(test.images, result.mean, result.std, __import__("torch").device("cpu")).numpy()
    meta = build_metadata(result, config, "j", "b", {})
    np.testing.assert_allclose(
        run_graph(graph, x), OnnxClassifier(graph, meta).predict_proba(test.images), atol=1e-6
    )


def test_calibration_sample_is_capped_deterministic_and_contiguous():
    import torch

    from sconeflow.model.train import MAX_CALIBRATION_IMAGES, _calibration_sample

    x = torch.arange(1500 * 3 * 2 * 2, dtype=torch.float32).reshape(1500, 3, 2, 2)
    x = x.contiguous(memory_format=torch.channels_last)
    a, b = _calibration_sample(x, 7), _calibration_sample(x, 7)
    assert a.shape == (MAX_CALIBRATION_IMAGES, 3, 2, 2) and a.flags.c_contiguous and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, _calibration_sample(x, 8))
    assert len(np.unique(a[:, 0, 0, 0])) == MAX_CALIBRATION_IMAGES  # distinct images, no repeats
    small = _calibration_sample(x[:80], 7)
    np.testing.assert_array_equal(small, x[:80].numpy())


def test_auto_falls_back_to_float32_when_quantization_fails_and_int8_fails_the_job(fitted):
    config, result, _ = fitted
    not_a_graph = b"not an onnx graph"
    shipped, doc = choose_graph(not_a_graph, result, config.with_(quantize="auto"))
    assert shipped == not_a_graph and doc["method"] == "none" and "could not quantize" in doc["error"]
    with pytest.raises(QuantizationFailed):
        choose_graph(not_a_graph, result, config.with_(quantize="int8"))


def test_member_checks_use_each_members_own_held_out_fold(settings, prepared):
    import torch

    from sconeflow.model.train import stratified_folds

    split = load_split_data(prepared, settings.bucket, "train", require_classes=2)
    config = TrainConfig.tiny(seed=3, ensemble_size=2, epochs=2)
    result = fit(split, config)
    x = to_tensor(split.images, result.mean, result.std, torch.device("cpu")).numpy()
    folds = stratified_folds(split.labels, 10, config.seed)
    assert [h.source for h in result.heldout] == [
        "member 1 on its validation fold 0",
        "member 2 on its validation fold 1",
    ]
    for m, held in enumerate(result.heldout):
        np.testing.assert_array_equal(held.images, x[folds == m])
        np.testing.assert_array_equal(held.labels, split.labels[folds == m])
        np.testing.assert_array_equal(held.calibration, x[folds != m])  # ranges never from the checked fold
        member = result.teachers[m]
        expected = torch.softmax(member(torch.from_numpy(held.images)), 1).detach().numpy()
        if result.flip_tta:
            flipped = torch.softmax(member(torch.from_numpy(held.images).flip(3)), 1).detach().numpy()
            expected = (expected + flipped) / 2
        got = held.model(torch.from_numpy(held.images)).detach().numpy()
        assert (got.argmax(1) == expected.argmax(1)).all()  # the member itself (up to its temperature)


def test_failed_check_is_described_in_one_line():
    from sconeflow.model.quantize import describe_checks

    checks = [
        QuantizationCheck(900, 0.995, 0.1, 0.01, on="training images"),
        QuantizationCheck(100, 0.99, 0.1, 0.01, 13, 14, on="twin"),
        QuantizationCheck(100, 0.98, 0.1, 0.01, 10, 10, on="member 1"),
    ]
    assert describe_checks(checks) == (
        "agreement 99.50% on training images, agreement 98.50% on the held-out images (needs 99%); "
        "24 int8 vs 23 float32 errors on 200 held-out images (1 only int8 gets wrong, 0 only float32; "
        "p = 0.500, needs >= 0.05)"
    )
    assert describe_checks(checks[:1]) == "agreement 99.50% on training images (needs 99%)"
