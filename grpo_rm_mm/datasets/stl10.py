"""STL-10 from the original binary archive, checked by structure."""
import os
import os.path as osp

import mmengine
import numpy as np
from mmpretrain.registry import DATASETS

from .planar_images import (DatasetFileError, PlanarImageDataset,
                            require_dir, require_file)

_SIZE = 96
_IMAGE_BYTES = 3 * _SIZE * _SIZE
_NUM_CLASSES = 10


def read_stl_images(path: str) -> np.ndarray:
    """(N, 3, 96, 96) uint8 of a ``*_X.bin`` file, memory-mapped.

    Each channel is stored column-major, so the last two axes are (width,
    height).
    """
    size = os.path.getsize(require_file(path, 'STL-10 image file'))
    if size == 0 or size % _IMAGE_BYTES:
        raise DatasetFileError(
            path, f'truncated or not STL-10 images: {size} bytes is not a '
            f'positive multiple of {_IMAGE_BYTES} (one 3 x 96 x 96 image)')
    return np.memmap(path, dtype=np.uint8, mode='r').reshape(
        -1, 3, _SIZE, _SIZE)


def read_stl_labels(path: str, num_images: int) -> np.ndarray:
    """Labels 0..9 of a ``*_y.bin`` file (stored as bytes 1..10)."""
    labels = np.fromfile(require_file(path, 'STL-10 label file'),
                         dtype=np.uint8)
    if len(labels) != num_images:
        raise DatasetFileError(
            path, f'has {len(labels)} labels for {num_images} images '
            '(truncated, or not the labels of that image file)')
    if num_images and (labels.min() < 1 or labels.max() > _NUM_CLASSES):
        raise DatasetFileError(
            path, f'labels must be in [1, {_NUM_CLASSES}], got '
            f'[{labels.min()}, {labels.max()}]')
    return labels.astype(np.int64) - 1


def read_stl_class_names(path: str):
    names = [line.strip() for line in mmengine.list_from_file(
        require_file(path, 'STL-10 class names'))]
    names = [n for n in names if n]
    if len(names) != _NUM_CLASSES:
        raise DatasetFileError(
            path, f'lists {len(names)} class names, expected {_NUM_CLASSES}')
    return names


@DATASETS.register_module()
class STL10Dataset(PlanarImageDataset):
    """STL-10 read from ``stl10_binary.tar.gz`` as extracted.

    ``data_root`` contains ``stl10_binary/`` with ``{train,test}_X.bin``
    (uint8 N x 3 x 96 x 96, each channel column-major: images are
    transposed here), ``{train,test}_y.bin`` (labels 1..10, read as 0..9)
    and ``class_names.txt``. ``split='unlabeled'`` reads
    ``unlabeled_X.bin`` (no ``gt_label``). Image files are memory-mapped;
    checked by size and label count, not by md5.

    Args: see :class:`~.planar_images.PlanarImageDataset`.
    """
    SPLITS = ('train', 'test', 'unlabeled')
    UNLABELED_SPLITS = ('unlabeled', )
    column_major = True
    archive = 'stl10_binary.tar.gz'
    folder = 'stl10_binary'

    def read_split(self):
        folder = require_dir(osp.join(self.data_root, self.folder),
                             self.archive)
        names = read_stl_class_names(osp.join(folder, 'class_names.txt'))
        images = read_stl_images(osp.join(folder, f'{self.split}_X.bin'))
        labels = None
        if self.split != 'unlabeled':
            labels = read_stl_labels(
                osp.join(folder, f'{self.split}_y.bin'), len(images))
        return images, labels, names
