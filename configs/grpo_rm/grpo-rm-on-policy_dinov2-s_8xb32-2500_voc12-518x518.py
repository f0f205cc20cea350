# Ablation: on-policy (old = current, detached: interval=1) instead of a
# lagging old model. No copy and no extra forward pass.
_base_ = './grpo-rm_dinov2-s_8xb32-2500_voc12-518x518.py'
custom_hooks = [dict(type='GRPOOldModelHook', interval=1)]
