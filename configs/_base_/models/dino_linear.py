# What the DINOv2 and DINOv3 linear segmentation models share: a ViT-S and
# DINOv2's linear head (BN + 1x1 conv over the last block's patch tokens and
# class token). dinov2_linear.py and dinov3_linear.py add the backbone, its
# weights and the crop size (a multiple of its patch).
norm_cfg = dict(type='SyncBN', requires_grad=True)
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255)
model = dict(
    type='EncoderDecoder',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        arch='small',
        out_indices=(11, ),
        output_cls_token=True,
        drop_path_rate=0.0),
    decode_head=dict(
        type='DINOv2LinearHead',
        in_channels=[384, 384],
        in_index=[0, 1],
        num_classes=21,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(
            type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0,
            avg_non_ignore=True)),
    train_cfg=dict(),
    test_cfg=dict(mode='slide'))
