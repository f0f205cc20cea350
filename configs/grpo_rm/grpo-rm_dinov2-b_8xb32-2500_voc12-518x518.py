# GRPO-RM with DINOv2 ViT-B/14: ce_dinov2-b_8xb32-2500_voc12-518x518.py +
# loss + old model.
_base_ = [
    './ce_dinov2-b_8xb32-2500_voc12-518x518.py',
    '../_base_/grpo_rm_voc.py'
]
model = dict(decode_head=dict(loss_decode={{_base_.grpo_rm_loss}}))
custom_hooks = [{{_base_.grpo_rm_old_model}}]
