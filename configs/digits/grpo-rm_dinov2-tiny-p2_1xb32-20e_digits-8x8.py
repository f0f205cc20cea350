# GRPO-RM twin of the digits config: each image is a group of 10 classes
# (Eq. 4 rewards, c = 1) and the old model lags (see configs/grpo_rm/README.md
# "Does it work?" for the refresh interval the study supports).
_base_ = ['./ce_dinov2-tiny-p2_1xb32-20e_digits-8x8.py']
model = dict(
    head=dict(loss=dict(_delete_=True, type='GRPORMLoss', log_stats=True)))
custom_hooks = [dict(type='GRPOOldModelHook', interval=10)]
