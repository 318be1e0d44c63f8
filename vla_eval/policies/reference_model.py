"""The reference policy's network and input preprocessing, shared by training and evaluation.

One definition for both sides is the point: the training script (``training/train_reference.py``)
and the adapter (:mod:`vla_eval.policies.reference`) build inputs with these functions, so the
checkpoint sees at evaluation exactly the transformation it was trained on.

Inputs per step: the ``agentview`` and ``wrist`` images (area-downsampled to ``image_size``),
proprio (EEF position, the first two columns of the EEF rotation matrix, the finger
positions) and a bag-of-words embedding of the instruction over the training vocabulary.
Output: a chunk of ``chunk`` future actions in the env's native 7-D space, normalised.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F


@dataclass(frozen=True)
class NetConfig:
    cameras: tuple[str, ...] = ("agentview", "wrist")
    image_size: int = 64
    channels: tuple[int, ...] = (16, 32, 32, 32)
    hidden: int = 256
    proprio_dim: int = 11
    vocab: tuple[str, ...] = ()
    chunk: int = 4
    action_dim: int = 7

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "NetConfig":
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        for key in ("cameras", "channels", "vocab"):
            if key in known:
                known[key] = tuple(known[key])
        return cls(**known)


class SpatialSoftmax(nn.Module):
    """Expected (x, y) image position of each feature channel: where things are, not what they are."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        attn = torch.softmax(x.reshape(b, c, h * w), dim=-1)
        ys = torch.linspace(-1.0, 1.0, h, device=x.device, dtype=x.dtype)
        xs = torch.linspace(-1.0, 1.0, w, device=x.device, dtype=x.dtype)
        grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
        ex = (attn * grid_x.reshape(1, 1, -1)).sum(-1)
        ey = (attn * grid_y.reshape(1, 1, -1)).sum(-1)
        return torch.cat([ex, ey], dim=1)


class ConvEncoder(nn.Module):
    """Strided convolutions without normalisation layers: on two shared CPU cores GroupNorm's
    backward pass cost more than the convolutions themselves."""

    def __init__(self, channels: tuple[int, ...]):
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 3
        for i, c in enumerate(channels):
            stride = 2 if i < len(channels) - 1 else 1
            k = 5 if i == 0 else 3
            layers += [nn.Conv2d(c_in, c, k, stride=stride, padding=k // 2)]
            if i < len(channels) - 1:
                layers += [nn.ReLU()]
            c_in = c
        self.net = nn.Sequential(*layers)
        self.pool = SpatialSoftmax()
        self.out_dim = 2 * channels[-1] + channels[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.net(x)
        return torch.cat([self.pool(f), f.mean(dim=(2, 3))], dim=1)


class ReferenceNet(nn.Module):
    def __init__(self, cfg: NetConfig):
        super().__init__()
        self.cfg = cfg
        self.encoders = nn.ModuleList([ConvEncoder(cfg.channels) for _ in cfg.cameras])
        feat = sum(e.out_dim for e in self.encoders) + cfg.proprio_dim + len(cfg.vocab)
        self.head = nn.Sequential(
            nn.Linear(feat, cfg.hidden),
            nn.ReLU(),
            nn.Linear(cfg.hidden, cfg.hidden),
            nn.ReLU(),
            nn.Linear(cfg.hidden, cfg.chunk * cfg.action_dim),
        )

    def forward(self, images: torch.Tensor, proprio: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
        """``images`` (B, cameras, 3, H, W) in [0, 1]; returns normalised actions (B, chunk, action_dim)."""
        feats = [enc(images[:, i]) for i, enc in enumerate(self.encoders)]
        out = self.head(torch.cat([*feats, proprio, task], dim=1))
        return out.reshape(-1, self.cfg.chunk, self.cfg.action_dim)


# ----------------------------------------------------------------- preprocessing
def downsample(images: np.ndarray, size: int) -> np.ndarray:
    """(N, H, W, 3) uint8 -> (N, 3, size, size) uint8 by area averaging (integer factors only).

    Integer area averaging (rounding half up) is exact and library-independent, so training and evaluation agree
    bit for bit on the same rendered frame.
    """
    n, h, w, _ = images.shape
    if h % size or w % size:
        raise ValueError(f"image {h}x{w} is not an integer multiple of the policy's {size}x{size} input")
    fy, fx = h // size, w // size
    total = np.zeros((n, size, size, 3), dtype=np.uint32)
    for dy in range(fy):
        for dx in range(fx):
            total += images[:, dy::fy, dx::fx]
    return np.ascontiguousarray(((total + (fy * fx) // 2) // (fy * fx)).astype(np.uint8).transpose(0, 3, 1, 2))


def proprio_vector(eef_pos: np.ndarray, eef_quat_wxyz: np.ndarray, gripper_qpos: np.ndarray) -> np.ndarray:
    """(N, 11): position, the rotation matrix's first two columns (continuous, unlike a quaternion's sign), fingers."""
    w, x, y, z = (eef_quat_wxyz[:, i] for i in range(4))
    col0 = np.stack([1 - 2 * (y * y + z * z), 2 * (x * y + w * z), 2 * (x * z - w * y)], axis=1)
    col1 = np.stack([2 * (x * y - w * z), 1 - 2 * (x * x + z * z), 2 * (y * z + w * x)], axis=1)
    return np.concatenate([eef_pos, col0, col1, gripper_qpos], axis=1).astype(np.float32)


def words(text: str) -> list[str]:
    return re.findall(r"[a-z]+", text.lower())


def build_vocab(instructions: list[str]) -> tuple[str, ...]:
    return tuple(sorted({w for text in instructions for w in words(text)}))


def instruction_vector(texts: list[str], vocab: tuple[str, ...]) -> np.ndarray:
    """Bag of words over the training vocabulary, L2-normalised; unknown words are ignored."""
    index = {w: i for i, w in enumerate(vocab)}
    out = np.zeros((len(texts), len(vocab)), dtype=np.float32)
    for row, text in enumerate(texts):
        for w in words(text):
            if w in index:
                out[row, index[w]] = 1.0
        norm = np.linalg.norm(out[row])
        if norm > 0:
            out[row] /= norm
    return out


@dataclass
class Normalizer:
    """Mean/std of proprio and actions from the training demos, stored with the checkpoint."""

    proprio_mean: list[float] = field(default_factory=list)
    proprio_std: list[float] = field(default_factory=list)
    action_mean: list[float] = field(default_factory=list)
    action_std: list[float] = field(default_factory=list)

    def proprio(self, p: np.ndarray) -> np.ndarray:
        return ((p - np.asarray(self.proprio_mean, np.float32)) / np.asarray(self.proprio_std, np.float32)).astype(
            np.float32
        )

    def action(self, a: np.ndarray) -> np.ndarray:
        return ((a - np.asarray(self.action_mean, np.float32)) / np.asarray(self.action_std, np.float32)).astype(
            np.float32
        )

    def unaction(self, a: np.ndarray) -> np.ndarray:
        return a * np.asarray(self.action_std, np.float32) + np.asarray(self.action_mean, np.float32)


def image_tensor(stacked_uint8: np.ndarray) -> torch.Tensor:
    """(B, cameras, 3, H, W) uint8 -> float tensor in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(stacked_uint8)).float().div_(255.0)


def random_shift(x: torch.Tensor, pad: int, generator: torch.Generator) -> torch.Tensor:
    """DrQ-style augmentation: replicate-pad by ``pad`` and crop back at a random offset per image."""
    b, c, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad), mode="replicate")
    offs = torch.randint(0, 2 * pad + 1, (b, 2), generator=generator)
    return torch.stack([padded[i, :, oy : oy + h, ox : ox + w] for i, (oy, ox) in enumerate(offs.tolist())])
