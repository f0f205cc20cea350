"""GRPO-RM losses: the functional form and its MMSeg / MMPretrain modules."""
from .grpo_rm_base import GRPORMLossBase
from .grpo_rm_cls_loss import GRPORMClsLoss
from .grpo_rm import GRPORMLoss, grpo_rm_loss

__all__ = ['grpo_rm_loss', 'GRPORMLoss', 'GRPORMClsLoss', 'GRPORMLossBase']
