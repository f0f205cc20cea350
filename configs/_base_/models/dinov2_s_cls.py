# DINOv2 ViT-S/14 classifier (dino_s_cls.py): Meta's checkpoint (the
# segmentation configs' loader: a missing file is an error naming it), the
# last block's class token through DINOv2ClsNeck and a linear head. The
# dataset file sets num_classes.
_base_ = './dino_s_cls.py'
dinov2_checkpoint = 'checkpoints/dinov2_vits14_pretrain.pth'
model = dict(
    backbone=dict(
        type='mmseg.DINOv2',
        init_cfg=dict(type='Pretrained', checkpoint=dinov2_checkpoint)))
