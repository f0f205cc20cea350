# DINOv2 ViT-S/14 + DINOv2's linear segmentation head (BN + 1x1 conv over the
# last block's patch tokens and class token; dino_linear.py), 518 crops (37 x
# 37 patches). Set `dinov2_checkpoint` to Meta's file
# (dinov2_vits14_pretrain.pth); a missing file is an error.
_base_ = './dino_linear.py'
dinov2_checkpoint = 'checkpoints/dinov2_vits14_pretrain.pth'
data_preprocessor = dict(size=(518, 518))
model = dict(
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='DINOv2',
        init_cfg=dict(type='Pretrained', checkpoint=dinov2_checkpoint)),
    test_cfg=dict(crop_size=(518, 518), stride=(345, 345)))
