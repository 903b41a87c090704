"""``sconeflow store ...``: look inside the object store (``ls``, ``cat``, ``cp``, ``rm``, ``mb``, ``rb``).

Object URIs are ``s3://bucket/key`` (the bucket is a store bucket: a folder of the local store, or
an S3 bucket when ``SCONEFLOW_STORE=s3://``). ``ls`` prints lines like ``aws s3 ls``.
"""

from __future__ import annotations

import os
import secrets
import shutil
import sys
from pathlib import Path
from typing import Annotated

import typer

from sconeflow.cliutil import HomeOption, console, settings_for
from sconeflow.errors import SconeflowError

store_app = typer.Typer(help="Look inside the object store: ls, cat, cp, rm, mb, rb.", no_args_is_help=True)

RecursiveOption = Annotated[
    bool, typer.Option("--recursive", "-r", help="Act on every key under the prefix.")
]


class StoreUsageError(SconeflowError):
    """A store command was given an unusable path or URI."""


def _store(home: Path | None):  # -> ObjectStore
    from sconeflow.store import open_store

    return open_store(settings_for(home).resolved_store_uri)


def _split(uri: str) -> tuple[str, str]:
    from sconeflow.store import parse_object_uri

    bucket, key = parse_object_uri(uri)
    if not bucket:
        raise StoreUsageError(f"{uri!r} names no bucket; use s3://bucket/key")
    return bucket, key


def _out(line: str) -> None:
    console.print(line, highlight=False, markup=False, soft_wrap=True)


@store_app.command("ls")
def ls(
    uri: Annotated[
        str | None, typer.Argument(help="s3://bucket\\[/prefix]; nothing lists the buckets.")
    ] = None,
    recursive: RecursiveOption = False,
    home: HomeOption = None,
) -> None:
    """List buckets, or the keys and folders under a prefix."""
    store = _store(home)
    if not uri or uri in ("s3://", "s3:"):
        for bucket in store.list_buckets():
            _out(f"{bucket.created:%Y-%m-%d %H:%M:%S} {bucket.name}")
        return
    bucket, prefix = _split(uri)
    token = None
    while True:
        page = store.list_objects(
            bucket, prefix, delimiter=None if recursive else "/", continuation_token=token
        )
        for common in page.common_prefixes:
            _out(f"{'PRE':>30} {common[len(prefix.rpartition('/')[0]) + 1 if '/' in prefix else 0 :]}")
        for obj in page.objects:
            shown = (
                obj.key
                if recursive
                else obj.key[len(prefix.rpartition("/")[0]) + 1 if "/" in prefix else 0 :]
            )
            _out(f"{obj.last_modified:%Y-%m-%d %H:%M:%S} {obj.size:>10} {shown}")
        if not page.is_truncated:
            return
        token = page.next_continuation_token


@store_app.command("cat")
def cat(uri: Annotated[str, typer.Argument(help="s3://bucket/key")], home: HomeOption = None) -> None:
    """Write an object's bytes to standard output."""
    bucket, key = _split(uri)
    with _store(home).open_object(bucket, key) as handle:
        while chunk := handle.read(1 << 20):
            sys.stdout.buffer.write(chunk)
    sys.stdout.buffer.flush()


def _folder(prefix: str) -> str:
    """The listing prefix of a recursive command: ``up`` means the folder ``up/`` (as in the AWS CLI)."""
    return prefix if not prefix or prefix.endswith("/") else prefix + "/"


def _is_remote(text: str) -> bool:
    return text.startswith("s3://")


@store_app.command("cp")
def cp(
    source: Annotated[str, typer.Argument(help="A local path or s3://bucket/key.")],
    destination: Annotated[
        str, typer.Argument(help="A local path or s3://bucket/key (a trailing / keeps the name).")
    ],
    recursive: RecursiveOption = False,
    home: HomeOption = None,
) -> None:
    """Copy a file or object (local -> store, store -> local, store -> store)."""
    if not _is_remote(source) and not _is_remote(destination):
        raise StoreUsageError("cp needs at least one s3:// URI (use the shell's cp for local files)")
    store = _store(home)
    pairs = _plan_copies(store, source, destination, recursive)
    for src, dst in pairs:
        if _is_remote(src) and _is_remote(dst):
            info = store.copy_object(*_split(src), *_split(dst))
        elif _is_remote(dst):
            bucket, key = _split(dst)
            with open(src, "rb") as handle:
                info = store.put_object(bucket, key, handle)
        else:
            _download(store, src, Path(dst))
            _out(f"download: {src} to {dst}")
            continue
        _out(f"{'copy' if _is_remote(src) else 'upload'}: {src} to s3://{info.bucket}/{info.key}")


def _download(store, src: str, target: Path) -> None:
    """Stream an object into ``target`` through a temporary file beside it, then rename: an error or
    Ctrl-C half-way leaves the previous file (or none), never a truncated one."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.parent / f".sconeflow-{secrets.token_hex(6)}.part"
    try:
        with store.open_object(*_split(src)) as handle, open(temporary, "xb") as out:
            shutil.copyfileobj(handle, out, 1 << 20)
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _plan_copies(store, source: str, destination: str, recursive: bool) -> list[tuple[str, str]]:
    """(source, destination) pairs for one cp command."""
    if not recursive:
        name = source.rstrip("/").rsplit("/", 1)[-1]
        if _is_remote(source) and not _split(source)[1]:
            raise StoreUsageError(f"{source!r} names no key")
        if not _is_remote(source) and not Path(source).is_file():
            raise StoreUsageError(f"{source} is not a file (use --recursive for folders)")
        to_bucket_root = _is_remote(destination) and not _split(destination)[1]
        if (
            to_bucket_root
            or destination.endswith("/")
            or (not _is_remote(destination) and Path(destination).is_dir())
        ):
            destination = destination.rstrip("/") + "/" + name
        return [(source, destination)]
    pairs = []
    if _is_remote(source):
        bucket, prefix = _split(source)
        base = _folder(prefix)
        for info in store.iter_objects(bucket, base):
            if info.key.endswith("/"):  # a "folder" object: no file to write (aws s3 cp skips empty ones)
                if info.size and not _is_remote(destination):
                    raise StoreUsageError(
                        f"s3://{bucket}/{info.key} ends in '/' but holds {info.size} bytes: "
                        "it cannot be written as a file"
                    )
                if not info.size:
                    continue
            rel = info.key[len(base) :]
            if not _is_remote(destination) and {".", ".."} & set(rel.split("/")):
                # S3 allows such keys; as a path they would write outside the destination folder
                raise StoreUsageError(
                    f"s3://{bucket}/{info.key} has a '.' or '..' segment: it cannot be written under "
                    f"{destination}"
                )
            pairs.append((f"s3://{bucket}/{info.key}", destination.rstrip("/") + "/" + rel))
    else:
        root = Path(source)
        if not root.is_dir():
            raise StoreUsageError(f"{source} is not a folder")
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            pairs.append((str(path), destination.rstrip("/") + "/" + path.relative_to(root).as_posix()))
    return pairs


@store_app.command("rm")
def rm(
    uri: Annotated[str, typer.Argument(help="s3://bucket/key (or a prefix with --recursive)")],
    recursive: RecursiveOption = False,
    home: HomeOption = None,
) -> None:
    """Delete an object, or every object under a prefix."""
    store = _store(home)
    bucket, key = _split(uri)
    if not recursive and not key:
        raise StoreUsageError(f"{uri!r} names no key (use --recursive to empty a prefix)")
    # like `aws s3 rm --recursive` (and `cp -r` here): the path is a folder, so `rm -r s3://b/up`
    # empties up/ and never touches its siblings upload.txt or up2/...
    keys = [info.key for info in store.iter_objects(bucket, _folder(key))] if recursive else [key]
    for each in keys:
        store.delete_object(bucket, each)
        _out(f"delete: s3://{bucket}/{each}")


@store_app.command("mb")
def mb(uri: Annotated[str, typer.Argument(help="s3://bucket")], home: HomeOption = None) -> None:
    """Make a bucket."""
    bucket, _ = _split(uri)
    _store(home).create_bucket(bucket)
    _out(f"make_bucket: {bucket}")


@store_app.command("rb")
def rb(
    uri: Annotated[str, typer.Argument(help="s3://bucket")],
    force: Annotated[bool, typer.Option("--force", help="Delete every object first.")] = False,
    home: HomeOption = None,
) -> None:
    """Remove a bucket (it must be empty unless --force)."""
    store = _store(home)
    bucket, _ = _split(uri)
    if force:
        for info in list(store.iter_objects(bucket)):
            store.delete_object(bucket, info.key)
    store.delete_bucket(bucket)
    _out(f"remove_bucket: {bucket}")


def register(app: typer.Typer) -> None:
    app.add_typer(store_app, name="store")
