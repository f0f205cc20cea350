# GRPO-RM: ce_dinov3-b_8xb128-100e_cifar10-224.py with the GRPO-RM loss and
# the lagging old model; nothing else differs.
_base_ = [
    './ce_dinov3-b_8xb128-100e_cifar10-224.py',
    '../_base_/grpo_rm_cls.py'
]
model = dict(head=dict(loss={{_base_.grpo_rm_loss}}))
custom_hooks = [{{_base_.grpo_rm_old_model}}]
