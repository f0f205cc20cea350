"""Tiny-ImageNet-200 from the original archive, checked by structure."""
import os
import os.path as osp
from typing import Dict, List

import mmengine
from mmpretrain.datasets import BaseDataset
from mmpretrain.registry import DATASETS

from .planar_images import DatasetFileError, require_dir, require_file

_IMAGE_SUFFIX = '.JPEG'
_ARCHIVE = 'tiny-imagenet-200.zip'


def read_wnids(path: str) -> List[str]:
    """Class ids in file order, which is the class order (it is not
    sorted)."""
    wnids = [w.strip() for w in mmengine.list_from_file(
        require_file(path, 'Tiny-ImageNet wnids.txt'))]
    wnids = [w for w in wnids if w]
    if not wnids:
        raise DatasetFileError(path, 'lists no class')
    seen = set()
    for wnid in wnids:
        if wnid in seen:
            raise DatasetFileError(path, f'lists {wnid} twice')
        seen.add(wnid)
    return wnids


def read_words(path: str, wnids: List[str]) -> List[str]:
    """Readable names of ``wnids`` from ``words.txt`` (``wnid<TAB>names``),
    which covers all of ImageNet."""
    words = {}
    for number, line in enumerate(mmengine.list_from_file(
            require_file(path, 'Tiny-ImageNet words.txt')), 1):
        if not line.strip():
            continue
        if '\t' not in line:
            raise DatasetFileError(
                path, f'line {number} is not "wnid<TAB>names": {line!r}')
        wnid, name = line.split('\t', 1)
        words[wnid.strip()] = name.strip()
    missing = [w for w in wnids if w not in words]
    if missing:
        raise DatasetFileError(
            path, f'has no name for {len(missing)} classes of wnids.txt, '
            f'e.g. {missing[:3]}')
    return [words[w] for w in wnids]


def read_val_annotations(path: str, wnids: List[str]) -> Dict[str, int]:
    """``{file name: class index}`` from ``val_annotations.txt``."""
    index = {w: i for i, w in enumerate(wnids)}
    labels = {}
    for number, line in enumerate(mmengine.list_from_file(
            require_file(path, 'Tiny-ImageNet val_annotations.txt')), 1):
        if not line.strip():
            continue
        fields = line.split('\t')
        if len(fields) < 2:
            raise DatasetFileError(
                path, f'line {number} is not "file<TAB>wnid<TAB>box...": '
                f'{line!r}')
        name, wnid = fields[0].strip(), fields[1].strip()
        if wnid not in index:
            raise DatasetFileError(
                path, f'line {number}: class {wnid} is not in wnids.txt')
        if name in labels:
            raise DatasetFileError(path, f'line {number}: {name} twice')
        labels[name] = index[wnid]
    if not labels:
        raise DatasetFileError(path, 'lists no image')
    return labels


@DATASETS.register_module()
class TinyImageNetDataset(BaseDataset):
    """Tiny-ImageNet-200 read from ``tiny-imagenet-200.zip`` as extracted.

    ``data_root`` contains ``tiny-imagenet-200/`` with ``wnids.txt`` (the
    class order, as listed: it is not sorted), ``words.txt`` (readable
    names), ``train/<wnid>/images/*.JPEG`` and ``val/images/*.JPEG``
    labelled by ``val/val_annotations.txt``. The labelled ``val`` split is
    the test split (``split='test'`` or ``'val'``); the archive's own
    ``test/`` has no labels. Pipelines start with an image loader
    (``CheckedLoadImageFromFile`` names truncated JPEGs).

    Args:
        data_root (str): the folder the archive was extracted into.
        split (str): ``'train'``, ``'val'`` or ``'test'`` (= ``'val'``).
        pipeline (Sequence): transforms. Defaults to ().
        test_mode (bool): Defaults to False.
        **kwargs: other ``mmpretrain.datasets.BaseDataset`` arguments.
    """
    SPLITS = ('train', 'val', 'test')
    folder = 'tiny-imagenet-200'

    def __init__(self, data_root: str, split: str = 'train',
                 pipeline=(), test_mode: bool = False, **kwargs) -> None:
        if split not in self.SPLITS:
            raise ValueError(f'TinyImageNetDataset split must be one of '
                             f'{self.SPLITS}, got {split!r}')
        self.split = split
        super().__init__(ann_file='', data_root=data_root,
                         pipeline=pipeline, test_mode=test_mode, **kwargs)

    def load_data_list(self) -> List[dict]:
        root = require_dir(osp.join(self.data_root, self.folder), _ARCHIVE)
        wnids = read_wnids(osp.join(root, 'wnids.txt'))
        names = read_words(osp.join(root, 'words.txt'), wnids)
        self._metainfo.setdefault('classes', tuple(names))
        if self.split == 'train':
            return self._train_list(root, wnids)
        return self._val_list(root, wnids)

    @staticmethod
    def _train_list(root: str, wnids: List[str]) -> List[dict]:
        train = require_dir(osp.join(root, 'train'), _ARCHIVE)
        extra = sorted(set(os.listdir(train)) - set(wnids))
        if extra:
            raise DatasetFileError(
                train, f'has class folders not in wnids.txt: {extra[:3]}')
        infos = []
        for label, wnid in enumerate(wnids):
            folder = require_dir(osp.join(train, wnid, 'images'), _ARCHIVE)
            files = sorted(
                f for f in os.listdir(folder) if f.endswith(_IMAGE_SUFFIX))
            if not files:
                raise DatasetFileError(folder, f'has no {_IMAGE_SUFFIX} image')
            infos += [dict(img_path=osp.join(folder, f), gt_label=label)
                      for f in files]
        return infos

    @staticmethod
    def _val_list(root: str, wnids: List[str]) -> List[dict]:
        ann = osp.join(root, 'val', 'val_annotations.txt')
        labels = read_val_annotations(ann, wnids)
        images = require_dir(osp.join(root, 'val', 'images'), _ARCHIVE)
        present = set(os.listdir(images))
        missing = sorted(set(labels) - present)
        if missing:
            raise DatasetFileError(
                ann, f'lists {len(missing)} images missing from {images}, '
                f'e.g. {missing[:3]}')
        return [dict(img_path=osp.join(images, name), gt_label=label)
                for name, label in sorted(labels.items())]

    def extra_repr(self) -> List[str]:
        return [f'Root of the archive: \t{self.data_root}',
                f'Split: \t{self.split}']
