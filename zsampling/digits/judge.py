"""The independent judge of generated digits: a small CNN that never saw a generated image.

It is trained on real training digits only (``data.judge_splits()[0]``), its softmax temperature
is fitted on real digits it did not train on (``calibration``), and its accuracy and expected
calibration error are measured on held-out real digits (``data.held_out_halves()[1]``). So its
probabilities mean what they say, which is what lets a mean log-probability serve as an
unsaturated alignment statistic where accuracy is already 100%.

It gives three things:

- ``probabilities(images)``: calibrated class probabilities (alignment);
- ``features(images)``: its 64-d penultimate activations, the space set-level fidelity is
  measured in (`zsampling.evaluation.fidelity`);
- ``typicality(images, labels)``: per item, the log-density of its features under a Gaussian fitted
  to the reference digits of its class. This rewards prototypical samples, so it is reported as
  *typicality*, never used to rank fidelity (real held-out digits score worse on it than many
  generated sets: it fails the sanity gate).

The weights ship as safetensors (``zsampling/models/judge``); ``zsampling train-judge`` rebuilds
them deterministically.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from zsampling.core.extras import extra
from zsampling.digits.data import held_out_halves, judge_splits

PACKAGED = Path(__file__).resolve().parents[1] / "models" / "judge"
FEATURES = 64


class JudgeNet(nn.Module):
    """conv 32 -> conv 64 -> pool -> 64 features -> 10 logits, on 1x8x8 images in [-1, 1]."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(32, 64, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(64 * 4 * 4, FEATURES),
            nn.ReLU(),
        )
        self.head = nn.Linear(FEATURES, 10)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.body(x))


def _shifted(images: Tensor, generator: torch.Generator) -> Tensor:
    """Each image moved by up to one pixel in each direction (zero-filled): cheap augmentation
    that keeps the judge from keying on exact positions the generator may miss by a pixel."""
    out = torch.full_like(images, -1.0)
    padded = torch.nn.functional.pad(images, (1, 1, 1, 1), value=-1.0)
    dy, dx = torch.randint(0, 3, (2, images.shape[0]), generator=generator)
    for k in range(images.shape[0]):
        out[k] = padded[k, :, dy[k] : dy[k] + 8, dx[k] : dx[k] + 8]
    return out


def fit_net(epochs: int = 60, seed: int = 0) -> JudgeNet:
    """Train `JudgeNet` on the real ``fit`` digits (deterministic on one thread, ~15 s)."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    fit, _ = judge_splits()
    net = JudgeNet()
    opt = torch.optim.Adam(net.parameters(), lr=2e-3, weight_decay=1e-4)
    for _ in range(epochs):
        order = torch.randperm(len(fit.labels), generator=gen)
        for start in range(0, len(order), 64):
            idx = order[start : start + 64]
            x = _shifted(fit.images[idx], gen)
            loss = nn.functional.cross_entropy(net(x), fit.labels[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return net.eval()


def fit_temperature(logits: Tensor, labels: Tensor) -> float:
    """The softmax temperature minimising the negative log-likelihood of ``labels`` (scipy)."""
    with extra("eval", "Calibrating the digits judge"):
        from scipy.optimize import minimize_scalar

    z, y = logits.double(), labels.long()

    def nll(log_t: float) -> float:
        return float(nn.functional.cross_entropy(z / np.exp(log_t), y))

    return float(np.exp(minimize_scalar(nll, bounds=(-3.0, 3.0), method="bounded").x))


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = 10) -> float:
    """ECE: the bin-weighted gap between confidence and accuracy of the top class."""
    conf, pred = probs.max(1), probs.argmax(1)
    edges = np.linspace(0.0, 1.0, bins + 1)
    total = 0.0
    for lo, hi in itertools.pairwise(edges):
        inside = (conf > lo) & (conf <= hi)
        if inside.any():
            gap = abs(float((pred[inside] == labels[inside]).mean()) - float(conf[inside].mean()))
            total += inside.mean() * gap
    return float(total)


@dataclass(frozen=True)
class Judge:
    """A trained `JudgeNet` with its temperature and its measured quality."""

    net: JudgeNet
    temperature: float
    accuracy: float
    """Top-1 accuracy on the held-out real digits (``held_out_halves()[1]``)."""
    ece: float
    """Expected calibration error on the same digits, after temperature scaling."""

    @torch.no_grad()
    def logits(self, images: Tensor) -> Tensor:
        x = images.detach().to(torch.float32).reshape(-1, 1, 8, 8).cpu()
        return self.net(x).double() / self.temperature

    def probabilities(self, images: Tensor) -> np.ndarray:
        """Calibrated class probabilities, shape (N, 10)."""
        return torch.softmax(self.logits(images), dim=1).numpy()

    @torch.no_grad()
    def features(self, images: Tensor) -> np.ndarray:
        """Penultimate activations, shape (N, 64): the space fidelity is measured in."""
        x = images.detach().to(torch.float32).reshape(-1, 1, 8, 8).cpu()
        return self.net.body(x).double().numpy()

    @cached_property
    def _class_gaussians(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        ref, _ = held_out_halves()
        feats, labels = self.features(ref.images), ref.labels.numpy()
        means, precisions, logdets = [], [], []
        for c in range(10):
            fc = feats[labels == c]
            cov = np.cov(fc, rowvar=False) + 0.05 * np.eye(FEATURES)  # ~18 digits per class
            means.append(fc.mean(0))
            precisions.append(np.linalg.inv(cov))
            logdets.append(np.linalg.slogdet(cov)[1])
        return np.stack(means), np.stack(precisions), np.array(logdets)

    def typicality(self, images: Tensor, labels: np.ndarray) -> np.ndarray:
        """Per item: log-density of its features under its class's reference Gaussian."""
        means, precisions, logdets = self._class_gaussians
        f = self.features(images)
        d = f - means[labels]
        maha = np.einsum("ni,nij,nj->n", d, precisions[labels], d)
        return -0.5 * (maha + logdets[labels] + FEATURES * np.log(2 * np.pi))


def train_judge(out: Path = PACKAGED, seed: int = 0) -> Judge:
    """Fit the net, its temperature and its scores; save them to ``out`` (safetensors + JSON)."""
    from safetensors.torch import save_file

    net = fit_net(seed=seed)
    _, calibration = judge_splits()
    with torch.no_grad():
        temperature = fit_temperature(net(calibration.images), calibration.labels)
    judge = _scored(net, temperature)
    out.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, out / "judge.safetensors")
    meta = {"temperature": temperature, "accuracy": judge.accuracy, "ece": judge.ece, "seed": seed}
    (out / "judge.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return judge


def _scored(net: JudgeNet, temperature: float) -> Judge:
    _, real = held_out_halves()
    unscored = Judge(net, temperature, float("nan"), float("nan"))
    probs, labels = unscored.probabilities(real.images), real.labels.numpy()
    accuracy = float((probs.argmax(1) == labels).mean())
    return Judge(net, temperature, accuracy, expected_calibration_error(probs, labels))


def load_judge(folder: Path = PACKAGED) -> Judge:
    """The judge from a folder `train_judge` wrote (weights loaded with safetensors: no pickle)."""
    from safetensors.torch import load_file

    net = JudgeNet()
    net.load_state_dict(load_file(folder / "judge.safetensors"))
    meta = json.loads((folder / "judge.json").read_text(encoding="utf-8"))
    return _scored(net.eval(), float(meta["temperature"]))


@lru_cache(maxsize=1)
def judge() -> Judge:
    """The shipped judge (loaded once per process)."""
    return load_judge()
