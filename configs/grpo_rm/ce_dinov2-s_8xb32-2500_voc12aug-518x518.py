# Cross-entropy baseline on VOC 2012 + SBD ("aug", 10582 images).
_base_ = [
    '../_base_/models/dinov2_linear.py',
    '../_base_/datasets/pascal_voc12_aug.py', '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_voc_2500it.py'
]
