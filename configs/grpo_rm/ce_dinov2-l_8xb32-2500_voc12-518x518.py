# Cross-entropy baseline with DINOv2 ViT-L/14.
_base_ = './ce_dinov2-s_8xb32-2500_voc12-518x518.py'
dinov2_checkpoint = 'checkpoints/dinov2_vitl14_pretrain.pth'
model = dict(
    backbone=dict(
        arch='large',
        out_indices=(23, ),
        with_cp=True,  # gradient checkpointing: ViT-L at batch 32 x 512^2
        init_cfg=dict(checkpoint=dinov2_checkpoint)),
    decode_head=dict(in_channels=[1024, 1024]))
