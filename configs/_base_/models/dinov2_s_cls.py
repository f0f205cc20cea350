# DINOv2 ViT-S/14 classifier: Meta's checkpoint (the segmentation configs'
# loader: a missing file is an error naming it), the last block's class
# token through DINOv2ClsNeck (use_avgpool=True adds the mean patch token,
# as DINOv2's linear evaluation; then the head takes 2 x 384) and a linear
# head. The dataset file sets num_classes.
dinov2_checkpoint = 'checkpoints/dinov2_vits14_pretrain.pth'
model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='mmseg.DINOv2',
        arch='small',
        out_indices=(11, ),
        output_cls_token=True,
        drop_path_rate=0.0,
        init_cfg=dict(type='Pretrained', checkpoint=dinov2_checkpoint)),
    neck=dict(type='DINOv2ClsNeck', use_avgpool=False),
    head=dict(
        type='LinearClsHead',
        in_channels=384,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0)))
