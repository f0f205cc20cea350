# The two pieces that turn a cross-entropy config into GRPO-RM. Used as
#   model = dict(decode_head=dict(loss_decode={{_base_.grpo_rm_loss}}))
#   custom_hooks = [{{_base_.grpo_rm_old_model}}]
grpo_rm_loss = dict(
    _delete_=True,
    type='GRPORMLoss',
    accuracy_reward=1.0,
    uniformity='prob',          # Eq. (4): r_uni_i = -q_i
    clip_eps=0.2,
    background_index=0,         # VOC background gets c/2
    background_scale=0.5,
    log_stats=True,
    loss_weight=1.0)
# for auxiliary heads (MMSeg's usual 0.4 weight)
grpo_rm_aux_loss = dict(grpo_rm_loss, loss_weight=0.4)
# Where the old logits come from: GRPOOldModelHook holds pi_theta_old, a
# copy of the whole segmentor refreshed every `interval` iterations. Before
# each training forward it runs the copy's extract_feat and heads on the
# same batch (no_grad) and hands every GRPORMLoss its own head's logits
# through GRPORMLoss.set_old_logits (the one channel; consumed by the next
# training call). Without the hook, or with interval=1, each loss uses the
# current logits, detached (on-policy), at no extra cost.
# interval: the paper does not say how often pi_theta_old is refreshed; 10
# iterations is this project's choice (see configs/grpo_rm/README.md).
grpo_rm_old_model = dict(type='GRPOOldModelHook', interval=10)
