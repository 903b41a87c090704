"""End to end: a real endpoint captures traffic; monitoring reads it by endpoint name."""

from __future__ import annotations

import contextlib
import urllib.request
from pathlib import Path

from typer.testing import CliRunner

from sconeflow.cli import app
from sconeflow.config import Settings
from tests.monitor.conftest import MonitorModel, baseline_like_images, png_bytes


def test_monitor_reads_a_real_endpoints_captures(
    settings: Settings, monitor_model: MonitorModel, baseline_dir: Path, tmp_path: Path
) -> None:
    from sconeflow.endpoint.registry import delete, deploy, stop_all

    dest = f"s3://{settings.bucket}/custom-capture"
    artifact = str(monitor_model.artifact)
    view = deploy(settings, artifact, name="mon-e2e", capture_percent=100, capture_dest=dest)
    try:
        images = baseline_like_images(20, seed=41)
        for image in images:
            request = urllib.request.Request(
                f"{view.url}/invocations", data=png_bytes(image), headers={"Content-Type": "image/png"}
            )
            with urllib.request.urlopen(request, timeout=30) as response:
                assert response.status == 200
        stop_all(settings)  # graceful: the capture writer publishes everything accepted
        runner = CliRunner()
        result = runner.invoke(
            app, ["monitor", "run", "-e", "mon-e2e", "--window", "1h", "--baseline", str(baseline_dir)]
        )
        assert result.exit_code == 0, result.output
        assert "(40 records)" in result.output
        result = runner.invoke(
            app,
            [
                "monitor",
                "report",
                "-e",
                "mon-e2e",
                "-o",
                str(tmp_path / "r"),
                "--baseline",
                str(baseline_dir),
            ],
        )
        assert result.exit_code == 0, result.output
        assert "40 invocations" in " ".join(result.output.split())
    finally:
        with contextlib.suppress(Exception):
            delete(settings, "mon-e2e")
