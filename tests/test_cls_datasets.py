"""The readers of the original CIFAR / STL-10 / Tiny-ImageNet files, on
tiny fixture archives in the real formats."""
import os
import os.path as osp
import pickle
import shutil

import numpy as np
import pytest
from cls_fixtures import (STL_CLASSES, TINY_WNIDS, pattern, write_cifar10,
                          write_cifar100, write_stl10, write_tiny_imagenet)

from grpo_rm_mm.datasets import (CIFAR10Dataset, CIFAR100Dataset,
                                 DatasetFileError, STL10Dataset,
                                 TinyImageNetDataset)

LOAD = [dict(type='CheckedLoadImageFromFile')]


def bgr(rgb):
    return rgb[..., ::-1]


def test_cifar10_reads_batches_in_order(tmp_path):
    written = write_cifar10(str(tmp_path))
    train = CIFAR10Dataset(str(tmp_path), split='train')
    test = CIFAR10Dataset(str(tmp_path), split='test')
    assert train.CLASSES == tuple(f'c{k}' for k in range(10))
    assert len(train) == 10 and len(test) == 4
    assert [int(x) for x in train.get_gt_labels()] == list(range(10))
    imgs, labels = written['data_batch_3']
    sample = train[5]  # second image of the third batch
    np.testing.assert_array_equal(sample['img'], bgr(imgs[1]))
    assert sample['gt_label'] == labels[1] == 5
    imgs, labels = written['test_batch']
    np.testing.assert_array_equal(test[2]['img'], bgr(imgs[2]))
    assert test[2]['gt_label'] == 6


def test_cifar_keys_may_be_str(tmp_path):
    """Loaded by Python 3 and pickled again, the keys are str."""
    write_cifar10(str(tmp_path))
    path = tmp_path / 'cifar-10-batches-py' / 'test_batch'
    with open(path, 'rb') as f:
        batch = pickle.load(f, encoding='latin1')
    with open(path, 'wb') as f:
        pickle.dump(batch, f)
    assert CIFAR10Dataset(str(tmp_path), split='test')[0]['gt_label'] == 0


def test_cifar100_fine_labels_and_names(tmp_path):
    written = write_cifar100(str(tmp_path))
    ds = CIFAR100Dataset(str(tmp_path), split='test')
    assert len(ds) == 100 and ds.CLASSES[7] == 'f7'
    imgs, labels = written['test']
    np.testing.assert_array_equal(ds[42]['img'], bgr(imgs[42]))
    assert ds[42]['gt_label'] == 42


@pytest.mark.parametrize('damage, match', [
    ('truncate', 'truncated or not a CIFAR pickle'),
    ('no_labels', "has no 'labels' entry"),
    ('short_data', r"'data' must be uint8 \(N, 3072\)"),
    ('label_range', r"'labels' must be in \[0, 10\)"),
])
def test_cifar_damaged_file_is_named(tmp_path, damage, match):
    write_cifar10(str(tmp_path))
    path = str(tmp_path / 'cifar-10-batches-py' / 'data_batch_2')
    if damage == 'truncate':
        with open(path, 'rb') as f:
            raw = f.read()
        with open(path, 'wb') as f:
            f.write(raw[:len(raw) // 2])
    else:
        with open(path, 'rb') as f:
            batch = pickle.load(f, encoding='bytes')
        if damage == 'no_labels':
            del batch[b'labels']
        elif damage == 'short_data':
            batch[b'data'] = batch[b'data'][:, :-1]
        else:
            batch[b'labels'][0] = 10
        with open(path, 'wb') as f:
            pickle.dump(batch, f, protocol=2)
    with pytest.raises(DatasetFileError, match=match) as info:
        CIFAR10Dataset(str(tmp_path), split='train')
    assert path in str(info.value)


class _Payload:
    def __reduce__(self):
        return (os.system, ('echo pwned',))


def test_cifar_pickle_cannot_run_code(tmp_path):
    write_cifar10(str(tmp_path))
    path = str(tmp_path / 'cifar-10-batches-py' / 'batches.meta')
    with open(path, 'wb') as f:
        pickle.dump({b'label_names': _Payload()}, f, protocol=2)
    with pytest.raises(DatasetFileError, match='refusing to load') as info:
        CIFAR10Dataset(str(tmp_path), split='train')
    assert path in str(info.value)


def test_cifar_wrong_data_root_says_what_to_point_at(tmp_path):
    with pytest.raises(FileNotFoundError, match='cifar-10-python.tar.gz'):
        CIFAR10Dataset(str(tmp_path), split='train')
    with pytest.raises(ValueError, match="split must be one of"):
        CIFAR10Dataset(str(tmp_path), split='val')


def test_stl10_images_are_transposed_and_labels_shifted(tmp_path):
    written = write_stl10(str(tmp_path))
    ds = STL10Dataset(str(tmp_path), split='train')
    assert ds.CLASSES == STL_CLASSES and len(ds) == 6
    imgs, labels = written['train']
    for i in (0, 4):
        img = ds[i]['img']
        np.testing.assert_array_equal(img, bgr(imgs[i]))
        assert ds[i]['gt_label'] == labels[i] - 1
    # the fixture's red channel grows down the rows, its green along columns
    img = ds[0]['img']
    assert img[90, 0, 2] > img[0, 0, 2] and img[0, 90, 1] > img[0, 0, 1]
    assert [int(x) for x in STL10Dataset(str(tmp_path), split='test')
            .get_gt_labels()] == [(50 + i) % 10 for i in range(4)]


def test_stl10_unlabeled_split_is_optional(tmp_path):
    write_stl10(str(tmp_path))
    ds = STL10Dataset(str(tmp_path), split='unlabeled')
    assert len(ds) == 1 and 'gt_label' not in ds.get_data_info(0)
    np.testing.assert_array_equal(ds[0]['img'], bgr(pattern(96, 99)))
    os.remove(tmp_path / 'stl10_binary' / 'unlabeled_X.bin')
    assert len(STL10Dataset(str(tmp_path), split='train')) == 6


@pytest.mark.parametrize('name, cut, match', [
    ('train_X.bin', 100, 'is not a positive multiple of 27648'),
    ('train_X.bin', 27648, 'has 6 labels for 5 images'),
    ('train_y.bin', 1, 'has 5 labels for 6 images'),
])
def test_stl10_truncated_file_is_named(tmp_path, name, cut, match):
    write_stl10(str(tmp_path))
    path = str(tmp_path / 'stl10_binary' / name)
    size = osp.getsize(path)
    with open(path, 'r+b') as f:
        f.truncate(size - cut)
    with pytest.raises(DatasetFileError, match=match) as info:
        STL10Dataset(str(tmp_path), split='train')
    label_file = path.replace('_X.bin', '_y.bin')
    assert path in str(info.value) or label_file in str(info.value)


def test_stl10_label_zero_is_refused(tmp_path):
    write_stl10(str(tmp_path))
    path = tmp_path / 'stl10_binary' / 'test_y.bin'
    np.zeros(4, np.uint8).tofile(path)
    with pytest.raises(DatasetFileError, match=r'in \[1, 10\]'):
        STL10Dataset(str(tmp_path), split='test')


def test_tiny_imagenet_class_order_is_wnids_txt(tmp_path):
    write_tiny_imagenet(str(tmp_path), per_class=2)
    train = TinyImageNetDataset(str(tmp_path), split='train', pipeline=LOAD)
    assert list(TINY_WNIDS) != sorted(TINY_WNIDS)
    assert train.CLASSES == tuple(f'name of {w}, synonym'
                                  for w in TINY_WNIDS)
    assert len(train) == 6
    for i in range(len(train)):
        info = train.get_data_info(i)
        wnid = TINY_WNIDS[info['gt_label']]
        assert f'/train/{wnid}/images/{wnid}_' in info['img_path']
    assert train[0]['img'].shape == (16, 16, 3)


def test_tiny_imagenet_val_is_the_test_split(tmp_path):
    write_tiny_imagenet(str(tmp_path), per_class=2)
    val = TinyImageNetDataset(str(tmp_path), split='val', pipeline=LOAD)
    test = TinyImageNetDataset(str(tmp_path), split='test')
    assert len(val) == len(test) == 6
    for i in range(6):
        info = test.get_data_info(i)
        name = osp.basename(info['img_path'])
        k = int(name[4:-5])
        assert info['gt_label'] == (2 * k) % 3  # the fixture's labels
    # JPEG: the smooth gradient channels (G, R) survive, the noise does not
    diff = val[0]['img'].astype(int) - bgr(pattern(16, 500))
    assert np.abs(diff[..., 1:]).mean() < 8


def test_tiny_imagenet_damaged_files_are_named(tmp_path):
    folder = write_tiny_imagenet(str(tmp_path), per_class=1)
    ann = osp.join(folder, 'val', 'val_annotations.txt')
    with open(ann) as f:
        good = f.read()
    with open(ann, 'w') as f:
        f.write(good + 'val_9.JPEG')  # truncated last line
    with pytest.raises(DatasetFileError, match='line 4 is not') as info:
        TinyImageNetDataset(str(tmp_path), split='test')
    assert ann in str(info.value)
    with open(ann, 'w') as f:
        f.write(good.replace(TINY_WNIDS[0], 'n11111111'))
    with pytest.raises(DatasetFileError, match='n11111111 is not in wnids'):
        TinyImageNetDataset(str(tmp_path), split='test')
    with open(ann, 'w') as f:
        f.write(good)
    os.remove(osp.join(folder, 'val', 'images', 'val_1.JPEG'))
    with pytest.raises(DatasetFileError, match="e.g. \\['val_1.JPEG'\\]"):
        TinyImageNetDataset(str(tmp_path), split='test')
    shutil.rmtree(osp.join(folder, 'train', TINY_WNIDS[2]))
    with pytest.raises(FileNotFoundError, match=TINY_WNIDS[2]):
        TinyImageNetDataset(str(tmp_path), split='train')


def test_tiny_imagenet_truncated_jpeg_is_named(tmp_path):
    folder = write_tiny_imagenet(str(tmp_path), per_class=1)
    path = osp.join(folder, 'val', 'images', 'val_0.JPEG')
    with open(path, 'rb') as f:
        raw = f.read()
    with open(path, 'wb') as f:
        f.write(raw[:len(raw) // 2])
    ds = TinyImageNetDataset(str(tmp_path), split='test', pipeline=LOAD)
    with pytest.raises(ValueError, match='truncated JPEG') as info:
        ds[0]
    assert path in str(info.value)


def test_tiny_imagenet_words_must_name_every_class(tmp_path):
    folder = write_tiny_imagenet(str(tmp_path), per_class=1)
    words = osp.join(folder, 'words.txt')
    with open(words, 'w') as f:
        f.write(f'{TINY_WNIDS[0]}\tfish\n')
    with pytest.raises(DatasetFileError, match='has no name for 2') as info:
        TinyImageNetDataset(str(tmp_path), split='train')
    assert words in str(info.value)
