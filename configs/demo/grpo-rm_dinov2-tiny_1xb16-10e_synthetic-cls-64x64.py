# GRPO-RM classification demo (MMPretrain): the CE twin with MMPretrain's
# GRPORMLoss (each image is a group of 5 classes) and the old-model hook.
_base_ = ['./ce_dinov2-tiny_1xb16-10e_synthetic-cls-64x64.py']
model = dict(
    head=dict(loss=dict(_delete_=True, type='GRPORMLoss', log_stats=True)))
custom_hooks = [dict(type='GRPOOldModelHook', interval=5)]
