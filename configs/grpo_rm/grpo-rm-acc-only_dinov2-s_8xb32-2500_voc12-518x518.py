# Ablation: accuracy reward only (no uniformity reward).
_base_ = './grpo-rm_dinov2-s_8xb32-2500_voc12-518x518.py'
model = dict(decode_head=dict(loss_decode=dict(uniformity='none')))
