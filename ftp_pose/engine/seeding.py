"""Deterministic data order: every clip's augmentation is seeded from (seed, epoch, dataset index).

So the data of a training step is the same for any number of DataLoader workers or DDP ranks, and a
resumed run sees exactly the data an uninterrupted one would.
"""
from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, DistributedSampler, Sampler


def seed_everything(seed: int) -> None:
    """Seed python ``random``, numpy and torch (cpu and cuda)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def item_seed(seed: int, epoch: int, index: int) -> int:
    """A 32-bit seed for dataset item ``index`` in ``epoch`` (independent of workers and ranks)."""
    return int(np.random.SeedSequence([seed, epoch, index]).generate_state(1)[0])


class EpochSeededDataset(Dataset):
    """Wraps a dataset so that item ``i`` of epoch ``e`` is drawn with RNGs seeded by (seed, e, i).

    Indexed with ``(epoch, i)`` pairs (what :class:`EpochSampler` yields), so persistent
    DataLoader workers need no state. ``random``, ``numpy.random`` and torch's CPU generator are
    seeded around each ``__getitem__`` and restored afterwards: the caller's RNG streams are untouched.
    """

    def __init__(self, dataset: Dataset, seed: int):
        self.dataset, self.seed = dataset, seed

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, key: tuple[int, int]) -> Any:
        epoch, index = key
        s = item_seed(self.seed, epoch, index)
        py, npy = random.getstate(), np.random.get_state()
        with torch.random.fork_rng(devices=[]):
            random.seed(s)
            np.random.seed(s)
            torch.default_generator.manual_seed(s)
            try:
                return self.dataset[index]
            finally:
                random.setstate(py)
                np.random.set_state(npy)


class EpochSampler(Sampler[tuple[int, int]]):
    """``(epoch, index)`` pairs of a DistributedSampler's epoch order, after the first ``skip``
    (mid-epoch resume). Call :meth:`set_epoch` before each epoch."""

    def __init__(self, base: DistributedSampler):
        self.base, self.epoch, self.skip = base, 0, 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        self.base.set_epoch(epoch)
        self.epoch, self.skip = epoch, skip

    def __iter__(self):
        return iter([(self.epoch, i) for i in list(self.base)[self.skip:]])

    def __len__(self) -> int:
        return max(0, len(self.base) - self.skip)


def worker_init(worker_id: int) -> None:
    """Seed numpy / random in a DataLoader worker from torch's per-worker seed."""
    s = torch.initial_seed() % 2**32
    np.random.seed(s)
    random.seed(s)
