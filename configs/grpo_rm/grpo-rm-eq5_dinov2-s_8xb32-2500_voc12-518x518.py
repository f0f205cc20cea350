# Ablation: the Eq. (5) uniformity variant (see method.md).
_base_ = './grpo-rm_dinov2-s_8xb32-2500_voc12-518x518.py'
model = dict(decode_head=dict(loss_decode=dict(uniformity='deviation')))
