"""``monitor report``: PNG plots and one self-contained HTML, numbers checked independently."""

from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from sconeflow.cli import app
from sconeflow.config import Settings
from sconeflow.monitor.report import PLOTS
from sconeflow.store import LocalStore
from tests.monitor.conftest import FIXTURES, recent_start, write_capture_files


def _summary_cells(page: str) -> dict[str, str]:
    return dict(re.findall(r'<td class="num" data-key="([^"]+)">([^<]*)</td>', page))


def _check_plots(out: Path, page: str) -> None:
    for name, _ in PLOTS:
        data = (out / name).read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n")
        with Image.open(io.BytesIO(data)) as image:
            assert image.width >= 800 and image.height >= 400
        # Embedded byte for byte.
        assert base64.b64encode(data).decode("ascii") in page
    assert page.count('src="data:image/png;base64,') == len(PLOTS)
    assert not re.search(r'(src|href)="(https?:|file:|/)', page)  # self-contained


def test_report_on_aws_fixtures(settings: Settings, shared_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    result = CliRunner().invoke(
        app,
        ["monitor", "report", "--source", str(shared_dir / FIXTURES), "-o", str(out), "--threshold", "0.93"],
    )
    assert result.exit_code == 0, result.output
    # Independent numbers straight from the JSON lines.
    confidences, predicted = [], []
    for path in (shared_dir / FIXTURES).glob("*.jsonl"):
        for line in path.read_text().splitlines():
            probs = json.loads(json.loads(line)["captureData"]["endpointOutput"]["data"])
            confidences.append(max(probs))
            predicted.append(int(np.argmax(probs)))
    page = (out / "report.html").read_text()
    cells = _summary_cells(page)
    assert cells["invocations (records)"] == str(len(confidences)) == "225"
    assert cells["mean confidence"] == f"{np.mean(confidences):.4f}"
    below = sum(c < 0.93 for c in confidences)
    assert cells["below threshold 0.93"] == str(below)
    assert cells["share below threshold 0.93"] == f"{below / len(confidences):.2%}"
    assert cells["malformed lines skipped"] == "0"
    assert f'<td>bicycle</td><td class="num">{predicted.count(0)}</td>' in page
    assert f'<td>motorcycle</td><td class="num">{predicted.count(1)}</td>' in page
    _check_plots(out, page)
    assert "No baseline" in page


def test_report_on_our_captures_with_baseline(
    settings: Settings,
    store: LocalStore,
    classifier,  # type: ignore[no-untyped-def]
    baseline_dir: Path,
    tmp_path: Path,
) -> None:
    from sconeflow.data.synthetic import synthetic_images

    images = synthetic_images(1, 2, 50, np.random.default_rng(21))  # one class only: a violation
    probs = classifier.predict_proba(images)
    write_capture_files(store, settings.bucket, "ep", images, probs, start=recent_start(50))
    store.put_object(
        settings.bucket, "data_capture/ep/AllTraffic/2020/01/01/00/00-00-000-x.jsonl", b"{oops\n"
    )
    out = tmp_path / "report"
    result = CliRunner().invoke(
        app, ["monitor", "report", "--endpoint", "ep", "-o", str(out), "--baseline", str(baseline_dir)]
    )
    assert result.exit_code == 0, result.output
    page = (out / "report.html").read_text()
    cells = _summary_cells(page)
    conf = probs.max(axis=1).astype(np.float64)
    assert cells["invocations (records)"] == "50"
    assert cells["mean confidence"] == f"{conf.mean():.4f}"
    assert cells["below threshold 0.93"] == str(int((conf < 0.93).sum()))
    assert cells["malformed lines skipped"] == "1"
    baseline = json.loads((baseline_dir / "statistics.json").read_text())
    base_conf = next(f for f in baseline["features"] if f["name"] == "confidence")["numerical_statistics"]
    assert cells["baseline images"] == str(baseline["dataset"]["item_count"])
    assert cells["baseline mean confidence"] == f"{base_conf['mean']:.4f}"
    assert "baseline_drift_check" in page and "predicted_class" in page
    assert "00-00-000-x.jsonl" in page  # the skipped line's file is listed
    _check_plots(out, page)


def test_report_with_no_records(settings: Settings, store: LocalStore, tmp_path: Path) -> None:
    store.create_bucket(settings.bucket)
    out = tmp_path / "empty"
    result = CliRunner().invoke(
        app, ["monitor", "report", "--source", f"s3://{settings.bucket}/x/", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert _summary_cells((out / "report.html").read_text())["invocations (records)"] == "0"


def test_report_folder_that_is_a_file(settings: Settings, shared_dir: Path, tmp_path: Path) -> None:
    from sconeflow.monitor.report import ReportError

    target = tmp_path / "taken"
    target.write_text("not a folder")
    result = CliRunner().invoke(
        app, ["monitor", "report", "--source", str(shared_dir / FIXTURES), "-o", str(target)]
    )
    assert result.exit_code == 1
    assert isinstance(result.exception, ReportError)
    assert target.read_text() == "not a folder"  # nothing lost
