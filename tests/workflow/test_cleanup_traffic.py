"""``sconeflow cleanup --all`` after ``sconeflow traffic``: its uploads go with the workflow's data."""

from __future__ import annotations

import json

import pytest

from sconeflow.data.synthetic import make_cifar_tarball
from sconeflow.store import LocalStore
from tests.workflow.helpers import run_cli

PASS_MACHINE = {"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}}


@pytest.mark.timeout(300)
def test_cleanup_all_removes_the_traffic_generators_uploads(tmp_path) -> None:
    home = tmp_path / "home"
    tarball = make_cifar_tarball(tmp_path / "cifar.tar.gz", n_train=2, n_test=3, seed=4)
    definition = tmp_path / "pass.json"
    definition.write_text(json.dumps(PASS_MACHINE))
    for args in (
        ("data", "prepare", "--source", str(tarball)),
        ("sfn", "create", "passthrough", str(definition)),
        ("traffic", "--workflow", "passthrough", "--burst", "3", "--shift", "dark", "--seed", "1", "--json"),
    ):
        result = run_cli(home, *args, timeout=180)
        assert result.returncode == 0, (args, result.stdout, result.stderr)
    assert json.loads(result.stdout)["succeeded"] == 3
    store = LocalStore(home / "buckets")
    bucket = "sconeflow-default"
    uploads = [info.key for info in store.iter_objects(bucket, "traffic/")]
    assert len(uploads) == 3  # the darkened images the executions read

    result = run_cli(home, "cleanup", "--all", timeout=120)

    assert result.returncode == 0, result.stderr
    assert f"removed s3://{bucket}/traffic/ (3 object(s))" in result.stdout
    assert "kept" not in result.stdout
    assert not home.exists()  # nothing of the run is left, so the home goes too
    again = run_cli(home, "cleanup", "--all", timeout=120)
    assert again.returncode == 0 and f"nothing to clean up in {home}" in again.stdout
