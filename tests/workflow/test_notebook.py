"""examples/scones_unlimited.ipynb runs top to bottom (nbclient) on the shared mini dataset."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT
from tests.workflow.helpers import live_home_processes

NOTEBOOK = REPO_ROOT / "examples" / "scones_unlimited.ipynb"


def _outputs(nb) -> str:  # type: ignore[no-untyped-def]
    texts = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            texts.append(output.get("text", ""))
            texts.append(str(output.get("data", {}).get("text/plain", "")))
    return "\n".join(texts)


def test_the_notebook_is_committed_without_outputs() -> None:
    import nbformat

    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    assert all(not cell.get("outputs") for cell in nb.cells if cell.cell_type == "code")


@pytest.mark.needs_shared
@pytest.mark.timeout(900)
def test_the_notebook_runs_on_the_mini_dataset_and_cleans_up(
    tmp_path: Path, mini_tarball: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import nbformat
    from nbclient import NotebookClient

    home = tmp_path / "home"
    for name, value in {
        "SCONEFLOW_HOME": str(home),
        "SCONEFLOW_NOTEBOOK_SOURCE": str(mini_tarball),
        "SCONEFLOW_NOTEBOOK_FAST": "1",
        "SCONEFLOW_NOTEBOOK_EPOCHS": "3",
        "SCONEFLOW_NOTEBOOK_EXECUTIONS": "3",
        "SCONEFLOW_NOTEBOOK_THRESHOLD": "0.8",
        "SCONEFLOW_NOTEBOOK_CLEANUP_ALL": "1",
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("SCONEFLOW_STORE", "SCONEFLOW_BUCKET", "AWS_ENDPOINT_URL", "MPLBACKEND"):
        monkeypatch.delenv(name, raising=False)
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    try:
        client.execute()
    finally:
        if home.exists() and live_home_processes(home):
            from sconeflow.config import load_settings
            from sconeflow.workflow.cleanup import cleanup

            cleanup(load_settings(home), remove_all=True)
    text = _outputs(nb)
    assert "bicycle" in text and "motorcycle" in text
    assert "Completed" in text  # the training job
    assert "InService" in text
    assert "SUCCEEDED" in text and "ThresholdConfidenceNotMet" in text
    assert "serialize_image_data" in text and "classify_image" in text
    assert "captured requests" in text
    images = sum(1 for cell in nb.cells for o in cell.get("outputs", []) if "image/png" in o.get("data", {}))
    assert images >= 5  # samples, training curve, two execution graphs, monitoring plots
    assert live_home_processes(home) == []
    assert not home.exists()
