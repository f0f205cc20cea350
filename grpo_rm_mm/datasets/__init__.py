from . import transforms  # noqa: F401
from .cifar10 import CIFAR10Dataset
from .class_folders import BoundCustomDataset, ClassListError
from .cifar100 import CIFAR100Dataset
from .digits import DigitsDataset
from .planar_images import DatasetFileError
from .stl10 import STL10Dataset
from .synthetic_cls import make_synthetic_cls
from .synthetic_voc import make_synthetic_voc
from .tiny_imagenet import TinyImageNetDataset

__all__ = [
    'BoundCustomDataset', 'CIFAR100Dataset', 'CIFAR10Dataset',
    'ClassListError', 'DatasetFileError', 'DigitsDataset',
    'STL10Dataset', 'TinyImageNetDataset', 'make_synthetic_cls',
    'make_synthetic_voc'
]
