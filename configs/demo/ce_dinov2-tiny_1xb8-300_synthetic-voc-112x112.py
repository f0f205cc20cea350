# Cross-entropy twin of the demo: the VOC model (configs/_base_/models/
# dinov2_linear.py) shrunk for a CPU and randomly initialised: a
# DINOv2-architecture ViT/14 with 4 blocks of width 96 (ViT-S: 12 of 384).
_base_ = [
    '../_base_/models/dinov2_linear.py', '../_base_/datasets/synthetic_voc.py',
    '../_base_/default_runtime.py', '../_base_/schedules/schedule_demo.py'
]
embed_dims = 96
model = dict(
    data_preprocessor=dict(size=(112, 112)),
    backbone=dict(
        arch=dict(_delete_=True, embed_dims=embed_dims, num_layers=4,
                  num_heads=3, feedforward_channels=4 * embed_dims),
        img_size=112,
        out_indices=(3, ),
        init_cfg=None),
    decode_head=dict(
        in_channels=[embed_dims, embed_dims],
        norm_cfg=dict(type='BN', requires_grad=True)),
    test_cfg=dict(_delete_=True, mode='whole'))
