"""Input checks shared by the representation evaluators."""
from typing import Optional

import torch
from torch import Tensor


def check_features(features: Tensor,
                   labels: Optional[Tensor],
                   num_classes: int,
                   name: str,
                   dim: Optional[int] = None) -> Optional[Tensor]:
    """Refuse features / labels that would give a silently wrong accuracy.

    Args:
        features (Tensor): (N, D) features.
        labels (Tensor, optional): (N,) integer labels.
        num_classes (int): labels must lie in ``[0, num_classes)``.
        name (str): which split, for the messages.
        dim (int, optional): the feature width the split must have.

    Returns:
        Tensor | None: ``labels`` as int64.
    """
    if features.dim() != 2:
        raise ValueError(f'{name} features must be (N, D), got shape '
                         f'{tuple(features.shape)}')
    if dim is not None and features.shape[1] != dim:
        raise ValueError(f'{name} features have {features.shape[1]} '
                         f'dimensions, the training features {dim}')
    if not torch.isfinite(features).all():
        raise ValueError(f'{name} features contain NaN or inf')
    if labels is None:
        return None
    if labels.shape != (len(features), ):
        raise ValueError(f'{name} labels must be ({len(features)},), got '
                         f'shape {tuple(labels.shape)}')
    if labels.is_floating_point():
        raise ValueError(f'{name} labels must be integers, got {labels.dtype}')
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(
            f'{name} labels must be in [0, {num_classes}), got '
            f'[{int(labels.min())}, {int(labels.max())}]')
    return labels.long()


def accuracy(preds: Tensor, labels: Tensor) -> float:
    """Top-1 accuracy in percent."""
    if preds.shape != labels.shape or not len(labels):
        raise ValueError(f'{len(preds)} predictions for {len(labels)} labels')
    return 100.0 * (preds.cpu() == labels.cpu()).float().mean().item()
