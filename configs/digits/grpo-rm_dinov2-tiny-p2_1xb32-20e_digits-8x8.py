# GRPO-RM twin of the digits config: each image is a group of 10 classes
# (Eq. 4 rewards, c = 1). On-policy (interval 1: no old-model copy, no extra
# forward): trained from scratch on the digits it was the best GRPO-RM
# setting of the study (89.7 +- 1.7 % vs 67.3 +- 8.4 % with a refresh every
# 10 iterations, 3 seeds; CE 91.5 +- 0.7 %), see README "Does it work?".
_base_ = ['./ce_dinov2-tiny-p2_1xb32-20e_digits-8x8.py']
model = dict(
    head=dict(loss=dict(_delete_=True, type='GRPORMLoss', log_stats=True)))
custom_hooks = [dict(type='GRPOOldModelHook', interval=1)]
