"""``prepare_dataset`` / ``sconeflow data prepare``: layout, pixels, idempotence, all-or-nothing."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import tarfile

import numpy as np
import pytest
from typer.testing import CliRunner

from sconeflow.cli import app
from sconeflow.data.dataset import image_key, load_classes, load_split, read_manifest
from sconeflow.data.errors import (
    ChecksumMismatch,
    CorruptArchive,
    CorruptDataset,
    DatasetNotFound,
    DownloadError,
    EmptyClass,
    UnknownClass,
    UnsafePickle,
)
from sconeflow.data.prepare import prepare_dataset
from sconeflow.data.synthetic import make_cifar_members, make_cifar_tarball, write_tarball
from sconeflow.data.transform import rows_to_images
from sconeflow.store import LocalStore


def _rows(tarball, split):
    with tarfile.open(tarball) as tar:
        return pickle.loads(tar.extractfile(f"cifar-100-python/{split}").read(), encoding="bytes")


def _snapshot(store: LocalStore, bucket: str = "sconeflow-default") -> dict[str, tuple[str, int]]:
    if not store.bucket_exists(bucket):
        return {}
    root = store.root / bucket
    return {o.key: (o.etag, (root / o.key).stat().st_mtime_ns) for o in store.iter_objects(bucket)}


def test_prepare_layout_manifests_and_pixels(settings, store, small_tarball):
    report = prepare_dataset(settings, source=small_tarball)
    assert report.classes == ["bicycle", "motorcycle"]
    assert report.counts == {
        "train": {"bicycle": 12, "motorcycle": 12},
        "test": {"bicycle": 4, "motorcycle": 4},
    }
    assert report.written == 24 + 8 + 3 and report.unchanged == 0

    classes = load_classes(store, "sconeflow-default")
    assert classes["classes"] == ["bicycle", "motorcycle"] and classes["fine_label_ids"] == [8, 48]
    manifest = store.get_object("sconeflow-default", "train.lst").decode()
    first = manifest.splitlines()[0].split("\t")
    assert len(first) == 3 and first[0] == "0" and first[1] in ("0", "1") and first[2].endswith(".png")
    assert manifest.endswith("\n")
    assert store.head_object("sconeflow-default", f"train/{first[2]}").content_type == "image/png"

    for split in ("train", "test"):
        loaded = load_split(store, "sconeflow-default", split)
        raw = _rows(small_tarball, split)
        wanted = [i for i, f in enumerate(raw[b"fine_labels"]) if f in (8, 48)]
        assert loaded.keys == [f"{split}/{raw[b'filenames'][i].decode()}" for i in wanted]
        assert np.array_equal(loaded.images, rows_to_images(raw[b"data"][wanted]))
        assert loaded.labels.tolist() == [0 if raw[b"fine_labels"][i] == 8 else 1 for i in wanted]
        assert loaded.images.dtype == np.uint8 and loaded.labels.dtype == np.int64
        assert not any("synthetic_noise" in key for key in loaded.keys)


def test_rerun_is_idempotent_and_rewrites_nothing(settings, store, small_tarball):
    prepare_dataset(settings, source=small_tarball)
    before = _snapshot(store)
    report = prepare_dataset(settings, source=small_tarball)
    assert report.written == 0 and report.unchanged == len(before) and report.removed == 0
    assert _snapshot(store) == before  # same keys, same ETags, files not even touched


def test_rerun_with_other_classes_replaces_the_dataset(settings, store, tmp_path):
    tarball = make_cifar_tarball(tmp_path / "v.tar.gz", ["bicycle", "motorcycle", "bus"], n_train=5, n_test=2)
    prepare_dataset(settings, source=tarball)
    report = prepare_dataset(settings, source=tarball, classes=["bus", "bicycle"])
    assert report.removed == 7  # the motorcycle images
    split = load_split(store, "sconeflow-default", "train")
    assert split.classes == ["bus", "bicycle"] and len(split) == 10
    assert [o.key for o in store.iter_objects("sconeflow-default", "train/")] == sorted(split.keys)


def test_coarse_groups_give_many_classes(settings, store, tmp_path):
    classes = ["bicycle", "bus", "motorcycle", "pickup_truck", "train", "lawn_mower", "rocket", "streetcar",
               "tank", "tractor"]  # fmt: skip
    tarball = make_cifar_tarball(tmp_path / "v.tar.gz", classes, n_train=3, n_test=1, distractors=5)
    report = prepare_dataset(settings, source=tarball, coarse=["vehicles_1", "vehicles_2"], bucket="vehicles")
    assert report.classes == classes  # CIFAR fine-label order within each group
    assert report.total_images == 40
    assert sorted(e.label for e in read_manifest(store, "vehicles", "test")) == list(range(10))


def test_extracted_folder_works_as_source(settings, store, small_tarball, tmp_path):
    with tarfile.open(small_tarball) as tar:
        tar.extractall(tmp_path / "x", filter="data")
    report = prepare_dataset(settings, source=tmp_path / "x" / "cifar-100-python")
    assert report.total_images == 32
    again = prepare_dataset(settings, source=tmp_path / "x")
    assert (again.unchanged, again.written) == (34, 1)  # only classes.json's "source" changed


def _assert_untouched(store, before):
    assert _snapshot(store) == before


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"classes": ["bicycle", "unicorn"]}, UnknownClass),
        ({"coarse": ["vehicles_3"]}, UnknownClass),
        ({"classes": ["bicycle"]}, EmptyClass),
        ({"classes": ["bicycle", "apple"]}, EmptyClass),  # a real label with no rows
        ({"md5": "0" * 32}, ChecksumMismatch),
    ],
    ids=["unknown-class", "unknown-coarse", "one-class", "empty-class", "wrong-md5"],
)
def test_bad_requests_leave_the_previous_dataset_intact(settings, store, small_tarball, kwargs, error):
    prepare_dataset(settings, source=small_tarball)
    before = _snapshot(store)
    with pytest.raises(error):
        prepare_dataset(settings, source=small_tarball, **kwargs)
    _assert_untouched(store, before)


@pytest.mark.parametrize("cut", [0.5, 0.97])
def test_truncated_tarball_leaves_nothing(settings, store, small_tarball, tmp_path, cut):
    raw = small_tarball.read_bytes()
    broken = tmp_path / "broken.tar.gz"
    broken.write_bytes(raw[: int(len(raw) * cut)])
    with pytest.raises(CorruptArchive):
        prepare_dataset(settings, source=broken)
    assert _snapshot(store) == {}
    assert not any((settings.cache_dir / "tmp").iterdir())


def test_malicious_pickle_in_tarball_is_refused(settings, store, tmp_path):
    members = make_cifar_members(n_train=2, n_test=1)

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    members["train"] = pickle.dumps({b"data": Evil()}, protocol=2)
    with pytest.raises(UnsafePickle):
        prepare_dataset(settings, source=write_tarball(tmp_path / "evil.tar.gz", members))
    assert _snapshot(store) == {}


def test_unreachable_url_leaves_nothing(settings, store, monkeypatch):
    monkeypatch.setattr("sconeflow.data.download.DEFAULT_BACKOFF_S", 0.0)
    with pytest.raises(DownloadError):
        prepare_dataset(settings, url="http://127.0.0.1:9/cifar-100-python.tar.gz", md5=None)
    assert _snapshot(store) == {}


def test_download_source_from_a_url(settings, store, small_tarball, file_server):
    import hashlib

    file_server.payload = small_tarball.read_bytes()
    report = prepare_dataset(settings, url=file_server.url, md5=hashlib.md5(file_server.payload).hexdigest())
    assert report.total_images == 32 and report.source == file_server.url
    assert (settings.cache_dir / "downloads" / "cifar-100-python.tar.gz").is_file()


def test_failure_while_writing_undoes_the_run(settings, store, small_tarball, tmp_path):
    prepare_dataset(settings, source=small_tarball, classes=["bicycle", "motorcycle"])
    before = _snapshot(store)
    bigger = make_cifar_tarball(tmp_path / "b.tar.gz", n_train=20, n_test=4, seed=9)

    class FailingStore(LocalStore):
        puts = 0

        def put_object(self, *args, **kwargs):
            FailingStore.puts += 1
            if FailingStore.puts == 15:
                raise OSError("disk full")
            return super().put_object(*args, **kwargs)

    with pytest.raises(OSError, match="disk full"):
        prepare_dataset(settings, source=bigger, store=FailingStore(settings.buckets_dir))
    assert {k: v[0] for k, v in _snapshot(store).items()} == {k: v[0] for k, v in before.items()}


def test_load_split_without_a_dataset_is_a_named_error(store):
    store.create_bucket("empty-bucket")
    with pytest.raises(DatasetNotFound, match="data prepare"):
        load_split(store, "empty-bucket", "train")


@pytest.mark.parametrize("damage", [b"not a png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 20])
def test_load_split_with_a_damaged_image_is_a_named_error(settings, store, small_tarball, damage):
    """A damaged object under train/ raised Pillow's UnidentifiedImageError/OSError, naming no object."""
    prepare_dataset(settings, source=small_tarball)
    key = image_key("train", read_manifest(store, settings.bucket, "train")[3].path)
    store.put_object(settings.bucket, key, damage, content_type="image/png")
    with pytest.raises(CorruptDataset, match=f"s3://{settings.bucket}/{key} is not a readable image"):
        load_split(store, settings.bucket, "train")


def test_cli_prepare_and_info(settings, small_tarball):
    runner = CliRunner()
    home = ["--home", str(settings.home)]
    result = runner.invoke(app, ["data", "prepare", "--source", str(small_tarball), *home])
    assert result.exit_code == 0, result.output
    assert "bicycle" in result.stdout and "35 written" in result.stdout
    result = runner.invoke(app, ["data", "info", *home])
    assert result.exit_code == 0 and "motorcycle" in result.stdout
    document = json.loads(LocalStore(settings.buckets_dir).get_object("sconeflow-default", "classes.json"))
    assert document["counts"]["test"] == {"bicycle": 4, "motorcycle": 4}


def test_cli_errors_are_one_named_line(settings, small_tarball):
    result = subprocess.run(
        [sys.executable, "-m", "sconeflow", "data", "prepare", "--source", str(small_tarball),
         "--classes", "bicycle,unicorn", "--home", str(settings.home)],
        capture_output=True, text=True, timeout=60, env={**os.environ, "COLUMNS": "300"},
    )  # fmt: skip
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("UnknownClass: ")


def test_progress_is_reported_per_phase(settings, small_tarball):
    phases: dict[str, tuple[int, int | None]] = {}
    prepare_dataset(settings, source=small_tarball, progress=lambda p, d, t: phases.__setitem__(p, (d, t)))
    assert set(phases) == {"extract", "upload"}
    assert phases["upload"] == (35, 35) and phases["extract"][0] > 0


def test_prepare_into_s3_through_boto3(settings, small_tarball):
    moto = pytest.importorskip("moto")
    import boto3

    from sconeflow.store_s3 import S3Store

    with moto.mock_aws():
        s3 = S3Store("s3://", client=boto3.client("s3", region_name="us-east-1"))
        first = prepare_dataset(settings, source=small_tarball, store=s3, bucket="s3-dataset")
        again = prepare_dataset(settings, source=small_tarball, store=s3, bucket="s3-dataset")
        assert (first.written, again.written, again.unchanged) == (35, 0, 35)
        split = load_split(s3, "s3-dataset", "test")
        assert split.images.shape == (8, 32, 32, 3) and split.classes == ["bicycle", "motorcycle"]


def test_missing_source_is_a_named_error(settings, store, tmp_path):
    from sconeflow.data.errors import SourceNotFound

    with pytest.raises(SourceNotFound):
        prepare_dataset(settings, source=tmp_path / "nothing-here.tar.gz")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceNotFound, match="missing"):
        prepare_dataset(settings, source=tmp_path / "empty")
    assert _snapshot(store) == {}


def test_cli_synthesize_then_prepare(settings, tmp_path):
    runner = CliRunner()
    out = tmp_path / "synthetic.tar.gz"
    args = ["--classes", "bus,train,tank", "--n-train", "4", "--n-test", "2", "--distractors", "3"]
    result = runner.invoke(app, ["data", "synthesize", str(out), *args])
    assert result.exit_code == 0, result.output
    report = prepare_dataset(settings, source=out, classes=["bus", "train", "tank"])
    assert report.counts["train"] == {"bus": 4, "train": 4, "tank": 4}


def test_tarball_with_dot_slash_member_names(settings, tmp_path):
    members = make_cifar_members(n_train=2, n_test=1)
    tarball = write_tarball(tmp_path / "dot.tar.gz", members, folder="./cifar-100-python")
    assert prepare_dataset(settings, source=tarball).total_images == 6


# str "" (not b""): Python 3 pickles an empty bytes through builtins.bytes, which safe_pickle refuses
@pytest.mark.parametrize("bad_name", [b"a\tb.png", b"a\nb.png", b"a\rb.png", "", "v\u2028lo.png".encode()])
def test_filename_that_would_break_the_lst_manifest_is_refused(
    settings, store, small_tarball, tmp_path, bad_name
):
    """A TAB or line break in a CIFAR filename would write an unparseable index<TAB>class<TAB>path line."""
    prepare_dataset(settings, source=small_tarball)
    before = _snapshot(store)
    members = make_cifar_members(n_train=2, n_test=1)
    train = pickle.loads(members["train"], encoding="bytes")
    train[b"filenames"][0] = bad_name
    members["train"] = pickle.dumps(train, protocol=2)
    with pytest.raises(CorruptDataset, match="unusable filename"):
        prepare_dataset(settings, source=write_tarball(tmp_path / "names.tar.gz", members))
    assert _snapshot(store) == before
    assert len(load_split(store, settings.bucket, "train")) == 24


_KILLED_MID_WRITE = """
import os, signal, sys
from sconeflow.cli import app
from sconeflow.store import LocalStore

put, calls = LocalStore.put_object, [0]

def put_then_sigterm(self, *args, **kwargs):
    calls[0] += 1
    if calls[0] == 5:  # `kill <pid>` while the run is writing its objects
        os.kill(os.getpid(), signal.SIGTERM)
    return put(self, *args, **kwargs)

LocalStore.put_object = put_then_sigterm
app(sys.argv[1:])
"""


def test_sigterm_while_writing_undoes_the_run(settings, store, small_tarball, tmp_path):
    """`kill <pid>` during the load phase undoes this run's writes, as Ctrl-C does."""
    prepare_dataset(settings, source=small_tarball)
    before = _snapshot(store)
    other = make_cifar_tarball(tmp_path / "other.tar.gz", classes=("bus", "train"), n_train=6, n_test=2)
    result = subprocess.run(
        [sys.executable, "-c", _KILLED_MID_WRITE, "data", "prepare", "--source", str(other),
         "--classes", "bus,train", "--home", str(settings.home)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode != 0, result.stdout
    assert _snapshot(store) == before
    assert load_classes(store, settings.bucket)["classes"] == ["bicycle", "motorcycle"]


@pytest.mark.parametrize("left_out", ["meta", "train", "test"])
def test_tarball_missing_a_member_names_it_inside_the_archive(settings, store, tmp_path, left_out):
    """The message named the deleted temporary extraction folder instead of the archive's own layout."""
    members = make_cifar_members(n_train=2, n_test=1)
    del members[left_out]
    tarball = write_tarball(tmp_path / "partial.tar.gz", members)
    with pytest.raises(CorruptArchive) as info:
        prepare_dataset(settings, source=tarball)
    assert str(info.value) == f"partial.tar.gz has no {left_out} member beside cifar-100-python/"
    assert _snapshot(store) == {}
