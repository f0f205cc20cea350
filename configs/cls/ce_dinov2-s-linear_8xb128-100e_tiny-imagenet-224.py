# DINOv2's linear protocol, cross-entropy: frozen ViT-S/14, linear head on the
# class token concatenated with the mean patch token (2 x 384).
_base_ = './ce_dinov2-s_8xb128-100e_tiny-imagenet-224.py'
model = dict(
    backbone=dict(freeze=True),
    neck=dict(use_avgpool=True),
    head=dict(in_channels=2 * 384))
