# Cross-entropy twin of the demo (same model, data and schedule).
_base_ = [
    '../_base_/datasets/synthetic_voc.py', '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_demo.py'
]
# A randomly initialised DINOv2-architecture ViT/14 small enough for a CPU:
# 4 blocks of width 96 (ViT-S has 12 of width 384).
embed_dims = 96
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
    size=(112, 112))
model = dict(
    type='EncoderDecoder',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='DINOv2',
        arch=dict(embed_dims=embed_dims, num_layers=4, num_heads=3,
                  feedforward_channels=4 * embed_dims),
        img_size=112,
        out_indices=(3, ),
        output_cls_token=True),
    decode_head=dict(
        type='DINOv2LinearHead',
        in_channels=[embed_dims, embed_dims],
        in_index=[0, 1],
        num_classes=21,
        norm_cfg=dict(type='BN', requires_grad=True),
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', loss_weight=1.0,
                         avg_non_ignore=True)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
