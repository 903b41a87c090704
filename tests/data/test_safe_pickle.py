"""The restricted unpickler admits CIFAR's pickles and nothing that could run code."""

from __future__ import annotations

import os
import pickle
import subprocess

import numpy as np
import pytest

from sconeflow.data.errors import CorruptDataset, UnsafePickle
from sconeflow.data.safe_pickle import safe_loads
from sconeflow.data.synthetic import make_cifar_members


class _Reduces:
    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return (self.func, self.args)


@pytest.mark.parametrize(
    "payload",
    [
        _Reduces(os.system, "echo pwned"),
        _Reduces(eval, "1+1"),
        _Reduces(subprocess.call, ["true"]),
        _Reduces(getattr, print, "__self__"),
        {"data": _Reduces(os.system, "echo nested")},
    ],
    ids=["os.system", "eval", "subprocess", "getattr", "nested"],
)
def test_other_globals_are_refused(payload, tmp_path):
    for protocol in (2, pickle.HIGHEST_PROTOCOL):
        with pytest.raises(UnsafePickle, match="refused"):
            safe_loads(pickle.dumps(payload, protocol=protocol), what="train")


def test_refusal_happens_before_anything_runs(tmp_path):
    marker = tmp_path / "ran"
    payload = pickle.dumps(_Reduces(os.system, f"touch {marker}"), protocol=2)
    with pytest.raises(UnsafePickle):
        safe_loads(payload)
    assert not marker.exists()


def test_object_arrays_are_refused():
    payload = pickle.dumps(np.array([{"a": 1}], dtype=object), protocol=2)
    with pytest.raises(UnsafePickle):
        safe_loads(payload)


def test_admitted_callables_cannot_be_abused():
    # numpy.ndarray may only appear as _reconstruct's first argument, never be called directly
    header = b"\x80\x02cnumpy\nndarray\n"
    with pytest.raises((UnsafePickle, CorruptDataset)):
        safe_loads(header + b"K\x05\x85R.")
    # _codecs.encode only with text codecs
    with pytest.raises(UnsafePickle):
        safe_loads(b"\x80\x02c_codecs\nencode\nX\x01\x00\x00\x00aX\x06\x00\x00\x00zlib_c\x86R.")


def test_cifar_pickles_load_like_pickle_does():
    members = make_cifar_members(n_train=3, n_test=2, distractors=1)
    for name, raw in members.items():
        ours, reference = safe_loads(raw), pickle.loads(raw, encoding="bytes")
        assert ours.keys() == reference.keys()
        for key, value in reference.items():
            if isinstance(value, np.ndarray):
                assert ours[key].dtype == value.dtype and np.array_equal(ours[key], value)
            else:
                assert ours[key] == value, (name, key)


@pytest.mark.parametrize(
    "raw", [b"", b"not a pickle", b"\x80\x02}q\x00(X"], ids=["empty", "text", "truncated"]
)
def test_garbage_is_corrupt_dataset(raw):
    with pytest.raises(CorruptDataset):
        safe_loads(raw)


def _py2_pickle(obj) -> bytes:
    """Pickle like Python 2's cPickle did for the official CIFAR files (str as SHORT_BINSTRING etc.)."""

    def enc(value) -> bytes:
        if isinstance(value, bytes):
            return (
                b"U" + bytes([len(value)]) + value
                if len(value) < 256
                else b"T" + len(value).to_bytes(4, "little") + value
            )
        if isinstance(value, int):
            return b"J" + value.to_bytes(4, "little", signed=True)
        if isinstance(value, list):
            return b"](" + b"".join(enc(v) for v in value) + b"e"
        if isinstance(value, dict):
            return b"}(" + b"".join(enc(k) + enc(v) for k, v in value.items()) + b"u"
        if isinstance(value, np.ndarray):
            shape = b"(" + b"".join(enc(n) for n in value.shape) + b"t"
            dtype = (
                b"cnumpy\ndtype\n"
                + enc(b"u1")
                + b"K\x00K\x01\x87R(K\x03"
                + enc(b"|")
                + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb"
            )
            return (b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85" + enc(b"b") + b"\x87R"
                    + b"(K\x01" + shape + dtype + b"\x89" + enc(value.tobytes()) + b"tb")  # fmt: skip
        raise TypeError(type(value))

    return b"\x80\x02" + enc(obj) + b"."


def test_python2_cifar_pickles_are_read_like_torchvision_does():
    from sconeflow.data.cifar import parse_split

    data = np.arange(2 * 3072, dtype=np.int64).astype(np.uint8).reshape(2, 3072)
    split = {b"filenames": [b"bicycle_s_000001.png", b"motorcycle_s_000002.png"], b"batch_label": b"training",
             b"fine_labels": [8, 48], b"coarse_labels": [18, 18], b"data": data}  # fmt: skip
    raw = _py2_pickle(split)
    reference = pickle.loads(raw, encoding="latin1")
    assert np.array_equal(reference["data"], data)
    parsed = parse_split(raw, "train", 100, 20)
    assert parsed.filenames == ["bicycle_s_000001.png", "motorcycle_s_000002.png"]
    assert parsed.fine_labels.tolist() == [8, 48] and np.array_equal(parsed.data, data)


def test_empty_byte_strings_from_python3_protocol_2_are_admitted():
    """Python 3 pickles b"" at protocol 2 as a call of builtins.bytes with no arguments."""
    split = {b"batch_label": b"", b"filenames": [b"", b"a.png"], b"fine_labels": [0, 1]}
    assert safe_loads(pickle.dumps(split, protocol=2), what="train") == split


def test_bytes_with_arguments_is_refused():
    payload = pickle.dumps(_Reduces(bytes, [104, 105]), protocol=2)
    with pytest.raises(UnsafePickle, match="without arguments"):
        safe_loads(payload)
