"""scikit-learn's handwritten digits as an MMPretrain dataset.

1,797 real 8 x 8 grey images of the digits 0-9 (UCI optdigits test set),
shipped inside scikit-learn: a real dataset that needs no download. Images
are handed to the pipeline in memory as (H, W, 3) uint8 arrays (grey values
0-16 scaled to 0-255, repeated over three channels), so the pipeline starts
with ``PackInputs`` (or a resize) and no loading transform.
"""
from typing import Optional, Sequence

import numpy as np
from mmpretrain.datasets import BaseDataset
from mmpretrain.registry import DATASETS

#: the order of scikit-learn's ``target``
DIGIT_CLASSES = tuple(str(i) for i in range(10))
SPLITS = ('train', 'val')


def load_digits_arrays():
    """(images (N, 8, 8) float in [0, 16], labels (N,)) from scikit-learn."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as err:  # optional dependency
        raise ImportError(
            'DigitsDataset needs scikit-learn (pip install scikit-learn; '
            'listed in requirements/tests.txt)') from err
    digits = load_digits()
    return digits.images, digits.target


def split_indices(num: int, split: str, val_fraction: float,
                  split_seed: int) -> np.ndarray:
    """Indices of ``split`` in a seeded shuffle of ``range(num)``: the first
    ``round(num * val_fraction)`` are 'val', the rest 'train'."""
    if split not in SPLITS:
        raise ValueError(f"DigitsDataset split must be one of {SPLITS}, got "
                         f'{split!r}')
    if not 0 < val_fraction < 1:
        raise ValueError(f'DigitsDataset val_fraction must be in (0, 1), got '
                         f'{val_fraction}')
    order = np.random.RandomState(split_seed).permutation(num)
    num_val = int(round(num * val_fraction))
    return np.sort(order[:num_val] if split == 'val' else order[num_val:])


@DATASETS.register_module()
class DigitsDataset(BaseDataset):
    """scikit-learn's digits, split reproducibly into train / val.

    Args:
        split (str): 'train' or 'val'. Defaults to 'train'.
        digits (Sequence[int], optional): keep only these digits, labelled
            0..len(digits)-1 in the given order (e.g. ``(5, 6, 7, 8, 9)``
            for a fine-tuning task on other classes than pre-training's).
            Defaults to all ten.
        val_fraction (float): share of the 1,797 images in 'val' (before
            the digit filter, so both splits of every subset are disjoint).
            Defaults to 0.2.
        split_seed (int): seed of the shuffle that splits. Defaults to 0.
        invert (bool): white digits on black become black on white (a
            distribution shift for fine-tuning). Defaults to False.
        pipeline (Sequence): transforms, starting from the in-memory
            ``img``. Defaults to ``()``.
        **kwargs: other :class:`mmpretrain.datasets.BaseDataset` options.
    """

    def __init__(self,
                 split: str = 'train',
                 digits: Optional[Sequence[int]] = None,
                 val_fraction: float = 0.2,
                 split_seed: int = 0,
                 invert: bool = False,
                 pipeline: Sequence = (),
                 **kwargs):
        self.digits = tuple(range(10) if digits is None else digits)
        bad = [d for d in self.digits if d not in range(10)]
        if bad or len(set(self.digits)) != len(self.digits) or \
                len(self.digits) < 2:
            raise ValueError(f'DigitsDataset digits must be >= 2 distinct '
                             f'values in 0-9, got {digits}')
        self.split = split
        self.val_fraction = val_fraction
        self.split_seed = split_seed
        self.invert = invert
        split_indices(1, split, val_fraction, split_seed)  # check early
        metainfo = dict(classes=[DIGIT_CLASSES[d] for d in self.digits])
        super().__init__(
            ann_file='',
            metainfo={**metainfo, **kwargs.pop('metainfo', {})},
            pipeline=pipeline,
            **kwargs)

    def load_data_list(self):
        images, labels = load_digits_arrays()
        label_of = {digit: i for i, digit in enumerate(self.digits)}
        grey = np.rint(images * (255 / 16)).astype(np.uint8)
        if self.invert:
            grey = 255 - grey
        data_list = []
        for index in split_indices(len(images), self.split,
                                   self.val_fraction, self.split_seed):
            digit = int(labels[index])
            if digit not in label_of:
                continue
            img = np.repeat(grey[index][:, :, None], 3, axis=2)
            data_list.append(
                dict(img=img, gt_label=label_of[digit],
                     sample_idx=int(index)))
        return data_list
