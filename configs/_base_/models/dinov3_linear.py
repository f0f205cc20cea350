# DINOv3 ViT-S/16 + DINOv2's linear segmentation head (BN + 1x1 conv over
# the last block's patch tokens and class token), 512 crops (32 x 32
# patches). Set `dinov3_checkpoint` to Meta's file (or timm's / transformers'
# weights of the same model); a missing file is an error. The weights are
# under the DINOv3 License, not Apache-2.0.
dinov3_checkpoint = 'checkpoints/dinov3_vits16_pretrain_lvd1689m-08c60483.pth'
norm_cfg = dict(type='SyncBN', requires_grad=True)
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
    size=(512, 512))
model = dict(
    type='EncoderDecoder',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='DINOv3',
        arch='small',
        out_indices=(11, ),
        output_cls_token=True,
        drop_path_rate=0.0,
        init_cfg=dict(type='Pretrained', checkpoint=dinov3_checkpoint)),
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
    test_cfg=dict(mode='slide', crop_size=(512, 512), stride=(341, 341)))
