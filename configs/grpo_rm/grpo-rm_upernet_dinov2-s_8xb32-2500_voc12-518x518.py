# Reusing the GRPO-RM loss in a stock MMSeg model: UPerNet's decode head and
# its FCN auxiliary head both train with GRPO-RM; the old-model hook gives
# each head its own old logits.
_base_ = [
    './ce_upernet_dinov2-s_8xb32-2500_voc12-518x518.py',
    '../_base_/grpo_rm_voc.py'
]
model = dict(
    decode_head=dict(loss_decode={{_base_.grpo_rm_loss}}),
    auxiliary_head=dict(loss_decode={{_base_.grpo_rm_aux_loss}}))
custom_hooks = [{{_base_.grpo_rm_old_model}}]
