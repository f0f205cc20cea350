# Variant: advantages scaled by the std of all the batch's rewards
# (scale_rewards='batch', TRL's option) instead of each image's own std (the
# paper). The study's only change that matched cross-entropy (README, "Does
# it work?"; this folder's README, "When to use which").
_base_ = './grpo-rm_dinov2-s_8xb128-100e_tiny-imagenet-224.py'
model = dict(head=dict(loss=dict(scale_rewards='batch')))
