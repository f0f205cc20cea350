# STL-10 from the original archive: data_root is the folder into which
# stl10_binary.tar.gz (stl10_binary/) was extracted.
_base_ = './cls_224.py'
dataset_type = 'STL10Dataset'
data_root = 'data/stl10'
num_classes = 10
data_preprocessor = dict(num_classes=num_classes)
train_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root))
val_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root))
test_dataloader = val_dataloader
