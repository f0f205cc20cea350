# CIFAR-10 from the original archive: data_root is the folder into which
# cifar-10-python.tar.gz (cifar-10-batches-py/) was extracted.
_base_ = './cls_224.py'
dataset_type = 'CIFAR10Dataset'
data_root = 'data/cifar10'
num_classes = 10
data_preprocessor = dict(num_classes=num_classes)
train_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root))
val_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root))
test_dataloader = val_dataloader
