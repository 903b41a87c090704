"""Edge cases of ``prepare_dataset``: concurrent runs on one home, malformed pickles."""

from __future__ import annotations

import logging
import pickle
import threading
import time

import pytest

from sconeflow.data.dataset import load_classes, load_split
from sconeflow.data.errors import CorruptDataset
from sconeflow.data.prepare import prepare_dataset
from sconeflow.data.synthetic import cifar_pickle, make_cifar_members, write_tarball


class _Flag(logging.Handler):
    def __init__(self, needle: str) -> None:
        super().__init__()
        self.needle, self.event = needle, threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if self.needle in record.getMessage():
            self.event.set()


def test_interrupted_prepare_does_not_undo_a_concurrent_runs_objects(settings, store, small_tarball):
    """Run A is interrupted after writing; run B (same home, same bucket) ran meanwhile.

    Without serialisation B found A's objects unchanged, reported success, and A's undo then
    deleted them: B's "prepared" dataset was gone. B must wait for A and then load everything.
    """
    flag = _Flag("another prepare is loading")
    logger = logging.getLogger("sconeflow.data.prepare")
    logger.addHandler(flag)
    outcome: dict[str, object] = {}

    def run_b() -> None:
        try:
            outcome["report"] = prepare_dataset(settings, source=small_tarball)
        except BaseException as exc:
            outcome["error"] = exc

    second = threading.Thread(target=run_b)

    def progress(phase: str, done: int, total: int | None) -> None:
        if phase == "upload" and done == total:  # A has written every object
            second.start()
            deadline = time.monotonic() + 60
            while second.is_alive() and not flag.event.is_set() and time.monotonic() < deadline:
                time.sleep(0.01)
            raise KeyboardInterrupt  # Ctrl-C in A now

    try:
        with pytest.raises(KeyboardInterrupt):
            prepare_dataset(settings, source=small_tarball, progress=progress)
        second.join(timeout=120)
    finally:
        logger.removeHandler(flag)
    assert "error" not in outcome, outcome
    report = outcome["report"]
    assert report.written + report.unchanged == 24 + 8 + 3
    assert len(load_split(store, settings.bucket, "train").labels) == 24
    assert len(load_split(store, settings.bucket, "test").labels) == 8
    assert load_classes(store, settings.bucket)["classes"] == ["bicycle", "motorcycle"]


def _tarball_with(tmp_path, member: str, change) -> object:
    members = make_cifar_members(n_train=3, n_test=2, distractors=2)
    obj = pickle.loads(members[member], encoding="bytes")
    change(obj)
    return write_tarball(tmp_path / f"bad-{member}.tar.gz", {**members, member: cifar_pickle(obj)})


def test_boolean_label_is_not_an_integer(settings, store, tmp_path):
    """True would silently become fine label 1 (aquarium_fish) and the row would vanish."""
    source = _tarball_with(tmp_path, "train", lambda obj: obj[b"fine_labels"].__setitem__(0, True))
    with pytest.raises(CorruptDataset, match="labels must be integers"):
        prepare_dataset(settings, source=source)
    assert not store.bucket_exists(settings.bucket)


def test_duplicate_fine_label_name_in_meta_is_refused(settings, store, tmp_path):
    """Classes are chosen by name; a second 'bicycle' id would have its rows dropped silently."""
    source = _tarball_with(tmp_path, "meta", lambda obj: obj[b"fine_label_names"].__setitem__(9, b"bicycle"))
    with pytest.raises(CorruptDataset, match="'bicycle' more than once"):
        prepare_dataset(settings, source=source)


def test_wrong_dtype_of_data_is_named(settings, tmp_path):
    source = _tarball_with(
        tmp_path, "train", lambda obj: obj.__setitem__(b"data", obj[b"data"].astype("int64"))
    )
    with pytest.raises(CorruptDataset, match=r"not int64 \(\d+, 3072\)"):
        prepare_dataset(settings, source=source)
