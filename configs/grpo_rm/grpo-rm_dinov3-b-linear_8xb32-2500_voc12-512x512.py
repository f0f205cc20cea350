# GRPO-RM with the frozen DINOv3 ViT-B/16: ce_dinov3-b-linear_8xb32-2500_
# voc12-512x512.py + loss + old model (which copies only the head).
_base_ = [
    './ce_dinov3-b-linear_8xb32-2500_voc12-512x512.py',
    '../_base_/grpo_rm_voc.py'
]
model = dict(decode_head=dict(loss_decode={{_base_.grpo_rm_loss}}))
custom_hooks = [{{_base_.grpo_rm_old_model}}]
