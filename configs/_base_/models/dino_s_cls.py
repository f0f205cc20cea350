# What the DINOv2 and DINOv3 ViT-S classifiers share: the last block's class
# token through DINOv2ClsNeck (use_avgpool=True adds the mean patch token, as
# DINOv2's linear evaluation; then the head takes 2 x 384) and a linear head.
# dinov2_s_cls.py and dinov3_s_cls.py add the backbone and its weights; the
# dataset file sets num_classes.
model = dict(
    type='ImageClassifier',
    backbone=dict(
        arch='small',
        out_indices=(11, ),
        output_cls_token=True,
        drop_path_rate=0.0),
    neck=dict(type='DINOv2ClsNeck', use_avgpool=False),
    head=dict(
        type='LinearClsHead',
        in_channels=384,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0)))
