"""The digits verifier: what a search on the digits testbeds optimises, never what judges it.

A search graded by the model it optimised reports its own over-fitting as progress, so the
verifier differs from the judge (`zsampling.digits.judge`) in both ways that matter: its
architecture (multinomial logistic regression on the 64 pixels, not a CNN) and its data (the
judge's *calibration* digits, which the judge's weights never trained on). It ships as
safetensors (``zsampling/models/verifier``); `train_verifier` rebuilds it deterministically
(``python docs/scripts/train_digit_verifier.py``, well under a second).
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

PACKAGED = Path(__file__).resolve().parents[1] / "models" / "verifier"
WEIGHT_DECAY = 1e-3


def fit(images: Tensor, labels: Tensor, steps: int = 500, seed: int = 0) -> nn.Linear:
    """Full-batch Adam on the cross-entropy plus a small L2 penalty (deterministic: no sampling
    of batches, a fixed initialisation)."""
    torch.manual_seed(seed)
    net = nn.Linear(64, 10).double()
    x, y = images.reshape(-1, 64).double(), labels.long()
    opt = torch.optim.Adam(net.parameters(), lr=0.05)
    for _ in range(steps):
        loss = nn.functional.cross_entropy(net(x), y) + WEIGHT_DECAY * net.weight.pow(2).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net.eval()


def train_verifier(out: Path = PACKAGED, seed: int = 0) -> dict[str, Any]:
    """Fit the verifier on the judge's calibration digits, save it to ``out`` (safetensors +
    JSON) and return its held-out accuracy (on the same real digits the judge is scored on)."""
    from safetensors.torch import save_file

    from zsampling.digits.data import held_out_halves, judge_splits

    _, calibration = judge_splits()
    net = fit(calibration.images, calibration.labels, seed=seed)
    _, real = held_out_halves()
    with torch.no_grad():
        accuracy = float(
            (net(real.images.reshape(-1, 64).double()).argmax(1) == real.labels).double().mean()
        )
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous() for k, v in net.state_dict().items()}
    save_file(state, out / "verifier.safetensors")
    meta = {"accuracy": accuracy, "seed": seed, "trained_on": "judge_splits()[1] (calibration)"}
    (out / "verifier.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return meta


@lru_cache(maxsize=1)
def load_verifier(folder: Path = PACKAGED) -> nn.Linear:
    """The shipped verifier (weights loaded with safetensors: no pickle), once per process."""
    from safetensors.torch import load_file

    net = nn.Linear(64, 10).double()
    net.load_state_dict(load_file(folder / "verifier.safetensors"))
    return net.eval()


@torch.no_grad()
def log_probabilities(images: Tensor) -> Tensor:
    """Log class probabilities of 8x8 images in [-1, 1], shape (N, 10), float64."""
    x = images.detach().to(device="cpu", dtype=torch.float64).reshape(-1, 64)
    return torch.log_softmax(load_verifier()(x), dim=1)
