# The DINOv3 ViT-S/16 linear protocol trained with GRPO-RM. The old model
# copies only the head: the frozen backbone runs once per step for both
# policies.
_base_ = [
    './ce_dinov3-s-linear_8xb32-2500_voc12-512x512.py',
    '../_base_/grpo_rm_voc.py'
]
model = dict(decode_head=dict(loss_decode={{_base_.grpo_rm_loss}}))
custom_hooks = [{{_base_.grpo_rm_old_model}}]
