# Tiny-ImageNet-200 from the original archive: data_root is the folder into
# which tiny-imagenet-200.zip was extracted (tiny-imagenet-200/); its
# labelled val split is the test split. Images are JPEG files, so the
# pipelines start with the checked loader.
_base_ = './cls_224.py'
dataset_type = 'TinyImageNetDataset'
data_root = 'data/tiny-imagenet'
num_classes = 200
data_preprocessor = dict(num_classes=num_classes)
train_pipeline = [
    dict(type='CheckedLoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=224),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='CheckedLoadImageFromFile'),
    dict(type='Resize', scale=(224, 224)),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    dataset=dict(type=dataset_type, data_root=data_root,
                 pipeline=train_pipeline))
val_dataloader = dict(
    dataset=dict(type=dataset_type, data_root=data_root,
                 pipeline=test_pipeline))
test_dataloader = val_dataloader
