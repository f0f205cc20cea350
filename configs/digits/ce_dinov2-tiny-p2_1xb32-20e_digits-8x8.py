# Cross-entropy on scikit-learn's digits (MMPretrain): a tiny randomly
# initialised DINOv2-architecture ViT with 2-pixel patches (4x4 tokens of an
# 8x8 digit), average-pooled patch tokens and a linear head. About 20 s on
# one CPU core. Its GRPO-RM twin differs in the loss and the hook only.
_base_ = ['../_base_/datasets/digits.py', '../_base_/default_runtime_cls.py']
embed_dims = 64
model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='mmseg.DINOv2',
        arch=dict(embed_dims=embed_dims, num_layers=3, num_heads=2,
                  feedforward_channels=4 * embed_dims),
        img_size=8,
        patch_size=2,
        out_indices=(2, )),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=10,
        in_channels=embed_dims,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0)))
optim_wrapper = dict(optimizer=dict(type='Adam', lr=1e-3))
param_scheduler = dict(type='CosineAnnealingLR', by_epoch=True, T_max=20,
                       eta_min_ratio=0.01)
train_cfg = dict(by_epoch=True, max_epochs=20, val_interval=5)
val_cfg = dict()
test_cfg = dict()
default_hooks = dict(checkpoint=dict(interval=5, max_keep_ckpts=1))
auto_scale_lr = dict(base_batch_size=32)  # --auto-scale-lr enables it
