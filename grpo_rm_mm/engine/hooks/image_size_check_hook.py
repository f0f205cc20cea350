"""Refuse classification batches of images of different sizes."""
from typing import Optional, Sequence

from mmengine.hooks import Hook
from mmengine.registry import HOOKS
from torch import Tensor

#: how many differing images a message lists
LISTED = 3


class ImageSizeError(ValueError):
    """A classification batch holds images of different sizes."""


def _name(sample, index: int) -> str:
    path = getattr(sample, 'img_path', None) if sample is not None else None
    return path or f'sample {index}'


def check_equal_image_sizes(inputs, data_samples: Optional[Sequence] = None,
                            where: str = 'a batch') -> None:
    """Raise :class:`ImageSizeError` if the images of a batch (a list of
    (C, H, W) tensors, as ``pseudo_collate`` gives them) differ in size.

    MMPretrain's ``ClsDataPreprocessor`` would zero-pad them to the largest
    size: the smaller images then reach the classifier with black borders,
    and its accuracy is silently wrong.

    Args:
        inputs (list[Tensor] | Tensor): the batch's images (a stacked tensor
            has one size and passes).
        data_samples (Sequence, optional): their data samples, whose
            ``img_path`` names the images in the message.
        where (str): which batch, for the message.
    """
    if isinstance(inputs, Tensor) or not inputs:
        return
    sizes = [tuple(img.shape[-2:]) for img in inputs]
    if len(set(sizes)) == 1:
        return
    first = sizes[0]
    odd = [i for i, size in enumerate(sizes) if size != first]
    samples = list(data_samples or [None] * len(inputs))
    listed = [f'{h}x{w} ({_name(samples[i], i)})' for i, (h, w) in
              [(0, first)] + [(i, sizes[i]) for i in odd[:LISTED]]]
    more = f' and {len(odd) - LISTED} more' if len(odd) > LISTED else ''
    height, width = max(h for h, _ in sizes), max(w for _, w in sizes)
    raise ImageSizeError(
        f'{where} holds images of different sizes (H x W): '
        f"{', '.join(listed)}{more}. The data preprocessor would zero-pad "
        f'them to {height}x{width}, so the classifier would see black '
        'borders. Give the pipeline a transform that makes every image the '
        "same size before PackInputs, e.g. dict(type='Resize', scale=(224, "
        "224)), or RandomResizedCrop / CenterCrop")


@HOOKS.register_module()
class ImageSizeCheckHook(Hook):
    """Runs :func:`check_equal_image_sizes` on every training, validation
    and test batch of a classification run (attached by
    :func:`grpo_rm_mm.utils.build_runner` to MMPretrain configs)."""

    priority = 'VERY_HIGH'

    @staticmethod
    def _check(data_batch, mode: str, batch_idx: int) -> None:
        if isinstance(data_batch, dict):
            check_equal_image_sizes(data_batch.get('inputs'),
                                    data_batch.get('data_samples'),
                                    f'{mode} batch {batch_idx}')

    def before_train_iter(self, runner, batch_idx: int,
                          data_batch=None) -> None:
        self._check(data_batch, 'train', batch_idx)

    def before_val_iter(self, runner, batch_idx: int,
                        data_batch=None) -> None:
        self._check(data_batch, 'val', batch_idx)

    def before_test_iter(self, runner, batch_idx: int,
                         data_batch=None) -> None:
        self._check(data_batch, 'test', batch_idx)
