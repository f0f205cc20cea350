"""A small classification dataset in MMPretrain's class-folder layout.

``<root>/{train,val}/<class>/<id>.png``, read by MMPretrain's
``CustomDataset``: one shape of a demo class (the shapes of
:mod:`.synthetic_voc`) per image on a textured background. Deterministic from
the seed; written once.
"""
import json
import os
import os.path as osp
from typing import Tuple

import cv2
import numpy as np

from .synthetic_voc import (DEMO_CLASSES, STAMP_NAME, draw_background,
                            paint_shape, read_stamp)

#: folder names, in the order of DEMO_CLASSES (and sorted, as CustomDataset
#: numbers them)
CLASS_NAMES = ('aeroplane', 'bird', 'bottle', 'cat', 'dog')


def make_cls_sample(seed: int, size: int = 64) -> Tuple[np.ndarray, int]:
    """One image (H, W, 3) uint8 BGR and its class index in CLASS_NAMES."""
    rng = np.random.RandomState(seed)
    kind = rng.randint(len(DEMO_CLASSES))
    img, _, _ = paint_shape(rng, draw_background(rng, size), kind)
    return np.clip(img, 0, 255).astype(np.uint8), kind


def make_synthetic_cls(root: str, num_train: int = 100, num_val: int = 25,
                       size: int = 64, seed: int = 0,
                       overwrite: bool = False) -> str:
    """Write ``num_train`` / ``num_val`` images under ``root`` (once).

    Returns:
        str: ``root``, the config's ``data_root``.
    """
    params = dict(num_train=num_train, num_val=num_val, size=size, seed=seed)
    stamp = osp.join(root, STAMP_NAME)
    if not overwrite and read_stamp(stamp) == params:
        return root
    splits = dict(train=range(num_train),
                  val=range(num_train, num_train + num_val))
    for split, indices in splits.items():
        for name in CLASS_NAMES:
            os.makedirs(osp.join(root, split, name), exist_ok=True)
        for index in indices:
            img, kind = make_cls_sample(seed * 100003 + index, size)
            cv2.imwrite(
                osp.join(root, split, CLASS_NAMES[kind], f'{index:06d}.png'),
                img)
    with open(stamp, 'w') as f:
        json.dump(params, f)
    return root
