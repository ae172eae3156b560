"""Rebuild the digits verifier (zsampling/models/verifier) deterministically:
``python docs/scripts/train_digit_verifier.py`` (well under a second on one thread)."""

from __future__ import annotations

import json

import torch

from zsampling.digits.verifier import train_verifier

if __name__ == "__main__":
    torch.set_num_threads(1)
    print(json.dumps(train_verifier(), indent=2))
