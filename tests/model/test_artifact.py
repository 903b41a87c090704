"""The model artifact: round trip, safe loading (no pickle, only two regular members), resolution."""

from __future__ import annotations

import gzip
import io
import json
import tarfile

import numpy as np
import pytest
from PIL import Image

from sconeflow.model.artifact import (
    OnnxClassifier,
    build_artifact,
    load_classifier,
    read_artifact,
    resolve_model,
)
from sconeflow.model.errors import InvalidImage, InvalidModelArtifact, ModelNotFound
from sconeflow.model.recipe import TrainConfig


@pytest.fixture(scope="module")
def artifact() -> bytes:
    """A small untrained net exported like a real job (tests of the container format)."""
    import torch

    from sconeflow.model.export import export_onnx
    from sconeflow.model.net import AirbenchNet, ProbabilityModel
    from sconeflow.model.train import FitResult, build_metadata

    torch.manual_seed(0)
    model = ProbabilityModel([AirbenchNet(2, (8, 8, 8))]).eval()
    result = FitResult(model, [0.5, 0.5, 0.5], [0.25, 0.25, 0.25], ["bicycle", "motorcycle"])
    meta = build_metadata(result, TrainConfig.tiny(), "job", "bucket", {"val_accuracy": 1.0})
    return build_artifact(export_onnx(model), meta)


def tar_gz(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return raw.getvalue()


def member(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def test_round_trip_is_deterministic_and_complete(artifact):
    onnx_bytes, meta = read_artifact(artifact)
    assert build_artifact(onnx_bytes, meta) == artifact
    with tarfile.open(fileobj=io.BytesIO(artifact)) as tar:
        assert sorted(tar.getnames()) == ["model.json", "model.onnx"]
    assert meta["input"]["shape"] == [3, 32, 32] and meta["input"]["layout"] == "NCHW"
    assert meta["output"]["kind"] == "probabilities"
    assert set(meta["versions"]) >= {"sconeflow", "torch", "onnx", "onnx_opset", "python"}
    assert meta["training"]["hyperparameters"]["image_shape"] == "3,32,32"
    assert b"pickle" not in artifact


def test_classifier_predicts_arrays_images_and_bytes(artifact):
    classifier = load_classifier(artifact, intra_op_threads=1)
    assert classifier.classes == ["bicycle", "motorcycle"] and classifier.input_shape == (3, 32, 32)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(5, 32, 32, 3), dtype=np.uint8)
    probs = classifier.predict_proba(images)
    assert probs.shape == (5, 2) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(1), 1, atol=1e-5)
    assert classifier.predict_proba(images[0]).shape == (1, 2)
    pil = Image.fromarray(images[0])
    png = io.BytesIO()
    pil.save(png, format="PNG")
    np.testing.assert_allclose(classifier.predict_images([pil, png.getvalue()]), probs[[0, 0]], atol=1e-6)
    big = io.BytesIO()
    pil.resize((100, 80)).convert("L").save(big, format="JPEG")
    assert classifier.predict_images([big.getvalue()]).shape == (1, 2)
    with pytest.raises(InvalidImage):
        classifier.predict_images([b"not an image"])
    with pytest.raises(InvalidImage):
        classifier.predict_proba(np.zeros((1, 28, 28, 3), np.uint8))


@pytest.mark.parametrize(
    "case",
    ["extra member", "symlink", "missing json", "bad json", "path traversal", "wrong classes", "not gzip"],
)
def test_unsafe_or_broken_artifacts_are_refused(artifact, case):
    onnx_bytes, meta = read_artifact(artifact)
    meta_bytes = json.dumps(meta).encode()
    if case == "extra member":
        data = tar_gz(
            [member("model.onnx", onnx_bytes), member("model.json", meta_bytes), member("x.pkl", b"x")]
        )
    elif case == "symlink":
        link = tarfile.TarInfo("model.onnx")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        data = tar_gz([(link, None), member("model.json", meta_bytes)])
    elif case == "missing json":
        data = tar_gz([member("model.onnx", onnx_bytes)])
    elif case == "bad json":
        data = tar_gz([member("model.onnx", onnx_bytes), member("model.json", b"{not json")])
    elif case == "path traversal":
        data = tar_gz([member("../model.onnx", onnx_bytes), member("model.json", meta_bytes)])
    elif case == "wrong classes":
        bad = dict(meta, classes=["only-one"])
        data = tar_gz([member("model.onnx", onnx_bytes), member("model.json", json.dumps(bad).encode())])
    else:
        data = b"\x00" * 100
    with pytest.raises(InvalidModelArtifact):
        read_artifact(data)


def test_classes_must_match_the_graph(artifact):
    onnx_bytes, meta = read_artifact(artifact)
    with pytest.raises(InvalidModelArtifact, match="outputs 2 classes"):
        OnnxClassifier(onnx_bytes, dict(meta, classes=["a", "b", "c"]))
    with pytest.raises(InvalidModelArtifact, match="onnxruntime"):
        OnnxClassifier(b"garbage", meta)


def test_plain_gzip_tar_with_dot_prefix_is_accepted(artifact):
    onnx_bytes, meta = read_artifact(artifact)
    data = tar_gz([member("./model.onnx", onnx_bytes), member("./model.json", json.dumps(meta).encode())])
    assert read_artifact(data)[1]["classes"] == meta["classes"]
    assert gzip.decompress(artifact)  # the artifact is a real gzip stream


def test_resolve_model_paths_uris_and_errors(settings, store, artifact, tmp_path):
    path = tmp_path / "model.tar.gz"
    path.write_bytes(artifact)
    assert resolve_model(settings, str(path)).data == artifact
    assert resolve_model(settings, str(tmp_path)).data == artifact
    assert resolve_model(settings, path.as_uri()).data == artifact
    store.create_bucket("models-bucket")
    store.put_object("models-bucket", "a/model.tar.gz", artifact)
    resolved = resolve_model(settings, "s3://models-bucket/a/model.tar.gz")
    assert resolved.data == artifact and len(resolved.sha256) == 64
    for ref in ("no-such-job", "s3://models-bucket/missing.tar.gz", str(tmp_path / "nope.tar.gz"), ""):
        with pytest.raises(ModelNotFound):
            resolve_model(settings, ref)


def test_serving_module_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, sconeflow.model.artifact; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
