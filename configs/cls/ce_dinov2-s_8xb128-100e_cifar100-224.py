# Cross-entropy baseline: DINOv2 ViT-S/14 fully fine-tuned on cifar100 with a
# linear head on the class token. Batch 1024 = 8 GPUs x 128.
_base_ = [
    '../_base_/models/dinov2_s_cls.py', '../_base_/datasets/cifar100_224.py',
    '../_base_/default_runtime_cls.py',
    '../_base_/schedules/schedule_cls_100e.py'
]
model = dict(head=dict(num_classes={{_base_.num_classes}}))
