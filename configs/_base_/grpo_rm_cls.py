# The two pieces that turn a cross-entropy classification config into
# GRPO-RM (each image is a group of C classes). Used as
#   model = dict(head=dict(loss={{_base_.grpo_rm_loss}}))
#   custom_hooks = [{{_base_.grpo_rm_old_model}}]
grpo_rm_loss = dict(
    _delete_=True,
    type='GRPORMLoss',
    accuracy_reward=1.0,
    uniformity='prob',          # Eq. (4): r_uni_i = -q_i
    clip_eps=0.2,
    log_stats=True,
    loss_weight=1.0)
# interval: the paper does not say how often pi_theta_old is refreshed; 10
# iterations is this project's choice (as for VOC). With a frozen backbone
# the hook copies only the neck and head.
grpo_rm_old_model = dict(type='GRPOOldModelHook', interval=10)
