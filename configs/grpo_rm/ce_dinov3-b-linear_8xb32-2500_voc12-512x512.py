# The linear protocol, cross-entropy, with DINOv3 ViT-B/16 (frozen).
_base_ = './ce_dinov3-s-linear_8xb32-2500_voc12-512x512.py'
dinov3_checkpoint = 'checkpoints/dinov3_vitb16_pretrain_lvd1689m-73cec8be.pth'
model = dict(
    backbone=dict(arch='base', init_cfg=dict(checkpoint=dinov3_checkpoint)),
    decode_head=dict(in_channels=[768, 768]))
