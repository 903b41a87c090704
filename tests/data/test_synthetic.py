"""Synthetic CIFAR-100 tarballs mimic the real format and hold learnable classes."""

from __future__ import annotations

import hashlib
import pickle
import pickletools
import tarfile

import numpy as np

from sconeflow.data.cifar import read_tarball
from sconeflow.data.cifar_names import COARSE_LABEL_NAMES, FINE_LABEL_NAMES, FINE_TO_COARSE
from sconeflow.data.synthetic import make_cifar_tarball
from sconeflow.data.transform import rows_to_images


def _globals(raw: bytes) -> set[str]:
    return {str(arg) for op, arg, _ in pickletools.genops(raw) if op.name in ("GLOBAL", "STACK_GLOBAL")}


def test_layout_and_pickle_format_match_cifar(small_tarball):
    with tarfile.open(small_tarball) as tar:
        names = tar.getnames()
        raws = {n.split("/")[-1]: tar.extractfile(n).read() for n in names}
    assert names == ["cifar-100-python/meta", "cifar-100-python/train", "cifar-100-python/test"]
    for raw in raws.values():
        assert raw[:2] == b"\x80\x02"  # protocol 2
    assert _globals(raws["meta"]) == {"_codecs encode"}
    assert _globals(raws["train"]) <= {
        "_codecs encode", "numpy._core.multiarray _reconstruct", "numpy.core.multiarray _reconstruct",
        "numpy ndarray", "numpy dtype",
    }  # fmt: skip
    meta = pickle.loads(raws["meta"], encoding="bytes")
    assert [n.decode() for n in meta[b"fine_label_names"]] == list(FINE_LABEL_NAMES)
    assert [n.decode() for n in meta[b"coarse_label_names"]] == list(COARSE_LABEL_NAMES)
    train = pickle.loads(raws["train"], encoding="bytes")
    assert list(train) == [b"filenames", b"batch_label", b"fine_labels", b"coarse_labels", b"data"]
    assert train[b"data"].dtype == np.uint8 and train[b"data"].shape == (2 * 12 + 6, 3072)
    for fine, coarse in zip(train[b"fine_labels"], train[b"coarse_labels"], strict=True):
        assert COARSE_LABEL_NAMES[coarse] == FINE_TO_COARSE[FINE_LABEL_NAMES[fine]]


def test_same_arguments_same_bytes(tmp_path):
    a = make_cifar_tarball(tmp_path / "a.tar.gz", n_train=3, n_test=1, seed=7)
    b = make_cifar_tarball(tmp_path / "b.tar.gz", n_train=3, n_test=1, seed=7)
    c = make_cifar_tarball(tmp_path / "c.tar.gz", n_train=3, n_test=1, seed=8)
    digest = [hashlib.md5(p.read_bytes()).hexdigest() for p in (a, b, c)]
    assert digest[0] == digest[1] != digest[2]


def test_many_classes_are_separable_by_a_nearest_centroid(tmp_path):
    classes = ["bicycle", "bus", "motorcycle", "pickup_truck", "train", "lawn_mower", "rocket", "tank"]
    data = read_tarball(make_cifar_tarball(tmp_path / "v.tar.gz", classes, n_train=30, n_test=10, seed=3))
    ids = [FINE_LABEL_NAMES.index(c) for c in classes]

    def features(split):
        part = data.splits[split]
        images = rows_to_images(part.data).astype(np.float32)
        return images.reshape(len(images), -1), np.array([ids.index(int(f)) for f in part.fine_labels])

    x_train, y_train = features("train")
    x_test, y_test = features("test")
    centroids = np.stack([x_train[y_train == k].mean(axis=0) for k in range(len(classes))])
    predicted = np.argmin(((x_test[:, None, :] - centroids[None]) ** 2).sum(-1), axis=1)
    assert (predicted == y_test).mean() >= 0.95


def test_cli_synthesize_refuses_negative_counts(tmp_path):
    from typer.testing import CliRunner

    from sconeflow.cli import app

    result = CliRunner().invoke(app, ["data", "synthesize", str(tmp_path / "c.tar.gz"), "--n-train", "-1"])
    assert result.exit_code == 2 and "--n-train" in result.output  # a usage error, not a NumPy traceback
    assert not (tmp_path / "c.tar.gz").exists()
