"""The pieces of exact resume: generator states captured and restored, and
augmentation seeded by a sample's place in the data stream."""
import random

import numpy as np
import torch
from mmengine.dataset import DefaultSampler

from grpo_rm_mm.datasets.seeded import (SeededDataset, SeededIndex,
                                        SeededSampler, sample_seed)
from grpo_rm_mm.engine.hooks import (capture_random_states,
                                     restore_random_states)


def draws():
    return (random.random(), float(np.random.rand()),
            float(torch.rand(1)))


class DrawingDataset(torch.utils.data.Dataset):
    """Each sample is three random draws, as an augmentation makes them."""

    def __len__(self):
        return 8

    def __getitem__(self, index):
        return draws()


def test_captured_states_come_back():
    states = capture_random_states()
    first = draws()
    draws()
    restore_random_states(states)
    assert draws() == first


def test_sample_draws_depend_on_its_seed_only():
    dataset = SeededDataset(DrawingDataset())
    torch.manual_seed(1)
    np.random.seed(1)
    random.seed(1)
    a = dataset[SeededIndex(3, seed=sample_seed(0, 0, 1, 5))]
    torch.manual_seed(2)  # another process state: the same sample
    assert dataset[SeededIndex(3, seed=sample_seed(0, 0, 1, 5))] == a
    assert dataset[SeededIndex(3, seed=sample_seed(0, 0, 1, 6))] != a
    assert dataset[SeededIndex(3, seed=sample_seed(0, 0, 2, 5))] != a
    assert dataset[3] != dataset[3]  # a plain index: the process's draws


def test_hook_keeps_training_draws_apart_from_data_loading():
    from types import SimpleNamespace

    from grpo_rm_mm.engine.hooks import RandomStateHook
    hook, runner = RandomStateHook(), SimpleNamespace()
    dataset = SeededDataset(DrawingDataset())
    hook.before_train(runner)
    expected = draws()  # what the first iteration would draw
    for position in range(3):  # loading a batch seeds the generators
        dataset[SeededIndex(position, seed=sample_seed(0, 0, 0, position))]
    hook.before_train_iter(runner, 0)
    assert draws() == expected
    hook.after_train_iter(runner, 0)
    expected = draws()
    draws()  # a validation, a new epoch's loader...
    hook.before_train_iter(runner, 1)
    assert draws() == expected


def test_sampler_seeds_follow_epoch_and_position():
    dataset = DrawingDataset()
    sampler = SeededSampler(DefaultSampler(dataset, shuffle=True, seed=7),
                            seed=7)
    sampler.set_epoch(3)
    assert sampler.sampler.epoch == 3
    first = list(sampler)
    assert sorted(int(i) for i in first) == list(range(8))
    assert [i.seed for i in first] == [sample_seed(7, 0, 3, k)
                                       for k in range(8)]
    # a resumed epoch leaves out its trained part, the rest keeps its seeds
    sampler.skip_next(3)
    rest = list(sampler)
    assert [(int(i), i.seed) for i in rest] == \
        [(int(i), i.seed) for i in first[3:]]
    assert list(sampler) == first  # only the next epoch skips
