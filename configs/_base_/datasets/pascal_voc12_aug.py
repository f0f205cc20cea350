# Pascal VOC 2012 + SBD ("aug", 10582 training images) in MMSeg's layout:
# VOC2012/SegmentationClassAug/*.png and ImageSets/Segmentation/aug.txt
# (see MMSeg's dataset preparation, tools/dataset_converters/voc_aug.py).
_base_ = './pascal_voc12.py'
voc_aug = dict(
    type={{_base_.dataset_type}},
    data_root={{_base_.data_root}},
    data_prefix=dict(
        img_path='JPEGImages', seg_map_path='SegmentationClassAug'),
    ann_file='ImageSets/Segmentation/aug.txt',
    pipeline={{_base_.train_pipeline}})
train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='ConcatDataset',
        datasets=[{{_base_.voc_train}}, voc_aug]))
