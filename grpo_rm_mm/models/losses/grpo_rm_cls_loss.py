"""GRPO-RM as an MMPretrain loss (``ClsHead`` / ``LinearClsHead``)."""
from typing import Optional, Union

from mmpretrain.registry import MODELS
from torch import Tensor

from .grpo_rm_base import GRPORMLossBase
from .grpo_rm import grpo_rm_loss


@MODELS.register_module('GRPORMLoss')
class GRPORMClsLoss(GRPORMLossBase):
    """GRPO-RM loss for MMPretrain classification heads.

    Registered in MMPretrain's ``MODELS`` as ``'GRPORMLoss'``::

        head=dict(type='LinearClsHead', num_classes=100, in_channels=384,
                  loss=dict(type='GRPORMLoss'))

    Each image is a group of C outputs (:func:`~.grpo_rm_loss`). Targets
    are class indices (N,) or, from batch augmentations such as mixup /
    cutmix, scores (N, C) summing to 1: the accuracy reward of class i is
    then ``c * s_i * target_i``. No label is ignored (255 is a class).
    ``ClsHead`` passes ``avg_factor`` = batch size.

    Args: see :class:`~.grpo_rm_base.GRPORMLossBase`.
    """

    criterion = staticmethod(grpo_rm_loss)

    def forward(self,
                cls_score: Tensor,
                target: Tensor,
                weight: Optional[Tensor] = None,
                avg_factor: Optional[Union[float, Tensor]] = None,
                reduction_override: Optional[str] = None,
                old_logits: Optional[Tensor] = None,
                **kwargs) -> Tensor:
        """Compute the loss of logits (N, C) and targets (N,) or (N, C)."""
        return self._loss(cls_score, target, old_logits, weight, avg_factor,
                          reduction_override, None)
