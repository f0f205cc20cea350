"""The demo dataset generator writes files MMSeg reads unchanged."""
import hashlib
import os
import os.path as osp

import numpy as np
from PIL import Image

from grpo_rm_mm.datasets import make_synthetic_voc
from grpo_rm_mm.datasets.synthetic_voc import DEMO_CLASSES, make_sample


def _digest(folder):
    h = hashlib.sha256()
    for dirpath, _, files in sorted(os.walk(folder)):
        for name in sorted(files):
            with open(osp.join(dirpath, name), 'rb') as f:
                h.update(name.encode() + f.read())
    return h.hexdigest()


def test_voc_layout_and_palette_masks(synthetic_voc):
    for sub in ('JPEGImages', 'SegmentationClass', 'ImageSets/Segmentation'):
        assert osp.isdir(osp.join(synthetic_voc, sub))
    split = osp.join(synthetic_voc, 'ImageSets/Segmentation/train.txt')
    with open(split) as f:
        names = f.read().split()
    assert len(names) == 8
    mask = Image.open(
        osp.join(synthetic_voc, 'SegmentationClass', names[0] + '.png'))
    assert mask.mode == 'P'  # palette PNG like VOC
    assert mask.getpalette()[3:6] == [128, 0, 0]  # class 1 colour


def test_deterministic_from_seed(tmp_path):
    a = make_synthetic_voc(str(tmp_path / 'a'), 3, 2, size=64, seed=7)
    b = make_synthetic_voc(str(tmp_path / 'b'), 3, 2, size=64, seed=7)
    c = make_synthetic_voc(str(tmp_path / 'c'), 3, 2, size=64, seed=8)
    assert _digest(a) == _digest(b)
    assert _digest(a) != _digest(c)


def test_created_once(tmp_path):
    root = make_synthetic_voc(str(tmp_path), 2, 1, size=64)
    jpg = osp.join(root, 'JPEGImages', '2026_000000.jpg')
    before = os.stat(jpg).st_mtime_ns
    make_synthetic_voc(str(tmp_path), 2, 1, size=64)
    assert os.stat(jpg).st_mtime_ns == before


def test_samples_have_objects_classes_and_void_borders():
    classes = {cls for cls, _, _ in DEMO_CLASSES}
    seen = set()
    for seed in range(20):
        label = make_sample(seed, size=96)['label']
        values = set(np.unique(label).tolist())
        assert values <= classes | {0, 255}
        assert 255 in values and len(values - {0, 255}) >= 1
        seen |= values
    assert classes <= seen  # every demo class appears


def test_pascal_voc_dataset_reads_it_unchanged(synthetic_voc):
    from mmengine.registry import DefaultScope
    from mmseg.datasets import PascalVOCDataset
    with DefaultScope.overwrite_default_scope('mmseg'):
        ds = _build_stock_voc(PascalVOCDataset, synthetic_voc)
        sample = ds[0]
    assert len(ds) == 4
    img = sample['inputs']
    seg = sample['data_samples'].gt_sem_seg.data
    assert img.shape == (3, 128, 128) and seg.shape == (1, 128, 128)
    assert set(seg.unique().tolist()) <= set(range(21)) | {255}


def _build_stock_voc(PascalVOCDataset, synthetic_voc):
    # stock MMCV/MMSeg loaders: nothing of grpo-rm-mm in the reading path
    return PascalVOCDataset(
        data_root=synthetic_voc,
        data_prefix=dict(img_path='JPEGImages',
                         seg_map_path='SegmentationClass'),
        ann_file='ImageSets/Segmentation/val.txt',
        pipeline=[dict(type='LoadImageFromFile'),
                  dict(type='LoadAnnotations'),
                  dict(type='PackSegInputs')])
