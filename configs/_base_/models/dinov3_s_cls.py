# DINOv3 ViT-S/16 classifier (dino_s_cls.py): Meta's checkpoint (or timm's /
# transformers' weights of the same model; a missing file is an error naming
# it), the last block's class token through DINOv2ClsNeck and a linear head.
# The dataset file sets num_classes. The weights are under the DINOv3
# License, not Apache-2.0.
_base_ = './dino_s_cls.py'
dinov3_checkpoint = 'checkpoints/dinov3_vits16_pretrain_lvd1689m-08c60483.pth'
model = dict(
    backbone=dict(
        type='mmseg.DINOv3',
        init_cfg=dict(type='Pretrained', checkpoint=dinov3_checkpoint)))
