# The demo's cross-entropy twin with a DINOv3-architecture backbone: 4 blocks
# of width 96 with 2-D RoPE and 4 register tokens, patch 16 (7 x 7 patches at
# 112 x 112), randomly initialised; everything else as the DINOv2 demo.
_base_ = ['./ce_dinov2-tiny_1xb8-300_synthetic-voc-112x112.py']
embed_dims = 96
model = dict(
    backbone=dict(
        _delete_=True,
        type='DINOv3',
        arch=dict(embed_dims=embed_dims, num_layers=4, num_heads=3,
                  feedforward_channels=4 * embed_dims),
        out_indices=(3, ),
        output_cls_token=True))
