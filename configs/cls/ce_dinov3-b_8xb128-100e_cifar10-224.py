# Cross-entropy baseline with DINOv3 ViT-B/16, fully fine-tuned on cifar10.
_base_ = './ce_dinov3-s_8xb128-100e_cifar10-224.py'
dinov3_checkpoint = 'checkpoints/dinov3_vitb16_pretrain_lvd1689m-73cec8be.pth'
model = dict(
    backbone=dict(arch='base', init_cfg=dict(checkpoint=dinov3_checkpoint)),
    head=dict(in_channels=768))
