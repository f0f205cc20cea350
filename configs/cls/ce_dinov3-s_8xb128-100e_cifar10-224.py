# Cross-entropy baseline: DINOv3 ViT-S/16 fully fine-tuned on cifar10 with a
# linear head on the class token (224 = 14 x 14 patches of 16). Batch 1024 =
# 8 GPUs x 128. Weights: Meta's dinov3_vits16_pretrain_lvd1689m-08c60483.pth
# (DINOv3 License), or timm's / transformers' files of the same model.
_base_ = [
    '../_base_/models/dinov3_s_cls.py', '../_base_/datasets/cifar10_224.py',
    '../_base_/default_runtime_cls.py',
    '../_base_/schedules/schedule_cls_100e.py'
]
model = dict(head=dict(num_classes={{_base_.num_classes}}))
