# The cross-entropy baseline of configs/grpo_rm_dinov2_voc.py: everything
# identical except the loss and the old-model hook.
_base_ = './grpo_rm/ce_dinov2-s_8xb32-2500_voc12-518x518.py'
