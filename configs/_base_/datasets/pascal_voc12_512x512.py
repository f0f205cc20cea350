# Pascal VOC 2012 with 512x512 crops, MMSeg's usual size: 32 x 32 patches of
# DINOv3's 16 (DINOv2's 14 are served by 518, pascal_voc12.py).
_base_ = './pascal_voc12.py'
crop_size = (512, 512)
test_scale = (2048, 512)
tta_ratios = [0.5, 0.75, 1.0, 1.25, 1.5, 1.75]
train_pipeline = [
    dict(type='CheckedLoadImageFromFile'),
    dict(type='CheckedLoadAnnotations'),
    dict(
        type='RandomResize',
        scale=test_scale,
        ratio_range=(0.5, 2.0),
        keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='CheckedLoadImageFromFile'),
    dict(type='Resize', scale=test_scale, keep_ratio=True),
    dict(type='CheckedLoadAnnotations'),
    dict(type='PackSegInputs'),
]
tta_pipeline = [
    dict(type='CheckedLoadImageFromFile'),
    dict(
        type='TestTimeAug',
        transforms=[
            [dict(type='Resize', keep_ratio=True,
                  scale=(int(test_scale[0] * r), int(test_scale[1] * r)))
             for r in tta_ratios],
            [dict(type='RandomFlip', prob=0., direction='horizontal'),
             dict(type='RandomFlip', prob=1., direction='horizontal')],
            [dict(type='CheckedLoadAnnotations')],
            [dict(type='PackSegInputs')],
        ]),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
