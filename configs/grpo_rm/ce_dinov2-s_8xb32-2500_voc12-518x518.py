# Cross-entropy baseline: DINOv2 ViT-S/14 fully fine-tuned with DINOv2's
# linear head on Pascal VOC 2012. Batch 256 = 8 GPUs x 32 (auto_scale_lr
# rescales the lr for other GPU counts / batch sizes).
_base_ = [
    '../_base_/models/dinov2_linear.py', '../_base_/datasets/pascal_voc12.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_voc_2500it.py'
]
