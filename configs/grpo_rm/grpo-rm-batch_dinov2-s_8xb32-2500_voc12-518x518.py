# Variant: advantages scaled by the std of all the batch's rewards
# (scale_rewards='batch', TRL's option) instead of each pixel's own std (the
# paper). The study's only change that matched cross-entropy (README, "Does
# it work?"; this folder's README, "When to use which").
_base_ = './grpo-rm_dinov2-s_8xb32-2500_voc12-518x518.py'
model = dict(decode_head=dict(loss_decode=dict(scale_rewards='batch')))
