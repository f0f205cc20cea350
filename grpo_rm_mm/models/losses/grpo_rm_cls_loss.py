"""GRPO-RM as an MMPretrain loss (``ClsHead`` / ``LinearClsHead``)."""
from typing import Optional, Union

from mmpretrain.registry import MODELS
from torch import Tensor

from .grpo_rm_seg_loss import GRPORMLossBase


@MODELS.register_module('GRPORMLoss')
class GRPORMClsLoss(GRPORMLossBase):
    """GRPO-RM loss for MMPretrain classification heads.

    Registered in MMPretrain's ``MODELS`` as ``'GRPORMLoss'``::

        head=dict(type='LinearClsHead', num_classes=100, in_channels=384,
                  loss=dict(type='GRPORMLoss'))

    Each image is a group of C outputs (see
    :func:`grpo_rm_mm.models.losses.grpo_rm_loss`). Targets are class
    indices (N,) or, from batch augmentations such as mixup / cutmix, scores
    (N, C): then the accuracy reward of class i is ``c * s_i * target_i``,
    the expectation of the index reward over ``y ~ target`` (a
    generalisation of the paper's reward; not with ``'deviation'``). No
    label is ignored (class 255 is a class). ``ClsHead`` passes
    ``avg_factor`` = batch size, the denominator of the mean.

    Args: see :class:`~.grpo_rm_seg_loss.GRPORMLossBase`.
    """

    def forward(self,
                cls_score: Tensor,
                target: Tensor,
                weight: Optional[Tensor] = None,
                avg_factor: Optional[Union[float, Tensor]] = None,
                reduction_override: Optional[str] = None,
                old_logits: Optional[Tensor] = None,
                **kwargs) -> Tensor:
        """Compute the loss.

        Args:
            cls_score (Tensor): logits (N, C).
            target (Tensor): class indices (N,) or scores (N, C).
            weight (Tensor, optional): per-sample weight (N,).
            avg_factor (float | Tensor, optional): denominator of the mean.
            reduction_override (str, optional): 'mean', 'sum' or 'none'.
            old_logits (Tensor, optional): old-model logits (N, C); take
                precedence over :meth:`set_old_logits`.

        Returns:
            Tensor: the weighted loss.
        """
        old = self._take_old_logits(cls_score, old_logits)
        return self._grpo(cls_score, target, old, weight, avg_factor,
                          reduction_override, None)
