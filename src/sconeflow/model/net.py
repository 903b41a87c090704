"""The airbench-style convolutional net (about 2M parameters at widths 64/256/256) and its wrappers.

Stem: a frozen 2x2 patch-whitening conv (3 -> 24 channels, then ReLU). Then three blocks of
conv3x3 -> maxpool2 -> BN -> ReLU -> conv3x3 -> BN -> ReLU, global max pool, a bias-free linear head
scaled by 1/9. :class:`ProbabilityModel` averages the softmax of one or more nets (optionally with a
horizontal-flip view): that is the graph exported to ONNX, so the artifact outputs probabilities.
"""

from __future__ import annotations

import torch
from torch import nn

WHITEN_KERNEL = 2
WHITEN_EPS = 5e-4
BN_MOMENTUM = 0.4
HEAD_SCALE = 1 / 9
PROB_FLOOR = 1e-30  # log(0) guard in the temperature-scaled ensemble (float32 normals go to 1e-38)


class ConvBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding="same", bias=False)
        self.pool = nn.MaxPool2d(2)
        self.bn1 = nn.BatchNorm2d(c_out, momentum=BN_MOMENTUM)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding="same", bias=False)
        self.bn2 = nn.BatchNorm2d(c_out, momentum=BN_MOMENTUM)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.bn1(self.pool(self.conv1(x))))
        return self.act(self.bn2(self.conv2(x)))


class AirbenchNet(nn.Module):
    """Logits for ``num_classes`` classes from normalized NCHW float input."""

    def __init__(self, num_classes: int, widths: tuple[int, int, int] = (64, 256, 256)) -> None:
        super().__init__()
        whiten_width = 2 * 3 * WHITEN_KERNEL**2
        self.whiten = nn.Conv2d(3, whiten_width, WHITEN_KERNEL, padding=0, bias=True)
        self.whiten.weight.requires_grad_(False)
        self.whiten.bias.requires_grad_(False)
        self.act = nn.ReLU()
        self.block1 = ConvBlock(whiten_width, widths[0])
        self.block2 = ConvBlock(widths[0], widths[1])
        self.block3 = ConvBlock(widths[1], widths[2])
        self.pool = nn.AdaptiveMaxPool2d(1)
        self.head = nn.Linear(widths[2], num_classes, bias=False)

    @torch.no_grad()
    def init_whitening(self, images: torch.Tensor) -> None:
        """Set the stem to the eigenbasis of the 2x2x3 patch covariance of ``images`` (normalized NCHW)."""
        c, h, w = images.shape[1], WHITEN_KERNEL, WHITEN_KERNEL
        patches = images.unfold(2, h, 1).unfold(3, w, 1)  # N, C, H', W', h, w
        patches = patches.transpose(1, 3).reshape(-1, c, h, w).float()
        flat = patches.reshape(len(patches), -1)
        flat = flat - flat.mean(dim=0, keepdim=True)
        cov = flat.T @ flat / len(flat)
        eigenvalues, eigenvectors = torch.linalg.eigh(cov)
        filters = (eigenvectors.T / torch.sqrt(eigenvalues.clamp_min(0) + WHITEN_EPS)[:, None]).reshape(
            -1, c, h, w
        )
        self.whiten.weight.copy_(torch.cat([filters, -filters]))
        self.whiten.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.whiten(x))
        x = self.block3(self.block2(self.block1(x)))
        x = self.pool(x).flatten(1)
        return self.head(x) * HEAD_SCALE


class ProbabilityModel(nn.Module):
    """Mean softmax over member nets (and over the flipped view when ``flip_tta``), temperature-scaled.

    One net without TTA: ``softmax(logits / T)``. Several nets or the flip view: the averaged
    probabilities ``p`` become ``softmax(log(p) / T)`` (temperature scaling of the ensemble's log-mean
    probabilities). Either way a positive ``T`` keeps the arg-max, so accuracy does not change; scaling
    each member before averaging would not guarantee that. ``T = 1`` leaves the graph as it was.
    """

    def __init__(self, members: list[nn.Module], flip_tta: bool = False, temperature: float = 1.0) -> None:
        super().__init__()
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.members = nn.ModuleList(members)
        self.flip_tta = flip_tta
        self.temperature = float(temperature)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.temperature
        if len(self.members) == 1 and not self.flip_tta:
            logits = self.members[0](x)
            return torch.softmax(logits / t if t != 1.0 else logits, dim=1)
        if self.flip_tta:
            n = x.shape[0]
            x = torch.cat([x, torch.flip(x, dims=[3])])
        probs = torch.stack([torch.softmax(m(x), dim=1) for m in self.members]).mean(dim=0)
        if self.flip_tta:
            probs = (probs[:n] + probs[n:]) / 2
        if t != 1.0:
            probs = torch.softmax(torch.log(probs.clamp_min(PROB_FLOOR)) / t, dim=1)
        return probs


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
