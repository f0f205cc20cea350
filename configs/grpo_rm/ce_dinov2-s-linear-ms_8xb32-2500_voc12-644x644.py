# DINOv2's "+ms" linear protocol, cross-entropy: frozen ViT-S/14, the last
# four blocks (patch + class tokens) concatenated, 644 crops; evaluate with
# multi-scale + flip: tools/test.py CONFIG CKPT --tta
_base_ = [
    '../_base_/models/dinov2_linear.py',
    '../_base_/datasets/pascal_voc12_644x644.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_voc_2500it.py'
]
model = dict(
    data_preprocessor=dict(size=(644, 644)),
    backbone=dict(out_indices=(8, 9, 10, 11), freeze=True),
    decode_head=dict(in_channels=[384] * 8, in_index=list(range(8))),
    test_cfg=dict(crop_size=(644, 644), stride=(429, 429)))
