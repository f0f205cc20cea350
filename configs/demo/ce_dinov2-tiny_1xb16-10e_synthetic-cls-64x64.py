# MMPretrain classification with the same tools (default_scope mmpretrain):
# a small randomly initialised DINOv2-architecture ViT/14 (MMSeg-registered
# DINOv2, reached as 'mmseg.DINOv2'), average-pooled patch tokens and a
# linear head, cross-entropy. Its GRPO-RM twin differs in the loss and hook.
_base_ = [
    '../_base_/datasets/synthetic_cls.py', '../_base_/default_runtime_cls.py'
]
embed_dims = 96
model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='mmseg.DINOv2',
        arch=dict(embed_dims=embed_dims, num_layers=4, num_heads=3,
                  feedforward_channels=4 * embed_dims),
        img_size=70,
        out_indices=(3, )),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=5,
        in_channels=embed_dims,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0)))
optim_wrapper = dict(optimizer=dict(type='Adam', lr=1e-3))
param_scheduler = dict(type='CosineAnnealingLR', by_epoch=True, T_max=10,
                       eta_min_ratio=0.01)
train_cfg = dict(by_epoch=True, max_epochs=10, val_interval=5)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=16)  # --auto-scale-lr enables it
