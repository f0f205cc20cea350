"""CIFAR-10 from the original python archive, checked by structure."""
import os.path as osp
import pickle
from typing import List, Tuple

import numpy as np
from mmpretrain.registry import DATASETS

from .planar_images import (DatasetFileError, PlanarImageDataset,
                            require_dir, require_file)

_PIXELS = 3 * 32 * 32


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles only what CIFAR files hold: dicts, lists, strings, numbers
    and numpy arrays. A pickle can run any code it names; a dataset file
    has no reason to name anything else."""
    ALLOWED = {
        ('numpy.core.multiarray', '_reconstruct'),
        ('numpy._core.multiarray', '_reconstruct'),
        ('numpy.core.multiarray', 'scalar'),
        ('numpy._core.multiarray', 'scalar'),
        ('numpy', 'ndarray'),
        ('numpy', 'dtype'),
        ('_codecs', 'encode'),  # bytes in protocol-2 pickles from Python 3
    }

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(
                f'refusing to load {module}.{name} (a CIFAR file holds only '
                'arrays, lists and strings)')
        return super().find_class(module, name)


def load_cifar_pickle(path: str) -> dict:
    """Load one file of a CIFAR archive as a dict with str keys.

    The files are Python 2 pickles: loaded with ``encoding='bytes'`` their
    keys and strings are bytes (loaded under another encoding, str); both
    come back as str.
    """
    require_file(path, 'CIFAR file')
    try:
        with open(path, 'rb') as f:
            content = _ArrayUnpickler(f, encoding='bytes').load()
    except (EOFError, pickle.UnpicklingError, ValueError, TypeError,
            AttributeError, ImportError, IndexError) as err:
        raise DatasetFileError(
            path, f'truncated or not a CIFAR pickle ({type(err).__name__}: '
            f'{err})') from err
    if not isinstance(content, dict):
        raise DatasetFileError(path, 'does not hold a dict but a '
                               f'{type(content).__name__}')
    return {_text(k): v for k, v in content.items()}


def _text(value) -> str:
    return value.decode('latin1') if isinstance(value, bytes) else value


def read_cifar_batch(path: str, label_key: str,
                     num_classes: int) -> Tuple[np.ndarray, np.ndarray]:
    """Images (N, 3, 32, 32) uint8 RGB and labels (N,) of one batch file."""
    batch = load_cifar_pickle(path)
    for key in ('data', label_key):
        if key not in batch:
            raise DatasetFileError(
                path, f"has no '{key}' entry (keys: {sorted(batch)})")
    data = np.asarray(batch['data'])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != _PIXELS:
        raise DatasetFileError(
            path, f"'data' must be uint8 (N, {_PIXELS}), got "
            f'{data.dtype} {data.shape}')
    labels = np.asarray(batch[label_key])
    if labels.shape != (len(data), ):
        raise DatasetFileError(
            path, f"{len(data)} images but '{label_key}' has shape "
            f'{labels.shape}')
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        raise DatasetFileError(
            path, f"'{label_key}' must be in [0, {num_classes}), got "
            f'[{labels.min()}, {labels.max()}]')
    return data.reshape(-1, 3, 32, 32), labels.astype(np.int64)


def read_class_names(path: str, key: str, num_classes: int) -> List[str]:
    """The ``key`` list of a CIFAR meta file, checked for its length."""
    meta = load_cifar_pickle(path)
    if key not in meta:
        raise DatasetFileError(
            path, f"has no '{key}' entry (keys: {sorted(meta)})")
    names = [_text(n) for n in meta[key]]
    if len(names) != num_classes:
        raise DatasetFileError(
            path, f"'{key}' lists {len(names)} classes, expected "
            f'{num_classes}')
    return names


@DATASETS.register_module()
class CIFAR10Dataset(PlanarImageDataset):
    """CIFAR-10 read from ``cifar-10-python.tar.gz`` as extracted.

    ``data_root`` contains ``cifar-10-batches-py/`` with ``data_batch_1``
    ... ``data_batch_5`` (train), ``test_batch`` (test) and
    ``batches.meta``. Unlike MMPretrain's ``CIFAR10`` the files are checked
    by structure (keys, dtypes, shapes, label range), not by md5, so copies
    and subsets work; images come out BGR like loaded files.

    Args: see :class:`~.planar_images.PlanarImageDataset`.
    """
    archive = 'cifar-10-python.tar.gz'
    folder = 'cifar-10-batches-py'
    files = dict(
        train=[f'data_batch_{i}' for i in range(1, 6)], test=['test_batch'])
    meta_file = 'batches.meta'
    names_key = 'label_names'
    label_key = 'labels'
    num_classes = 10

    def read_split(self):
        folder = require_dir(osp.join(self.data_root, self.folder),
                             self.archive)
        names = read_class_names(
            osp.join(folder, self.meta_file), self.names_key,
            self.num_classes)
        images, labels = [], []
        for name in self.files[self.split]:
            data, target = read_cifar_batch(
                osp.join(folder, name), self.label_key, self.num_classes)
            images.append(data)
            labels.append(target)
        return np.concatenate(images), np.concatenate(labels), names
