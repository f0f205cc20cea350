# Cross-entropy baseline with DINOv2 ViT-B/14.
_base_ = './ce_dinov2-s_8xb32-2500_voc12-518x518.py'
dinov2_checkpoint = 'checkpoints/dinov2_vitb14_pretrain.pth'
model = dict(
    backbone=dict(
        arch='base',
        out_indices=(11, ),
        init_cfg=dict(checkpoint=dinov2_checkpoint)),
    decode_head=dict(in_channels=[768, 768]))
