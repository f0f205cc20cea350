"""Base of the classification datasets whose images are one array in memory.

The CIFAR and STL-10 archives store all images of a split as one uint8
array of planar RGB images; each is turned into the (H, W, 3) BGR image
that ``LoadImageFromFile`` would give, only when it is used.
"""
import os.path as osp
from typing import List, Sequence

import numpy as np
from mmpretrain.datasets import BaseDataset


class DatasetFileError(ValueError):
    """A dataset file that is truncated, malformed or inconsistent."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f'{path}: {problem}')
        self.path = path


def require_file(path: str, what: str) -> str:
    """``path`` if it is a file, else an error saying what was expected."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'{what} not found: {path}')
    return path


def require_dir(path: str, archive: str) -> str:
    """``path`` if it is a folder; else say where ``data_root`` must point."""
    if not osp.isdir(path):
        raise FileNotFoundError(
            f'{path} does not exist: data_root must be the folder into which '
            f'{archive} was extracted')
    return path


class PlanarImageDataset(BaseDataset):
    """Images from an (N, 3, A, B) uint8 RGB array, labels from the files.

    Subclasses implement :meth:`read_split`, returning the array, the labels
    and the class names; ``column_major`` says the last two axes are
    (width, height) instead of (height, width). Each sample's ``img`` is
    made in :meth:`prepare_data`, so pipelines start without a loader.

    Args:
        data_root (str): the folder the archive was extracted into.
        split (str): one of :attr:`SPLITS`.
        pipeline (Sequence): transforms. Defaults to ().
        test_mode (bool): Defaults to False.
        **kwargs: other ``mmpretrain.datasets.BaseDataset`` arguments.
    """
    SPLITS: Sequence[str] = ('train', 'test')
    column_major = False

    def __init__(self,
                 data_root: str,
                 split: str = 'train',
                 pipeline: Sequence = (),
                 test_mode: bool = False,
                 **kwargs) -> None:
        if split not in self.SPLITS:
            raise ValueError(f'{type(self).__name__} split must be one of '
                             f'{tuple(self.SPLITS)}, got {split!r}')
        self.split = split
        self._images = None
        super().__init__(
            ann_file='',
            data_root=data_root,
            pipeline=pipeline,
            test_mode=test_mode,
            **kwargs)

    def read_split(self):
        """Returns (images (N, 3, A, B) uint8, labels (N,) int64 or None,
        class names)."""
        raise NotImplementedError

    def load_data_list(self) -> List[dict]:
        images, labels, classes = self.read_split()
        self._metainfo.setdefault('classes', tuple(classes))
        self._images = images
        infos = []
        for i in range(len(images)):
            info = dict(image_index=i)
            if labels is not None:
                info['gt_label'] = int(labels[i])
            infos.append(info)
        return infos

    def image(self, index: int) -> np.ndarray:
        """The ``index``-th image of the split, (H, W, 3) BGR uint8."""
        planes = self._images[index]
        hwc = planes.transpose((2, 1, 0) if self.column_major else (1, 2, 0))
        return np.ascontiguousarray(hwc[..., ::-1])

    def prepare_data(self, idx):
        info = self.get_data_info(idx)
        img = self.image(info['image_index'])
        info.update(img=img, img_shape=img.shape[:2],
                    ori_shape=img.shape[:2])
        return self.pipeline(info)

    def extra_repr(self) -> List[str]:
        return [f'Root of the archive: \t{self.data_root}',
                f'Split: \t{self.split}']
