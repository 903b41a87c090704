"""``sconeflow store ls|cat|cp|rm|mb|rb`` on the local store."""

from __future__ import annotations

import subprocess
import sys

import pytest
from typer.testing import CliRunner

from sconeflow.cli import app
from sconeflow.store import BucketNotEmpty, LocalStore


@pytest.fixture
def cli(settings):
    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(app, [*args, "--home", str(settings.home)], catch_exceptions=True)

    return run


def test_mb_cp_ls_cat_rm_rb(cli, store: LocalStore, tmp_path):
    assert cli("store", "mb", "s3://cli-bucket").exit_code == 0
    local = tmp_path / "hello.txt"
    local.write_text("hello store")
    result = cli("store", "cp", str(local), "s3://cli-bucket/docs/")
    assert result.exit_code == 0, result.output
    assert "upload:" in result.output
    assert store.get_object("cli-bucket", "docs/hello.txt") == b"hello store"
    assert cli("store", "cp", str(local), "s3://cli-bucket").exit_code == 0
    assert store.get_object("cli-bucket", "hello.txt") == b"hello store"
    assert cli("store", "rm", "s3://cli-bucket/hello.txt").exit_code == 0

    listing = cli("store", "ls", "s3://cli-bucket")
    assert "PRE docs/" in listing.output
    listing = cli("store", "ls", "s3://cli-bucket/docs/")
    assert "hello.txt" in listing.output and "11" in listing.output
    assert "cli-bucket" in cli("store", "ls").output
    assert "docs/hello.txt" in cli("store", "ls", "-r", "s3://cli-bucket").output

    assert cli("store", "cat", "s3://cli-bucket/docs/hello.txt").stdout == "hello store"

    result = cli("store", "cp", "s3://cli-bucket/docs/hello.txt", "s3://cli-bucket/copy.txt")
    assert result.exit_code == 0 and store.get_object("cli-bucket", "copy.txt") == b"hello store"
    back = tmp_path / "back.txt"
    assert cli("store", "cp", "s3://cli-bucket/copy.txt", str(back)).exit_code == 0
    assert back.read_text() == "hello store"

    result = cli("store", "rb", "s3://cli-bucket")
    assert isinstance(result.exception, BucketNotEmpty)
    assert cli("store", "rm", "s3://cli-bucket/copy.txt").exit_code == 0
    assert cli("store", "rm", "-r", "s3://cli-bucket/docs/").exit_code == 0
    assert list(store.iter_objects("cli-bucket")) == []
    assert cli("store", "rb", "s3://cli-bucket").exit_code == 0
    assert not store.bucket_exists("cli-bucket")


def test_recursive_copy_both_ways(cli, store: LocalStore, tmp_path):
    source = tmp_path / "tree"
    (source / "a").mkdir(parents=True)
    (source / "a" / "x.txt").write_text("x")
    (source / "y.txt").write_text("y")
    cli("store", "mb", "s3://tree-bucket")
    assert cli("store", "cp", "-r", str(source), "s3://tree-bucket/up").exit_code == 0
    assert [o.key for o in store.iter_objects("tree-bucket")] == ["up/a/x.txt", "up/y.txt"]
    assert cli("store", "cp", "-r", "s3://tree-bucket/up", str(tmp_path / "down")).exit_code == 0
    assert (tmp_path / "down" / "a" / "x.txt").read_text() == "x"
    assert cli("store", "rb", "--force", "s3://tree-bucket").exit_code == 0


def test_recursive_download_skips_empty_folder_objects(cli, store: LocalStore, tmp_path):
    cli("store", "mb", "s3://folders")
    store.put_object("folders", "a/", b"")  # what the S3 console's "Create folder" writes
    store.put_object("folders", "a/b.txt", b"b")
    store.put_object("folders", "c/", b"")
    result = cli("store", "cp", "-r", "s3://folders", str(tmp_path / "down"))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "down" / "a" / "b.txt").read_bytes() == b"b"
    assert sorted(p.relative_to(tmp_path / "down").as_posix() for p in (tmp_path / "down").rglob("*")) == [
        "a",
        "a/b.txt",
    ]
    assert cli("store", "cp", "-r", "s3://folders/a/", "s3://folders/copy").exit_code == 0
    assert [o.key for o in store.iter_objects("folders", "copy")] == ["copy/b.txt"]
    store.put_object("folders", "d/", b"not empty")
    result = cli("store", "cp", "-r", "s3://folders", str(tmp_path / "again"))
    assert result.exit_code != 0 and "s3://folders/d/" in str(result.exception)
    assert not (tmp_path / "again").exists()  # refused while planning, before any file was written


def test_errors_are_one_named_line_and_non_zero_exit(settings):
    result = subprocess.run(
        [sys.executable, "-m", "sconeflow", "store", "cat", "s3://sconeflow-default/../etc/passwd",
         "--home", str(settings.home)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip().startswith("InvalidKey: ")
    assert len(result.stderr.strip().splitlines()) == 1
