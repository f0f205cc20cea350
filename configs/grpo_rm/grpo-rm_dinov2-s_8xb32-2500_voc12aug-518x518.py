# GRPO-RM on VOC 2012 + SBD ("aug").
_base_ = [
    './ce_dinov2-s_8xb32-2500_voc12aug-518x518.py',
    '../_base_/grpo_rm_voc.py'
]
model = dict(decode_head=dict(loss_decode={{_base_.grpo_rm_loss}}))
custom_hooks = [{{_base_.grpo_rm_old_model}}]
