# DINOv2's linear protocol, cross-entropy: frozen ViT-S/14, BN + linear head
# on the last block (patch tokens + class token).
_base_ = './ce_dinov2-s_8xb32-2500_voc12-518x518.py'
model = dict(backbone=dict(freeze=True))
