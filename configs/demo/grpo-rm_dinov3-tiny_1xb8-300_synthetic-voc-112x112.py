# GRPO-RM with the background penalty and a lagging old model on the tiny
# DINOv3-architecture backbone (`make demo DEMO_CONFIG=this file`); its
# cross-entropy twin differs only in the loss and the hook.
_base_ = [
    './ce_dinov3-tiny_1xb8-300_synthetic-voc-112x112.py',
    '../_base_/grpo_rm_voc.py'
]
model = dict(decode_head=dict(loss_decode={{_base_.grpo_rm_loss}}))
custom_hooks = [{{_base_.grpo_rm_old_model}}]
