"""Edge cases of ``sconeflow store``: recursive prefixes, odd keys, downloads that must stay put."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from sconeflow.cli import app
from sconeflow.store import LocalStore


@pytest.fixture
def cli(settings):
    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(app, [*args, "--home", str(settings.home)], catch_exceptions=True)

    return run


def test_rm_recursive_removes_the_folder_not_its_siblings(cli, store: LocalStore):
    """`rm -r s3://b/up` is the folder up/ (as `aws s3 rm --recursive` and `cp -r` read it)."""
    store.create_bucket("edges")
    for key in ("up/a.txt", "up/sub/b.txt", "upload.txt", "up2/c.txt", "keep.txt"):
        store.put_object("edges", key, key.encode())
    result = cli("store", "rm", "-r", "s3://edges/up")
    assert result.exit_code == 0, result.output
    assert sorted(o.key for o in store.iter_objects("edges")) == ["keep.txt", "up2/c.txt", "upload.txt"]
    assert "upload.txt" not in result.output
    assert cli("store", "rm", "-r", "s3://edges/").exit_code == 0  # the bucket root: everything
    assert list(store.iter_objects("edges")) == []


def test_odd_keys_round_trip_through_cp_ls_cat_rm(cli, store: LocalStore, tmp_path):
    store.create_bucket("odd-keys")
    local = tmp_path / "f.bin"
    local.write_bytes(b"\x00\xffbody")
    keys = ["sp ace.txt", "uni-\u00e9\u4e2d.txt", "pl+us.txt", "pc%20t.txt", "q?x.txt", "h#a.txt"]
    for key in keys:
        assert cli("store", "cp", str(local), f"s3://odd-keys/d/{key}").exit_code == 0
    listing = cli("store", "ls", "s3://odd-keys/d/").output
    for key in keys:
        assert key in listing
        assert cli("store", "cat", f"s3://odd-keys/d/{key}").stdout_bytes == b"\x00\xffbody"
    down = tmp_path / "down"
    assert cli("store", "cp", "-r", "s3://odd-keys/d", str(down)).exit_code == 0
    assert sorted(p.name for p in down.iterdir()) == sorted(keys)
    assert cli("store", "rm", f"s3://odd-keys/d/{keys[3]}").exit_code == 0
    assert "pc%20t.txt" not in cli("store", "ls", "s3://odd-keys/d/").output
    result = cli("store", "cp", str(local), "s3://odd-keys/x/../y")
    assert result.exit_code == 1 and type(result.exception).__name__ == "InvalidKey"


def test_download_over_an_existing_file_replaces_it_whole(cli, store: LocalStore, tmp_path):
    store.create_bucket("over")
    store.put_object("over", "m.bin", b"new" * 1000)
    target = tmp_path / "m.bin"
    target.write_bytes(b"old")
    assert cli("store", "cp", "s3://over/m.bin", str(target)).exit_code == 0
    assert target.read_bytes() == b"new" * 1000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home", "m.bin"]  # no temporary file left
    result = cli("store", "cp", "s3://over/missing.bin", str(target))
    assert result.exit_code == 1 and target.read_bytes() == b"new" * 1000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home", "m.bin"]


def test_recursive_download_refuses_s3_keys_with_dot_dot_before_writing(settings, monkeypatch, tmp_path):
    """Real S3 accepts the key 'up/../../escape/x.txt'; downloading it must not leave the folder."""
    moto = pytest.importorskip("moto")
    import boto3

    with moto.mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="dots-bucket")
        client.put_object(Bucket="dots-bucket", Key="up/a.txt", Body=b"a")
        client.put_object(Bucket="dots-bucket", Key="up/../../escape/x.txt", Body=b"x")
        monkeypatch.setenv("SCONEFLOW_STORE", "s3://")
        dest = tmp_path / "one" / "two" / "down"
        result = CliRunner().invoke(
            app, ["store", "cp", "-r", "s3://dots-bucket/up", str(dest), "--home", str(settings.home)]
        )
    assert result.exit_code == 1
    assert "'..'" in str(result.exception)
    assert not (tmp_path / "one" / "escape").exists()
    assert not dest.exists()  # refused while planning
