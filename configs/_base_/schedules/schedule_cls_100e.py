# The paper's recipe: Adam, lr 1e-3 per 256 images (lr x batch / 256, as
# the VOC schedule), decaying to 1/100 of it (1e-3 -> 1e-5 per 256), at
# batch 1024: lr = 1e-3 x 1024 / 256. `auto_scale_lr` rescales it for any
# other GPUs x batch. A one-epoch linear warm-up (this project's choice, as
# the VOC schedule's) precedes the cosine decay. 100 epochs: what the paper
# says cross-entropy needs (GRPO-RM: about 20); validation every 5 epochs
# draws both curves.
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='Adam', lr=1e-3 * 1024 / 256, weight_decay=0.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min_ratio=0.01, by_epoch=True,
         begin=1, end=100, convert_to_iter_based=True),
]
auto_scale_lr = dict(enable=True, base_batch_size=1024)
train_cfg = dict(by_epoch=True, max_epochs=100, val_interval=5)
val_cfg = dict()
test_cfg = dict()
