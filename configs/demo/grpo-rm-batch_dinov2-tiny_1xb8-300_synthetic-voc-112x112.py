# The demo's GRPO-RM with the advantages scaled by the std of the whole
# batch's rewards (scale_rewards='batch', TRL's option) instead of each
# pixel's own: the one change that brought GRPO-RM level with cross-entropy
# in the study (README, "Does it work?"). Everything else is the paper's
# method as the demo runs it (Eq. 4 rewards, background penalty, clip 0.2,
# old model refreshed every 10 iterations).
_base_ = './grpo-rm_dinov2-tiny_1xb8-300_synthetic-voc-112x112.py'
model = dict(decode_head=dict(loss_decode=dict(scale_rewards='batch')))
