"""CIFAR-100 from the original python archive, checked by structure."""
from mmpretrain.registry import DATASETS

from .cifar10 import CIFAR10Dataset


@DATASETS.register_module()
class CIFAR100Dataset(CIFAR10Dataset):
    """CIFAR-100 (100 fine labels) read from ``cifar-100-python.tar.gz``.

    ``data_root`` contains ``cifar-100-python/`` with ``train``, ``test``
    and ``meta`` (``fine_label_names``). Checked as
    :class:`~.cifar10.CIFAR10Dataset`.

    Args: see :class:`~.planar_images.PlanarImageDataset`.
    """
    archive = 'cifar-100-python.tar.gz'
    folder = 'cifar-100-python'
    files = dict(train=['train'], test=['test'])
    meta_file = 'meta'
    names_key = 'fine_label_names'
    label_key = 'fine_labels'
    num_classes = 100
