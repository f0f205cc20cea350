"""Frozen features of an MMPretrain classifier over a dataloader."""
from typing import Iterable, Tuple

import torch
from mmengine.utils import ProgressBar
from torch import Tensor, nn

from grpo_rm_mm.engine.hooks.image_size_check_hook import \
    check_equal_image_sizes


def _labels_of(data_samples) -> Tensor:
    labels = []
    for sample in data_samples:
        if 'gt_label' not in sample:
            raise KeyError('a data sample has no gt_label: the dataset must '
                           'be labelled to evaluate representations')
        labels.append(sample.gt_label.reshape(-1)[:1])
    return torch.cat(labels).long()


@torch.no_grad()
def extract_features(model: nn.Module,
                     dataloader: Iterable,
                     show_progress: bool = True) -> Tuple[Tensor, Tensor]:
    """What the classification head sees, for every sample of a loader.

    Runs ``model.data_preprocessor`` and ``model.extract_feat`` (backbone,
    then neck if any) in eval mode, batch by batch; the last output is the
    representation (e.g. the class token, or class token and mean patch
    token concatenated). A batch of images of different sizes is refused
    (:func:`~grpo_rm_mm.engine.hooks.check_equal_image_sizes`).

    Args:
        model (nn.Module): an MMPretrain ``ImageClassifier``.
        dataloader (Iterable): yields MMPretrain batches with ``gt_label``.
        show_progress (bool): draw a progress bar. Defaults to True.

    Returns:
        tuple[Tensor, Tensor]: (N, D) float32 features and (N,) int64
        labels, on the CPU, in the loader's order.
    """
    was_training = model.training
    model.eval()
    bar = None
    if show_progress and hasattr(dataloader, 'dataset'):
        bar = ProgressBar(len(dataloader.dataset))
    feats, labels = [], []
    try:
        for index, data in enumerate(dataloader):
            check_equal_image_sizes(data['inputs'], data.get('data_samples'),
                                    f'batch {index}')
            data = model.data_preprocessor(data, False)
            out = model.extract_feat(data['inputs'])
            out = out[-1] if isinstance(out, (tuple, list)) else out
            if not isinstance(out, Tensor) or out.dim() != 2:
                raise ValueError(
                    'the model\'s features must be (N, D) per sample; give '
                    'the classifier a neck that pools them (got '
                    f'{type(out).__name__})')
            feats.append(out.float().cpu())
            labels.append(_labels_of(data['data_samples']))
            if bar is not None:
                bar.update(len(out))
    finally:
        model.train(was_training)
    if not feats:
        raise ValueError('the dataloader yielded no samples')
    return torch.cat(feats), torch.cat(labels)
