# The paper's recipe: Adam, lr decaying from 1e-3 to 1e-5 at batch 256.
# `auto_scale_lr` scales the lr by (GPUs x batch per GPU) / 256, and the
# decay ends at 1% of the scaled lr. 2500 iterations at batch 256 see as many
# images as DINOv2's 40k iterations at batch 16.
optim_wrapper = dict(
    type='OptimWrapper', optimizer=dict(type='Adam', lr=1e-3,
                                        weight_decay=0.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0,
         end=100),
    dict(type='CosineAnnealingLR', eta_min_ratio=0.01, by_epoch=False,
         begin=100, end=2500),
]
auto_scale_lr = dict(enable=True, base_batch_size=256)
train_cfg = dict(type='IterBasedTrainLoop', max_iters=2500, val_interval=250)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=20, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=250,
                    max_keep_ckpts=3, save_best='mIoU'),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
