"""An independent judge for generated digits: alignment and realism.

A small MLP classifier trained only on the real training digits (never on generated ones),
scored on the held-out test digits. Alignment of a sample is the judge's probability for the
requested class (and whether its top class is the requested one). Realism uses the judge's hidden
features: per item, the log-density of its features under a Gaussian fitted to the held-out real
digits of the requested class; per set, the Frechet distance between the features of the set and
those of the held-out digits.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from scipy import linalg

from zsampling.digits.data import splits


@dataclass(frozen=True)
class DigitJudge:
    weights: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # W1, b1, W2, b2
    accuracy: float
    class_means: np.ndarray  # (10, H)
    class_precisions: np.ndarray  # (10, H, H)
    class_logdets: np.ndarray  # (10,)
    test_mean: np.ndarray
    test_cov: np.ndarray

    def features(self, images: torch.Tensor) -> np.ndarray:
        """Hidden-layer activations of images in [-1, 1], shape (N, H)."""
        w1, b1, _, _ = self.weights
        x = images.detach().to(torch.float64).reshape(images.shape[0], -1).cpu().numpy()
        return np.maximum(x @ w1 + b1, 0.0)

    def probabilities(self, images: torch.Tensor) -> np.ndarray:
        _, _, w2, b2 = self.weights
        logits = self.features(images) @ w2 + b2
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(axis=1, keepdims=True)

    def realism(self, images: torch.Tensor, labels: np.ndarray) -> np.ndarray:
        """Per item: log-density of its features under its class's real-digit Gaussian."""
        f = self.features(images)
        d = f - self.class_means[labels]
        maha = np.einsum("ni,nij,nj->n", d, self.class_precisions[labels], d)
        return -0.5 * (maha + self.class_logdets[labels] + f.shape[1] * np.log(2 * np.pi))

    def frechet(self, images: torch.Tensor) -> float:
        """Frechet distance between the features of ``images`` and the held-out real digits."""
        f = self.features(images)
        ridge = 1e-6 * np.eye(f.shape[1])  # dead ReLU units make both covariances singular
        mu, cov = f.mean(0), np.cov(f, rowvar=False) + ridge
        covmean = linalg.sqrtm(cov @ (self.test_cov + ridge))
        covmean = covmean.real if np.iscomplexobj(covmean) else covmean
        diff = mu - self.test_mean
        return float(diff @ diff + np.trace(cov + self.test_cov - 2 * covmean))


@lru_cache(maxsize=1)
def judge() -> DigitJudge:
    """Train (deterministically, about a second) the judge on the real training digits."""
    from sklearn.neural_network import MLPClassifier

    train, test = splits()
    x_train = train.images.reshape(len(train.labels), -1).numpy().astype(np.float64)
    x_test = test.images.reshape(len(test.labels), -1).numpy().astype(np.float64)
    clf = MLPClassifier(hidden_layer_sizes=(32,), alpha=1e-3, max_iter=600, random_state=0)
    clf.fit(x_train, train.labels.numpy())
    accuracy = float(clf.score(x_test, test.labels.numpy()))
    w1, w2 = clf.coefs_
    b1, b2 = clf.intercepts_
    base = DigitJudge((w1, b1, w2, b2), accuracy, *[np.empty(0)] * 5)
    feats = base.features(test.images)
    labels = test.labels.numpy()
    h = feats.shape[1]
    means, precs, logdets = [], [], []
    for c in range(10):
        fc = feats[labels == c]
        cov = np.cov(fc, rowvar=False) + 0.05 * np.eye(h)  # shrinkage: ~36 digits per class
        means.append(fc.mean(0))
        precs.append(np.linalg.inv(cov))
        logdets.append(np.linalg.slogdet(cov)[1])
    return DigitJudge(
        (w1, b1, w2, b2),
        accuracy,
        np.stack(means),
        np.stack(precs),
        np.array(logdets),
        feats.mean(0),
        np.cov(feats, rowvar=False),
    )
