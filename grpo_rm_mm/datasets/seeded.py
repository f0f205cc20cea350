"""Random augmentation drawn from the sample's place in the data stream.

Data pipelines (``RandomResizedCrop``, ``RandomFlip``, ...) draw from the
global ``random`` / ``numpy.random`` / ``torch`` generators of the process
that runs them: the main process with ``num_workers=0``, else a data-loader
worker seeded once when it starts (persistent workers live for the whole
run). How far those generators have advanced depends on everything the
process did before, which a run resumed from a checkpoint did not do, so its
augmentation differs from the uninterrupted run's.

:class:`SeededSampler` hands every index out as a :class:`SeededIndex` that
carries a seed made of the run's seed, the rank, the sampler's epoch and the
index's position in that epoch; :class:`SeededDataset` seeds the generators
with it before the sample's pipeline runs. A sample's random draws then
depend on where it stands in the data stream only: not on the worker that
loads it, the number of workers, or what ran before. ``build_runner`` wraps
every training data loader this way (``seed_train_samples``); in the main
process, :class:`~grpo_rm_mm.engine.hooks.RandomStateHook` puts the training
generators back before each iteration.
"""
import hashlib
import random
import struct
from typing import Iterator, Optional

import numpy as np
import torch
from mmengine.dist import get_rank, sync_random_seed
from mmengine.registry import DATA_SAMPLERS, DATASETS
from torch.utils.data import Dataset, Sampler


class SeededIndex(int):
    """A dataset index that carries the seed of its sample's random draws.

    It is an ``int`` everywhere else (list and array indexing, batch
    samplers), and survives the trip to a worker process.
    """

    def __new__(cls, index: int, seed: int) -> 'SeededIndex':
        obj = super().__new__(cls, index)
        obj.seed = seed
        return obj

    def __reduce__(self):
        return SeededIndex, (int(self), self.seed)


def sample_seed(seed: int, rank: int, epoch: int, position: int) -> int:
    """A 128-bit seed for one sample: a hash of the four keys, so that
    neighbouring samples, epochs and ranks get unrelated streams."""
    keys = struct.pack('<4Q', int(seed) % 2**64, rank, epoch, position)
    return int.from_bytes(
        hashlib.blake2b(keys, digest_size=16).digest(), 'little')


def seed_random(seed: int) -> None:
    """Seed ``random``, ``numpy.random`` and torch's CPU generator from a
    :func:`sample_seed` (CUDA generators are not touched)."""
    random.seed(seed)
    np.random.seed([(seed >> (32 * i)) & 0xFFFFFFFF for i in range(4)])
    torch.default_generator.manual_seed(seed % 2**63)


class SeededSampler(Sampler):
    """Wraps a sampler; yields its indices as :class:`SeededIndex`.

    The seed of the ``k``-th index of an epoch is
    ``sample_seed(seed, rank, epoch, k)``, the epoch being the last one
    given to :meth:`set_epoch` (``DistSamplerSeedHook`` in epoch loops,
    MMEngine's restarts of the loader in iteration loops; an
    ``InfiniteSampler`` is one endless epoch).

    Args:
        sampler (Sampler | dict): the sampler, or its config (built with
            ``dataset`` and ``seed``, as MMEngine builds samplers).
        dataset (Dataset): the dataset (for a sampler config).
        seed (int, optional): the run's seed; None (MMEngine passes it for
            ``diff_rank_seed``): one random seed shared by all ranks.
    """

    def __init__(self, sampler, dataset=None, seed: Optional[int] = None):
        if isinstance(sampler, dict):
            sampler = DATA_SAMPLERS.build(
                sampler, default_args=dict(dataset=dataset, seed=seed))
        self.sampler = sampler
        self.seed = sync_random_seed() if seed is None else seed
        self.rank = get_rank()
        self.epoch = 0
        #: indices of the next epoch to leave out (a resumed epoch's
        #: already trained part); see :meth:`skip_next`
        self._skip = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        if hasattr(self.sampler, 'set_epoch'):
            self.sampler.set_epoch(epoch)

    def skip_next(self, num_indices: int) -> None:
        """Leave out the first ``num_indices`` indices of the next epoch
        (their positions, and so the later samples' seeds, stay)."""
        self._skip = num_indices

    def __iter__(self) -> Iterator[SeededIndex]:
        epoch, skip, self._skip = self.epoch, self._skip, 0
        for position, index in enumerate(self.sampler):
            if position >= skip:
                yield SeededIndex(
                    index, sample_seed(self.seed, self.rank, epoch, position))

    def __len__(self) -> int:
        return len(self.sampler)


class SeededDataset(Dataset):
    """Wraps a dataset; a :class:`SeededIndex` :func:`seed_random` s the
    process's generators before its sample is loaded (they are left so:
    put them back where that matters). Anything else is passed to the
    dataset as it is, and so is every attribute (``metainfo``,
    ``pipeline``...).

    Args:
        dataset (Dataset | dict): the dataset, or its config.
    """

    def __init__(self, dataset):
        if isinstance(dataset, dict):
            dataset = DATASETS.build(dataset)
        self.dataset = dataset

    def full_init(self) -> None:
        if hasattr(self.dataset, 'full_init'):
            self.dataset.full_init()

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index):
        seed = getattr(index, 'seed', None)
        if seed is None:
            return self.dataset[index]
        seed_random(seed)
        return self.dataset[int(index)]

    def __getattr__(self, name: str):
        if name == 'dataset' or name.startswith('__'):  # unpickling
            raise AttributeError(name)
        return getattr(self.dataset, name)


def seeded_loader_cfg(loader: dict) -> dict:
    """A data loader config whose dataset and sampler are wrapped in
    :class:`SeededDataset` and :class:`SeededSampler` (once)."""
    loader = dict(loader)
    dataset, sampler = loader.get('dataset'), loader.get('sampler')
    if not (isinstance(dataset, dict) and isinstance(sampler, dict)) or \
            dataset.get('type') is SeededDataset:
        return loader  # built objects are used as they are
    loader['dataset'] = dict(type=SeededDataset, dataset=dataset)
    loader['sampler'] = dict(type=SeededSampler, sampler=sampler)
    return loader


def find_seeded_sampler(loader) -> Optional[SeededSampler]:
    """The :class:`SeededSampler` of a built data loader, if any."""
    for sampler in (getattr(loader, 'sampler', None),
                    getattr(getattr(loader, 'batch_sampler', None),
                            'sampler', None)):
        if isinstance(sampler, SeededSampler):
            return sampler
    return None
