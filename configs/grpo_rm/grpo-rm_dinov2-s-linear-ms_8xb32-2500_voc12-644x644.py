# DINOv2's "+ms" linear protocol trained with GRPO-RM.
_base_ = [
    './ce_dinov2-s-linear-ms_8xb32-2500_voc12-644x644.py',
    '../_base_/grpo_rm_voc.py'
]
model = dict(decode_head=dict(loss_decode={{_base_.grpo_rm_loss}}))
custom_hooks = [{{_base_.grpo_rm_old_model}}]
