auto_scale_lr = dict(base_batch_size=256, enable=True)
crop_size = (
    518,
    518,
)
custom_hooks = [
    dict(interval=10, type='GRPOOldModelHook'),
]
custom_imports = dict(
    allow_failed_imports=False, imports=[
        'grpo_rm_mm',
    ])
data_preprocessor = dict(
    bgr_to_rgb=True,
    mean=[
        123.675,
        116.28,
        103.53,
    ],
    pad_val=0,
    seg_pad_val=255,
    size=(
        518,
        518,
    ),
    std=[
        58.395,
        57.12,
        57.375,
    ],
    type='SegDataPreProcessor')
data_root = 'data/VOCdevkit/VOC2012'
dataset_type = 'PascalVOCDataset'
default_hooks = dict(
    checkpoint=dict(
        by_epoch=False,
        interval=250,
        max_keep_ckpts=3,
        save_best='mIoU',
        type='CheckpointHook'),
    logger=dict(interval=20, log_metric_by_epoch=False, type='LoggerHook'),
    param_scheduler=dict(type='ParamSchedulerHook'),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    timer=dict(type='IterTimerHook'),
    visualization=dict(type='SegVisualizationHook'))
default_scope = 'mmseg'
dinov2_checkpoint = 'checkpoints/dinov2_vits14_pretrain.pth'
env_cfg = dict(
    cudnn_benchmark=True,
    dist_cfg=dict(backend='nccl'),
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0))
grpo_rm_aux_loss = dict(
    _delete_=True,
    accuracy_reward=1.0,
    background_index=0,
    background_scale=0.5,
    clip_eps=0.2,
    log_stats=True,
    loss_weight=0.4,
    type='GRPORMLoss',
    uniformity='prob')
grpo_rm_loss = dict(
    accuracy_reward=1.0,
    background_index=0,
    background_scale=0.5,
    clip_eps=0.2,
    log_stats=True,
    loss_weight=1.0,
    type='GRPORMLoss',
    uniformity='prob')
grpo_rm_old_model = dict(interval=10, type='GRPOOldModelHook')
load_from = None
log_level = 'INFO'
log_processor = dict(by_epoch=False)
model = dict(
    backbone=dict(
        arch='small',
        drop_path_rate=0.0,
        init_cfg=dict(
            checkpoint='checkpoints/dinov2_vits14_pretrain.pth',
            type='Pretrained'),
        out_indices=(11, ),
        output_cls_token=True,
        type='DINOv2'),
    data_preprocessor=dict(
        bgr_to_rgb=True,
        mean=[
            123.675,
            116.28,
            103.53,
        ],
        pad_val=0,
        seg_pad_val=255,
        size=(
            518,
            518,
        ),
        std=[
            58.395,
            57.12,
            57.375,
        ],
        type='SegDataPreProcessor'),
    decode_head=dict(
        align_corners=False,
        in_channels=[
            384,
            384,
        ],
        in_index=[
            0,
            1,
        ],
        loss_decode=dict(
            accuracy_reward=1.0,
            background_index=0,
            background_scale=0.5,
            clip_eps=0.2,
            log_stats=True,
            loss_weight=1.0,
            type='GRPORMLoss',
            uniformity='prob'),
        norm_cfg=dict(requires_grad=True, type='SyncBN'),
        num_classes=21,
        type='DINOv2LinearHead'),
    test_cfg=dict(crop_size=(
        518,
        518,
    ), mode='slide', stride=(
        345,
        345,
    )),
    train_cfg=dict(),
    type='EncoderDecoder')
norm_cfg = dict(requires_grad=True, type='SyncBN')
optim_wrapper = dict(
    optimizer=dict(lr=0.001, type='Adam', weight_decay=0.0),
    type='OptimWrapper')
param_scheduler = [
    dict(begin=0, by_epoch=False, end=100, start_factor=0.1, type='LinearLR'),
    dict(
        begin=100,
        by_epoch=False,
        end=2500,
        eta_min_ratio=0.01,
        type='CosineAnnealingLR'),
]
resume = False
test_cfg = dict(type='TestLoop')
test_dataloader = dict(
    batch_size=1,
    dataset=dict(
        ann_file='ImageSets/Segmentation/val.txt',
        data_prefix=dict(
            img_path='JPEGImages', seg_map_path='SegmentationClass'),
        data_root='data/VOCdevkit/VOC2012',
        pipeline=[
            dict(type='CheckedLoadImageFromFile'),
            dict(keep_ratio=True, scale=(
                2072,
                518,
            ), type='Resize'),
            dict(type='CheckedLoadAnnotations'),
            dict(type='PackSegInputs'),
        ],
        type='PascalVOCDataset'),
    num_workers=4,
    persistent_workers=True,
    sampler=dict(shuffle=False, type='DefaultSampler'))
test_evaluator = dict(
    iou_metrics=[
        'mIoU',
    ], type='IoUMetric')
test_pipeline = [
    dict(type='CheckedLoadImageFromFile'),
    dict(keep_ratio=True, scale=(
        2072,
        518,
    ), type='Resize'),
    dict(type='CheckedLoadAnnotations'),
    dict(type='PackSegInputs'),
]
test_scale = (
    2072,
    518,
)
train_cfg = dict(max_iters=2500, type='IterBasedTrainLoop', val_interval=250)
train_dataloader = dict(
    batch_size=32,
    dataset=dict(
        ann_file='ImageSets/Segmentation/train.txt',
        data_prefix=dict(
            img_path='JPEGImages', seg_map_path='SegmentationClass'),
        data_root='data/VOCdevkit/VOC2012',
        pipeline=[
            dict(type='CheckedLoadImageFromFile'),
            dict(type='CheckedLoadAnnotations'),
            dict(
                keep_ratio=True,
                ratio_range=(
                    0.5,
                    2.0,
                ),
                scale=(
                    2072,
                    518,
                ),
                type='RandomResize'),
            dict(
                cat_max_ratio=0.75, crop_size=(
                    518,
                    518,
                ), type='RandomCrop'),
            dict(prob=0.5, type='RandomFlip'),
            dict(type='PhotoMetricDistortion'),
            dict(type='PackSegInputs'),
        ],
        type='PascalVOCDataset'),
    num_workers=8,
    persistent_workers=True,
    sampler=dict(shuffle=True, type='InfiniteSampler'))
train_pipeline = [
    dict(type='CheckedLoadImageFromFile'),
    dict(type='CheckedLoadAnnotations'),
    dict(
        keep_ratio=True,
        ratio_range=(
            0.5,
            2.0,
        ),
        scale=(
            2072,
            518,
        ),
        type='RandomResize'),
    dict(cat_max_ratio=0.75, crop_size=(
        518,
        518,
    ), type='RandomCrop'),
    dict(prob=0.5, type='RandomFlip'),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
tta_model = dict(type='SegTTAModel')
tta_pipeline = [
    dict(type='CheckedLoadImageFromFile'),
    dict(
        transforms=[
            [
                dict(keep_ratio=True, scale=(
                    1036,
                    259,
                ), type='Resize'),
                dict(keep_ratio=True, scale=(
                    1554,
                    388,
                ), type='Resize'),
                dict(keep_ratio=True, scale=(
                    2072,
                    518,
                ), type='Resize'),
                dict(keep_ratio=True, scale=(
                    2590,
                    647,
                ), type='Resize'),
                dict(keep_ratio=True, scale=(
                    3108,
                    777,
                ), type='Resize'),
                dict(keep_ratio=True, scale=(
                    3626,
                    906,
                ), type='Resize'),
            ],
            [
                dict(direction='horizontal', prob=0.0, type='RandomFlip'),
                dict(direction='horizontal', prob=1.0, type='RandomFlip'),
            ],
            [
                dict(type='CheckedLoadAnnotations'),
            ],
            [
                dict(type='PackSegInputs'),
            ],
        ],
        type='TestTimeAug'),
]
tta_ratios = [
    0.5,
    0.75,
    1.0,
    1.25,
    1.5,
    1.75,
]
val_cfg = dict(type='ValLoop')
val_dataloader = dict(
    batch_size=1,
    dataset=dict(
        ann_file='ImageSets/Segmentation/val.txt',
        data_prefix=dict(
            img_path='JPEGImages', seg_map_path='SegmentationClass'),
        data_root='data/VOCdevkit/VOC2012',
        pipeline=[
            dict(type='CheckedLoadImageFromFile'),
            dict(keep_ratio=True, scale=(
                2072,
                518,
            ), type='Resize'),
            dict(type='CheckedLoadAnnotations'),
            dict(type='PackSegInputs'),
        ],
        type='PascalVOCDataset'),
    num_workers=4,
    persistent_workers=True,
    sampler=dict(shuffle=False, type='DefaultSampler'))
val_evaluator = dict(
    iou_metrics=[
        'mIoU',
    ], type='IoUMetric')
vis_backends = [
    dict(type='LocalVisBackend'),
]
visualizer = dict(
    name='visualizer',
    type='SegLocalVisualizer',
    vis_backends=[
        dict(type='LocalVisBackend'),
    ])
voc_train = dict(
    ann_file='ImageSets/Segmentation/train.txt',
    data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClass'),
    data_root='data/VOCdevkit/VOC2012',
    pipeline=[
        dict(type='CheckedLoadImageFromFile'),
        dict(type='CheckedLoadAnnotations'),
        dict(
            keep_ratio=True,
            ratio_range=(
                0.5,
                2.0,
            ),
            scale=(
                2072,
                518,
            ),
            type='RandomResize'),
        dict(cat_max_ratio=0.75, crop_size=(
            518,
            518,
        ), type='RandomCrop'),
        dict(prob=0.5, type='RandomFlip'),
        dict(type='PhotoMetricDistortion'),
        dict(type='PackSegInputs'),
    ],
    type='PascalVOCDataset')
