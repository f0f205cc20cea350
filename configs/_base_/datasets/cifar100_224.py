# CIFAR-100 from the original archive: data_root is the folder into which
# cifar-100-python.tar.gz (cifar-100-python/) was extracted.
_base_ = './cls_224.py'
dataset_type = 'CIFAR100Dataset'
data_root = 'data/cifar100'
num_classes = 100
data_preprocessor = dict(num_classes=num_classes)
train_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root))
val_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root))
test_dataloader = val_dataloader
