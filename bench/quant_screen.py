"""Screen int8 quantization settings by their fidelity to the float32 graph, on held-out images only.

Uses the default students cached by ``bench/student_screen.py`` (one per fold of the 5-fold partition of
``bench/train_holdout.py``; the real test split is never read). Each student is exported with flip TTA
as the job exports it, quantized with each setting (ranges from the fold's 800 training images, as the
job does), and compared with its float32 graph on the fold's 200 held-out images: how many predictions
change, the mean and largest probability change, errors, and the batch-1 latency of the graph.

    python bench/quant_screen.py --cache /tmp/student-cache
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
import torch  # noqa: E402

from holdout_data import FOLDS, add_run_options, load_fold, source_missing  # noqa: E402  (bench/, beside this file)
from sconeflow.model.export import INPUT_NAME, export_onnx  # noqa: E402
from sconeflow.model.net import AirbenchNet, ProbabilityModel  # noqa: E402
from sconeflow.model.quantize import compare, quantize_int8  # noqa: E402
from sconeflow.model.recipe import TrainConfig  # noqa: E402
from sconeflow.model.train import to_tensor  # noqa: E402

FIRST = "/members.0/block1/conv1/Conv"
WHITEN = "/members.0/whiten/Conv"
SETTINGS: dict[str, dict] = {
    "minmax": {"keep_float": ()},  # every Conv and MatMul in int8: the job's setting until session 9
    "percentile": {"calibrate_method": "percentile", "keep_float": ()},
    "entropy": {"calibrate_method": "entropy", "keep_float": ()},
    "minmax-whiten-float": {"keep_float": (WHITEN,)},  # the job's setting since session 9
    "minmax-block1-float": {"keep_float": (WHITEN, FIRST)},
    "minmax-head-float": {"keep_float": ("/members.0/head/MatMul",)},
}


def session(graph: bytes, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    return ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])


def latency_ms(sess: ort.InferenceSession, image: np.ndarray, runs: int = 200) -> float:
    for _ in range(20):
        sess.run(None, {INPUT_NAME: image})
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        sess.run(None, {INPUT_NAME: image})
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1e3)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, required=True, help="bench/student_screen.py's folder")
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--splits", type=int, nargs="+", default=list(range(FOLDS)))
    add_run_options(parser)
    args = parser.parse_args()
    if source_missing(args.source):
        return 2
    totals = {
        name: {"changed": 0, "int8_only": 0, "float_only": 0, "errors": 0, "abs_diff": 0.0}
        for name in args.settings
    }
    latency = {name: [] for name in args.settings}
    float_errors, images = 0, 0
    for split in args.splits:
        entry = torch.load(args.cache / f"fold-{split}.pt")
        train, held = load_fold(args.source, split)
        net = AirbenchNet(2, TrainConfig().student_widths or TrainConfig().widths)
        net.load_state_dict(entry["student_state"])
        float_graph = export_onnx(ProbabilityModel([net.eval()], flip_tta=True))
        cpu = torch.device("cpu")
        calibration = to_tensor(train.images, entry["mean"], entry["std"], cpu).contiguous().numpy()
        xh = to_tensor(held.images, entry["mean"], entry["std"], cpu).contiguous().numpy()
        float_probs = session(float_graph, args.threads).run(None, {INPUT_NAME: xh})[0]
        float_errors += int((float_probs.argmax(1) != held.labels).sum())
        images += len(xh)
        for name in args.settings:
            graph = quantize_int8(float_graph, calibration, INPUT_NAME, **SETTINGS[name])
            sess = session(graph, args.threads)
            probs = sess.run(None, {INPUT_NAME: xh})[0]
            check = compare(float_probs, probs, held.labels)
            t = totals[name]
            t["changed"] += round((1 - check.agreement) * check.images)
            t["int8_only"] += check.int8_only_errors
            t["float_only"] += check.float_only_errors
            t["errors"] += check.int8_errors
            t["abs_diff"] += check.mean_abs_diff * check.images
            latency[name].append(latency_ms(sess, xh[:1]))
        print(f"split {split} done", flush=True)
    print(f"{images} held-out images; float32 graph: {float_errors} errors")
    rows = []
    for name in args.settings:
        t = totals[name]
        row = {
            "setting": name,
            **t,
            "abs_diff": t["abs_diff"] / images,
            "latency_ms": float(np.median(latency[name])),
        }
        rows.append(row)
        print(
            f"{name:22s} changed {t['changed']:3d}  int8-only wrong {t['int8_only']:2d}  float-only wrong "
            f"{t['float_only']:2d}  errors {t['errors']:3d}  mean |dp| {row['abs_diff']:.5f}  "
            f"batch-1 {row['latency_ms']:.2f} ms"
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
