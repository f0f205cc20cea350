# DINOv2's linear protocol trained with GRPO-RM. The old model copies only the
# head: the frozen backbone runs once per step for both policies.
_base_ = [
    './ce_dinov2-s-linear_8xb128-100e_stl10-224.py',
    '../_base_/grpo_rm_cls.py'
]
model = dict(head=dict(loss={{_base_.grpo_rm_loss}}))
custom_hooks = [{{_base_.grpo_rm_old_model}}]
