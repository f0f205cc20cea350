# DINOv3 ViT-S/16 + DINOv2's linear segmentation head (BN + 1x1 conv over
# the last block's patch tokens and class token; dino_linear.py), 512 crops
# (32 x 32 patches). Set `dinov3_checkpoint` to Meta's file (or timm's /
# transformers' weights of the same model); a missing file is an error. The
# weights are under the DINOv3 License, not Apache-2.0.
_base_ = './dino_linear.py'
dinov3_checkpoint = 'checkpoints/dinov3_vits16_pretrain_lvd1689m-08c60483.pth'
data_preprocessor = dict(size=(512, 512))
model = dict(
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='DINOv3',
        init_cfg=dict(type='Pretrained', checkpoint=dinov3_checkpoint)),
    test_cfg=dict(crop_size=(512, 512), stride=(341, 341)))
