"""Screen augmentations cheaply: single members (no ensemble, no student) in 5-fold cross-validation.

A full job costs ~30 min of both cores per 5-fold cross-validation; one member per fold costs ~1/7 of
that. Each candidate trains one member per (fold, seed) on the other folds of the 1000 training images of
the shared mini dataset (the test split is never read) and predicts its held-out fold. The printed table
is the candidates' held-out errors and NLL summed over folds and seeds, with the paired difference to the
first candidate. A candidate that wins here is then judged by the full-job cross-validation
(``bench/train_holdout.py --folds 5``) before any default changes.

    python bench/member_screen.py --seeds 0 1 --candidates crop-flip affine color affine-color
    python bench/member_screen.py --candidates crop-flip+mini_batch_size=32 crop-flip+weight_decay=0.001
    python bench/member_screen.py --candidates crop-flip crop-flip+input_size=64+widths=[32,128,128]

A candidate is an augmentation, optionally followed by ``+FIELD=VALUE`` changes to the recipe, or by
``+input_size=S``: the member upsamples its 32x32 input to SxS (bilinear) inside the net, so augmentation
and the endpoint's input stay 32x32 (:class:`UpsampledNet`), or by ``+depth=3``: each block gains a third
conv3x3 -> BN -> ReLU after its second, with a residual from the block's pooled activation (as airbench96's
conv groups do; :class:`DeepNet`).
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from holdout_data import (  # noqa: E402  (bench/, beside this file)
    FOLD_SEED,
    FOLDS,
    add_run_options,
    load_training_images,
    source_missing,
)
from sconeflow.model.net import BN_MOMENTUM, AirbenchNet, ConvBlock  # noqa: E402
from sconeflow.model.recipe import TrainConfig  # noqa: E402
from sconeflow.model.train import (  # noqa: E402
    Augmenter,
    NetFactory,
    augment,
    augment_with_color,
    color_jitter,
    fit_network,
    normalization_stats,
    predict_logits_probs,
    random_uniform,
    resolve_precision,
    smoothed_labels,
    stratified_folds,
    to_tensor,
)


def affine(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Zoom in up to 1.25x, rotate up to 10 degrees, shift up to 4 px, flip half; reflect at the borders."""
    n = len(x)
    zoom = 1 / random_uniform(n, 1.0, 1.25, generator)
    angle = random_uniform(n, -math.pi / 18, math.pi / 18, generator)
    shift = random_uniform(2 * n, -0.25, 0.25, generator).view(n, 2)
    flip = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0)
    cos, sin = torch.cos(angle) * zoom, torch.sin(angle) * zoom
    theta = torch.stack(
        [torch.stack([cos * flip, -sin, shift[:, 0]], 1), torch.stack([sin * flip, cos, shift[:, 1]], 1)], 1
    ).to(x)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    return out.contiguous(memory_format=torch.channels_last)


CANDIDATES: dict[str, Augmenter] = {
    "crop-flip": augment,
    "affine": affine,
    "color": augment_with_color,  # the product's --color-jitter
    "affine-color": lambda x, g: color_jitter(affine(x, g), g),
}


class UpsampledNet(AirbenchNet):
    """The airbench net on its input upsampled to ``size`` x ``size`` (bilinear), whitening fitted there."""

    def __init__(self, num_classes: int, widths: tuple[int, int, int], size: int) -> None:
        super().__init__(num_classes, widths)
        self.size = size

    def upsampled(self, x: torch.Tensor) -> torch.Tensor:
        out = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False)
        return out.contiguous(memory_format=torch.channels_last)

    @torch.no_grad()
    def init_whitening(self, images: torch.Tensor) -> None:
        super().init_whitening(self.upsampled(images.float()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(self.upsampled(x))


class ResidualBlock(ConvBlock):
    """conv -> pool -> BN -> ReLU, then two conv -> BN -> ReLU with a residual around them."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__(c_in, c_out)
        self.conv3 = torch.nn.Conv2d(c_out, c_out, 3, padding="same", bias=False)
        self.bn3 = torch.nn.BatchNorm2d(c_out, momentum=BN_MOMENTUM)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.bn1(self.pool(self.conv1(x))))
        y = self.act(self.bn2(self.conv2(x)))
        return x + self.act(self.bn3(self.conv3(y)))


class DeepNet(AirbenchNet):
    """The airbench net with :class:`ResidualBlock` blocks (3 convs each instead of 2)."""

    def __init__(self, num_classes: int, widths: tuple[int, int, int] = (64, 256, 256)) -> None:
        super().__init__(num_classes, widths)
        c_in = self.block1.conv1.in_channels
        self.block1 = ResidualBlock(c_in, widths[0])
        self.block2 = ResidualBlock(widths[0], widths[1])
        self.block3 = ResidualBlock(widths[1], widths[2])


def parse_candidate(spec: str, base: TrainConfig) -> tuple[str, TrainConfig, NetFactory]:
    """``affine`` or ``crop-flip+mini_batch_size=32+input_size=64``: the augmentation, the recipe, the net."""
    name, *changes = spec.split("+")
    if name not in CANDIDATES:
        raise SystemExit(f"unknown augmentation {name!r}: one of {', '.join(CANDIDATES)}")
    fields = {}
    for change in changes:
        key, _, value = change.partition("=")
        fields[key] = json.loads(value)
    size = fields.pop("input_size", None)
    depth = int(fields.pop("depth", 2))
    if depth not in (2, 3):
        raise SystemExit(f"depth must be 2 (the default net) or 3, got {depth}")
    if size is not None and depth == 3:
        raise SystemExit("input_size and depth=3 do not combine")
    factory: NetFactory = AirbenchNet
    if size is not None:
        factory = functools.partial(UpsampledNet, size=int(size))
    elif depth == 3:
        factory = DeepNet
    return name, base.with_(**fields), factory


def screen(spec: str, data, seeds: list[int], base: TrainConfig) -> dict:
    name, config, factory = parse_candidate(spec, base)
    torch.set_num_threads(config.num_threads)
    device = torch.device("cpu")
    precision = resolve_precision(config.precision, device)
    folds = stratified_folds(data.labels, FOLDS, FOLD_SEED)
    y_all = torch.from_numpy(data.labels)
    wrong_plain = torch.zeros(len(seeds), len(y_all), dtype=torch.bool)
    wrong_flip = torch.zeros_like(wrong_plain)
    nll = 0.0
    t0 = time.perf_counter()
    for s, seed in enumerate(seeds):
        for fold in range(FOLDS):
            held = torch.from_numpy(folds == fold)
            mean, std = normalization_stats(data.images[~held.numpy()])
            x = to_tensor(data.images, mean, std, device)
            smoothed = smoothed_labels(y_all, 2, config.label_smoothing)
            net, _ = fit_network(
                x[~held],
                smoothed[~held],
                config,
                2,
                seed * 1000 + fold,
                epochs=config.epochs,
                stage=f"{name} seed {seed} fold {fold}",
                precision=precision,
                augmenter=CANDIDATES[name],
                net_factory=factory,
            )
            plain = predict_logits_probs(net, x[held])
            flip = predict_logits_probs(net, x[held], flip=True)
            yh = y_all[held]
            wrong_plain[s, held] = plain.argmax(1) != yh
            wrong_flip[s, held] = flip.argmax(1) != yh
            nll += float(-flip[torch.arange(len(yh)), yh].clamp_min(1e-12).log().sum())
    return {
        "candidate": spec,
        "precision": precision,
        "seeds": seeds,
        "predictions": int(wrong_plain.numel()),
        "errors": int(wrong_plain.sum()),
        "errors_flip_tta": int(wrong_flip.sum()),
        "errors_flip_tta_per_seed": [int(r.sum()) for r in wrong_flip],
        "nll_flip_tta": nll / wrong_flip.numel(),
        "wall_seconds": time.perf_counter() - t0,
        "_wrong_flip": wrong_flip,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument(
        "--candidates", nargs="+", default=list(CANDIDATES), metavar="AUGMENTATION[+FIELD=VALUE]"
    )
    parser.add_argument("--epochs", type=int, default=TrainConfig().epochs)
    add_run_options(parser)
    args = parser.parse_args()
    if source_missing(args.source):
        return 2
    config = TrainConfig(epochs=args.epochs, num_threads=args.threads)
    data = load_training_images(args.source)
    rows = []
    for name in args.candidates:
        row = screen(name, data, args.seeds, config)
        base = rows[0]["_wrong_flip"] if rows else row["_wrong_flip"]
        row["only_base_wrong"] = int((base & ~row["_wrong_flip"]).sum())
        row["only_candidate_wrong"] = int((row["_wrong_flip"] & ~base).sum())
        rows.append(row)
        print(
            f"{name:13s} errors {row['errors']:4d}  flip TTA {row['errors_flip_tta']:4d} "
            f"{row['errors_flip_tta_per_seed']} of {row['predictions']}  NLL {row['nll_flip_tta']:.4f}  "
            f"vs {args.candidates[0]}: -{row['only_base_wrong']} +{row['only_candidate_wrong']}  "
            f"{row['wall_seconds']:.0f} s",
            flush=True,
        )
    if args.json:
        args.json.write_text(
            json.dumps([{k: v for k, v in r.items() if not k.startswith("_")} for r in rows], indent=2)
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
