"""GRPO-RM losses: the pure objective and its MMSeg / MMPretrain modules."""
from .grpo_rm import (GRPORMFunction, compute_grpo_rm_loss, grpo_rm_loss,
                      grpo_rm_stats)
from .grpo_rm_cls_loss import GRPORMClsLoss
from .grpo_rm_seg_loss import GRPORMLoss, GRPORMLossBase

__all__ = [
    'grpo_rm_loss', 'compute_grpo_rm_loss', 'grpo_rm_stats',
    'GRPORMFunction', 'GRPORMLoss', 'GRPORMClsLoss', 'GRPORMLossBase'
]
