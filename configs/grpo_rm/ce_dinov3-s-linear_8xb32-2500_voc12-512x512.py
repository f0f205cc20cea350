# DINOv2's linear protocol with DINOv3, cross-entropy: frozen ViT-S/16, BN +
# linear head on the last block (patch tokens + class token), 512 crops.
# Weights: Meta's dinov3_vits16_pretrain_lvd1689m-08c60483.pth (DINOv3
# License), or timm's / transformers' files of the same model.
_base_ = [
    '../_base_/models/dinov3_linear.py',
    '../_base_/datasets/pascal_voc12_512x512.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_voc_2500it.py'
]
model = dict(backbone=dict(freeze=True))
