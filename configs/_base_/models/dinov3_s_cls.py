# DINOv3 ViT-S/16 classifier: Meta's checkpoint (or timm's / transformers'
# weights of the same model; a missing file is an error naming it), the last
# block's class token through DINOv2ClsNeck and a linear head. The dataset
# file sets num_classes. The weights are under the DINOv3 License, not
# Apache-2.0.
dinov3_checkpoint = 'checkpoints/dinov3_vits16_pretrain_lvd1689m-08c60483.pth'
model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='mmseg.DINOv3',
        arch='small',
        out_indices=(11, ),
        output_cls_token=True,
        drop_path_rate=0.0,
        init_cfg=dict(type='Pretrained', checkpoint=dinov3_checkpoint)),
    neck=dict(type='DINOv2ClsNeck', use_avgpool=False),
    head=dict(
        type='LinearClsHead',
        in_channels=384,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0)))
