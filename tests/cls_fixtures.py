"""Tiny copies of the CIFAR-10/100, STL-10 and Tiny-ImageNet archives,
written in the original formats (as extracted) under one root.

Every image has a known content: ``pattern(size, seed)`` is an (H, W, 3)
RGB image, different in each row and column, so orientation mistakes show.
"""
import os
import os.path as osp
import pickle

import cv2
import numpy as np

#: Tiny-ImageNet class order of the fixture: deliberately not sorted
TINY_WNIDS = ('n09999999', 'n01443537', 'n02124075')


def pattern(size: int, seed: int) -> np.ndarray:
    """(size, size, 3) uint8 RGB: a gradient per axis plus noise."""
    rng = np.random.RandomState(seed)
    ys, xs = np.mgrid[:size, :size]
    img = np.stack([ys * 255 // size, xs * 255 // size,
                    rng.randint(0, 256, (size, size))], axis=-1)
    return img.astype(np.uint8)


def _dump_py2(obj, path):
    """A pickle as the archives': protocol 2, byte-string keys, arrays
    named as numpy 1 named them (``numpy.core.multiarray``)."""
    raw = pickle.dumps(obj, protocol=2)
    with open(path, 'wb') as f:
        f.write(raw.replace(b'numpy._core.multiarray',
                            b'numpy.core.multiarray'))


def _cifar_batch(labels, seed, label_key):
    imgs = [pattern(32, seed + i) for i in range(len(labels))]
    # row-major planes: R (1024), G, B per image
    data = np.stack([img.transpose(2, 0, 1).reshape(-1) for img in imgs])
    return {b'data': data, label_key: list(labels),
            b'batch_label': b'fixture'}, imgs


def write_cifar10(root):
    """Five train batches of two images (labels 0..9 once), four test."""
    folder = osp.join(root, 'cifar-10-batches-py')
    os.makedirs(folder, exist_ok=True)
    files = {f'data_batch_{k + 1}': [2 * k, 2 * k + 1] for k in range(5)}
    files['test_batch'] = [0, 3, 6, 9]
    images = {}
    for i, (name, labels) in enumerate(files.items()):
        batch, imgs = _cifar_batch(labels, 100 * i, b'labels')
        _dump_py2(batch, osp.join(folder, name))
        images[name] = (imgs, labels)
    _dump_py2({b'label_names': [f'c{k}'.encode() for k in range(10)],
               b'num_cases_per_batch': 10}, osp.join(folder, 'batches.meta'))
    return images


def write_cifar100(root):
    folder = osp.join(root, 'cifar-100-python')
    os.makedirs(folder, exist_ok=True)
    images = {}
    for i, name in enumerate(['train', 'test']):
        labels = list(range(100))
        batch, imgs = _cifar_batch(labels, 1000 * i, b'fine_labels')
        batch[b'coarse_labels'] = [k // 5 for k in labels]
        _dump_py2(batch, osp.join(folder, name))
        images[name] = (imgs, labels)
    _dump_py2({b'fine_label_names': [f'f{k}'.encode() for k in range(100)],
               b'coarse_label_names': [f'g{k}'.encode() for k in range(20)]},
              osp.join(folder, 'meta'))
    return images


STL_CLASSES = ('airplane', 'bird', 'car', 'cat', 'deer', 'dog', 'horse',
               'monkey', 'ship', 'truck')


def write_stl10(root, num=(6, 4)):
    folder = osp.join(root, 'stl10_binary')
    os.makedirs(folder, exist_ok=True)
    images = {}
    for split, n, seed in (('train', num[0], 0), ('test', num[1], 50)):
        imgs = [pattern(96, seed + i) for i in range(n)]
        labels = [1 + (seed + i) % 10 for i in range(n)]  # 1..10 on disk
        # each channel column-major: (3, W, H) per image
        np.stack([img.transpose(2, 1, 0) for img in imgs]).tofile(
            osp.join(folder, f'{split}_X.bin'))
        np.array(labels, dtype=np.uint8).tofile(
            osp.join(folder, f'{split}_y.bin'))
        images[split] = (imgs, labels)
    np.stack([pattern(96, 99)]).transpose(0, 3, 2, 1).tofile(
        osp.join(folder, 'unlabeled_X.bin'))
    with open(osp.join(folder, 'class_names.txt'), 'w') as f:
        f.write('\n'.join(STL_CLASSES) + '\n')
    return images


def write_tiny_imagenet(root, per_class=2, size=16):
    folder = osp.join(root, 'tiny-imagenet-200')
    with_words = list(TINY_WNIDS) + ['n00000001']  # words.txt has more
    os.makedirs(osp.join(folder, 'val', 'images'), exist_ok=True)
    with open(osp.join(folder, 'wnids.txt'), 'w') as f:
        f.write('\n'.join(TINY_WNIDS) + '\n')
    with open(osp.join(folder, 'words.txt'), 'w') as f:
        f.write(''.join(f'{w}\tname of {w}, synonym\n'
                        for w in sorted(with_words)))
    seed = 0
    for wnid in TINY_WNIDS:
        images = osp.join(folder, 'train', wnid, 'images')
        os.makedirs(images)
        with open(osp.join(folder, 'train', wnid, f'{wnid}_boxes.txt'),
                  'w') as f:
            f.write('')
        for i in range(per_class):
            seed += 1
            cv2.imwrite(osp.join(images, f'{wnid}_{i}.JPEG'),
                        pattern(size, seed)[..., ::-1])
    lines = []
    for i in range(per_class * len(TINY_WNIDS)):
        wnid = TINY_WNIDS[(i * 2) % len(TINY_WNIDS)]
        cv2.imwrite(osp.join(folder, 'val', 'images', f'val_{i}.JPEG'),
                    pattern(size, 500 + i)[..., ::-1])
        lines.append(f'val_{i}.JPEG\t{wnid}\t0\t0\t{size - 1}\t{size - 1}\n')
    with open(osp.join(folder, 'val', 'val_annotations.txt'), 'w') as f:
        f.writelines(lines)
    return folder


def write_all(root):
    """All four archives under ``root`` (the configs' data_root)."""
    write_cifar10(root)
    write_cifar100(root)
    write_stl10(root)
    write_tiny_imagenet(root)
    return root
