"""A small, learnable segmentation dataset in the real Pascal VOC 2012 layout.

The files are exactly what MMSegmentation's ``PascalVOCDataset`` reads::

    <root>/VOC2012/JPEGImages/<id>.jpg
    <root>/VOC2012/SegmentationClass/<id>.png   # palette PNG, 255 = ignore
    <root>/VOC2012/ImageSets/Segmentation/{train,val}.txt

Each image shows a few coloured shapes on a textured background. Every
foreground class has its own shape and colour family, so a small model can
learn it in a few hundred CPU iterations; object outlines are marked 255 like
VOC's "void" borders. Everything is a pure function of the seed.
"""
import json
import os
import os.path as osp
from typing import Dict, Optional, Sequence

import cv2
import numpy as np
from PIL import Image

#: (VOC class index, shape, base BGR colour) of the demo's foreground classes.
DEMO_CLASSES = (
    (1, 'ellipse', (40, 40, 200)),     # aeroplane: red ellipses
    (3, 'triangle', (40, 200, 40)),    # bird: green triangles
    (5, 'rectangle', (200, 60, 40)),   # bottle: blue rectangles
    (8, 'diamond', (40, 200, 220)),    # cat: yellow diamonds
    (12, 'cross', (200, 40, 200)),     # dog: magenta crosses
)

VOC_SUBDIR = 'VOC2012'
STAMP_NAME = '.grpo_rm_mm_synthetic.json'
BORDER = 2  # width in pixels of the 255 "void" band around each object


def voc_palette() -> np.ndarray:
    """The standard Pascal VOC colour map, (256, 3) uint8."""
    palette = np.zeros((256, 3), dtype=np.uint8)
    for index in range(256):
        value, r, g, b = index, 0, 0, 0
        for bit in range(8):
            r |= ((value >> 0) & 1) << (7 - bit)
            g |= ((value >> 1) & 1) << (7 - bit)
            b |= ((value >> 2) & 1) << (7 - bit)
            value >>= 3
        palette[index] = (r, g, b)
    return palette


def draw_background(rng: np.random.RandomState, size: int) -> np.ndarray:
    """Low-saturation texture: smooth noise plus fine grain."""
    coarse = rng.uniform(60, 190, (size // 16 + 1, size // 16 + 1, 3))
    smooth = cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)
    grey = smooth.mean(axis=2, keepdims=True)
    img = 0.7 * grey + 0.3 * smooth + rng.normal(0, 12, (size, size, 3))
    return img


def shape_mask(shape: str, size: int, cx: int, cy: int, r: int,
               angle: float) -> np.ndarray:
    mask = np.zeros((size, size), dtype=np.uint8)
    if shape == 'ellipse':
        cv2.ellipse(mask, (cx, cy), (r, max(r // 2, 3)), angle, 0, 360, 1, -1)
        return mask
    if shape == 'rectangle':
        pts = [(-0.45, -1.0), (0.45, -1.0), (0.45, 1.0), (-0.45, 1.0)]
    elif shape == 'triangle':
        pts = [(0.0, -1.0), (0.95, 0.8), (-0.95, 0.8)]
    elif shape == 'diamond':
        pts = [(0.0, -1.0), (0.8, 0.0), (0.0, 1.0), (-0.8, 0.0)]
    elif shape == 'cross':
        pts = [(-0.3, -1), (0.3, -1), (0.3, -0.3), (1, -0.3), (1, 0.3),
               (0.3, 0.3), (0.3, 1), (-0.3, 1), (-0.3, 0.3), (-1, 0.3),
               (-1, -0.3), (-0.3, -0.3)]
    else:
        raise ValueError(f'unknown shape {shape!r}')
    theta = np.deg2rad(angle)
    rot = np.array([[np.cos(theta), -np.sin(theta)],
                    [np.sin(theta), np.cos(theta)]])
    xy = (np.array(pts) @ rot.T) * r + (cx, cy)
    cv2.fillPoly(mask, [np.round(xy).astype(np.int32)], 1)
    return mask


def paint_shape(rng: np.random.RandomState, img: np.ndarray,
                kind: int) -> tuple:
    """Paint one shape of ``DEMO_CLASSES[kind]`` at a random place.

    Returns:
        tuple: the new image (float, H, W, 3), the shape's mask (uint8) and
        its VOC class index.
    """
    size = img.shape[0]
    cls, shape, colour = DEMO_CLASSES[kind]
    r = int(rng.uniform(0.14, 0.3) * size)
    cx, cy = (int(v) for v in rng.uniform(r * 0.6, size - r * 0.6, 2))
    mask = shape_mask(shape, size, cx, cy, r, rng.uniform(0, 360))
    tint = np.clip(np.array(colour) + rng.normal(0, 20, 3), 0, 255)
    shade = rng.normal(0, 10, (size, size, 1))
    return np.where(mask[..., None] > 0, tint + shade, img), mask, cls


def make_sample(seed: int, size: int = 128,
                max_objects: int = 3) -> Dict[str, np.ndarray]:
    """Draw one image and its VOC label map.

    Args:
        seed (int): the sample's seed; the result depends on nothing else.
        size (int): side length in pixels.
        max_objects (int): at most this many shapes (at least one).

    Returns:
        dict: ``img`` (H, W, 3) uint8 BGR and ``label`` (H, W) uint8 with
        class indices, 0 for background and 255 on object borders.
    """
    rng = np.random.RandomState(seed)
    img = draw_background(rng, size)
    label = np.zeros((size, size), dtype=np.uint8)
    kernel = np.ones((2 * BORDER + 1, 2 * BORDER + 1), np.uint8)
    for _ in range(rng.randint(1, max_objects + 1)):
        img, mask, cls = paint_shape(rng, img, rng.randint(len(DEMO_CLASSES)))
        if not mask.any():
            continue
        outer = cv2.dilate(mask, kernel)
        inner = cv2.erode(mask, kernel)
        label[outer > 0] = 255
        label[inner > 0] = cls
    return dict(img=np.clip(img, 0, 255).astype(np.uint8), label=label)


def make_synthetic_voc(root: str, num_train: int = 64, num_val: int = 16,
                       size: int = 128, seed: int = 0,
                       overwrite: bool = False) -> str:
    """Write the dataset under ``root`` unless it is already there.

    Args:
        root (str): the ``VOCdevkit`` folder to write into.
        num_train (int): number of training images.
        num_val (int): number of validation images.
        size (int): image side in pixels.
        seed (int): base seed; image ``i`` uses ``seed * 100003 + i``.
        overwrite (bool): rewrite even if a dataset with the same parameters
            exists.

    Returns:
        str: the ``VOC2012`` data root to put in a config's ``data_root``.
    """
    data_root = osp.join(root, VOC_SUBDIR)
    params = dict(num_train=num_train, num_val=num_val, size=size, seed=seed)
    stamp = osp.join(data_root, STAMP_NAME)
    if not overwrite and read_stamp(stamp) == params:
        return data_root
    img_dir = osp.join(data_root, 'JPEGImages')
    ann_dir = osp.join(data_root, 'SegmentationClass')
    split_dir = osp.join(data_root, 'ImageSets', 'Segmentation')
    for folder in (img_dir, ann_dir, split_dir):
        os.makedirs(folder, exist_ok=True)
    palette = voc_palette().flatten().tolist()
    splits = dict(train=range(num_train),
                  val=range(num_train, num_train + num_val))
    for split, indices in splits.items():
        names = []
        for index in indices:
            name = f'2026_{index:06d}'
            sample = make_sample(seed * 100003 + index, size=size)
            cv2.imwrite(osp.join(img_dir, name + '.jpg'), sample['img'],
                        [cv2.IMWRITE_JPEG_QUALITY, 92])
            png = Image.fromarray(sample['label'], mode='P')
            png.putpalette(palette)
            png.save(osp.join(ann_dir, name + '.png'))
            names.append(name)
        with open(osp.join(split_dir, split + '.txt'), 'w') as f:
            f.write('\n'.join(names) + '\n')
    with open(stamp, 'w') as f:
        json.dump(params, f)
    return data_root


def read_stamp(path: str) -> Optional[dict]:
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def main(argv: Optional[Sequence[str]] = None) -> None:
    import argparse
    parser = argparse.ArgumentParser(
        description='Write the synthetic Pascal VOC demo dataset.')
    parser.add_argument('root', nargs='?', default='data/synthetic_voc',
                        help='VOCdevkit folder to write '
                        '(default: %(default)s)')
    parser.add_argument('--num-train', type=int, default=64)
    parser.add_argument('--num-val', type=int, default=16)
    parser.add_argument('--size', type=int, default=128)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--overwrite', action='store_true')
    args = parser.parse_args(argv)
    data_root = make_synthetic_voc(args.root, args.num_train, args.num_val,
                                   args.size, args.seed, args.overwrite)
    print(f'synthetic Pascal VOC ready at {data_root}')


if __name__ == '__main__':
    main()
