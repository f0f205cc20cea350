"""End to end through tools/train.py and tools/test.py, and their errors."""
import contextlib
import glob
import importlib.util
import json
import os.path as osp
import shutil

import cv2
import pytest
from conftest import REPO_ROOT, load_tool, run_tool

DEMO_CONFIG = ('configs/demo/'
               'grpo-rm_dinov2-tiny_1xb8-300_synthetic-voc-112x112.py')


def data_options(data_root):
    opts = []
    for split in ('train', 'val', 'test'):
        opts += [f'{split}_dataloader.dataset.data_root={data_root}',
                 f'{split}_dataloader.num_workers=0',
                 f'{split}_dataloader.persistent_workers=False']
    return opts + ['train_dataloader.batch_size=2']


def train(work_dir, data_root, max_iters, *extra):
    return run_tool(
        'tools/train.py', DEMO_CONFIG, '--work-dir', str(work_dir), *extra,
        '--cfg-options', *data_options(data_root),
        f'train_cfg.max_iters={max_iters}', 'train_cfg.val_interval=4',
        'default_hooks.checkpoint.interval=2',
        'default_hooks.logger.interval=1')


@pytest.fixture(scope='module')
def trained(tmp_path_factory, synthetic_voc):
    work_dir = tmp_path_factory.mktemp('work')
    proc = train(work_dir, synthetic_voc, 4)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return work_dir, proc


def test_train_writes_checkpoints_and_validates(trained):
    work_dir, proc = trained
    assert osp.isfile(osp.join(work_dir, 'iter_2.pth'))
    assert osp.isfile(osp.join(work_dir, 'iter_4.pth'))
    assert 'mIoU' in proc.stdout + proc.stderr
    # the hook watched the demo's lagged groups and found no lock-out
    assert 'decode.grpo_true_clipped' in proc.stdout + proc.stderr
    assert 'locked out' not in proc.stdout + proc.stderr


def test_resume_continues_from_last_checkpoint(trained, synthetic_voc,
                                               tmp_path):
    work_dir, _ = trained
    resumed = tmp_path / 'resumed'
    shutil.copytree(work_dir, resumed)
    proc = train(resumed, synthetic_voc, 6, '--resume')
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    assert 'resumed epoch: 0, iter: 4' in log
    assert 'Iter(train) [5/6]' in log and 'Iter(train) [1/6]' not in log
    assert osp.isfile(osp.join(resumed, 'iter_6.pth'))


def test_test_tool_reports_miou(trained, synthetic_voc, tmp_path):
    work_dir, _ = trained
    out_dir = tmp_path / 'test'
    proc = run_tool('tools/test.py', DEMO_CONFIG,
                    osp.join(work_dir, 'iter_4.pth'), '--work-dir',
                    str(out_dir), '--cfg-options',
                    *data_options(synthetic_voc))
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics_files = glob.glob(str(out_dir / '*' / '*.json'))
    assert metrics_files, 'tools/test.py wrote no metrics json'
    with open(metrics_files[0]) as f:
        metrics = json.load(f)
    assert 0.0 <= metrics['mIoU'] <= 100.0
    assert 'per class results' in proc.stdout + proc.stderr


@pytest.mark.parametrize('option, message', [
    ('model.decode_head.num_classs=3',
     "key 'model.decode_head.num_classs' is not in the config.*"
     "did you mean 'num_classes'"),
    ('train_dataloader.dataset.data_root=/does/not/exist',
     "train_dataloader.dataset.data_root: dataset folder '/does/not/exist'"),
    ('train_dataloader.dataset.ann_file=missing.txt',
     'train_dataloader.dataset.ann_file: annotation file .*missing.txt'),
])
def test_bad_config_input_is_named(option, message, tmp_path,
                                   synthetic_voc):
    import re
    proc = run_tool('tools/train.py', DEMO_CONFIG, '--work-dir',
                    str(tmp_path), '--cfg-options',
                    *data_options(synthetic_voc), option)
    assert proc.returncode != 0
    assert re.search(message, proc.stderr), proc.stderr[-2000:]


def test_empty_split_file_is_named(synthetic_voc, tmp_path):
    root, _ = _voc_copy(synthetic_voc, tmp_path)
    split = root / 'ImageSets/Segmentation/val.txt'
    split.write_text('')
    proc = run_tool('tools/train.py', DEMO_CONFIG, '--work-dir',
                    str(tmp_path / 'w'), '--cfg-options', *data_options(root))
    assert proc.returncode != 0
    assert ("ValueError: val_dataloader.dataset.ann_file: annotation file "
            f"'{split}' is empty: it lists no samples") in proc.stderr, \
        proc.stderr[-2000:]


def test_split_file_of_blank_lines_is_empty(synthetic_voc, tmp_path):
    from mmengine.config import Config

    from grpo_rm_mm.utils import check_dataset_paths
    root, _ = _voc_copy(synthetic_voc, tmp_path)
    cfg = Config.fromfile(osp.join(REPO_ROOT, DEMO_CONFIG))
    cfg.train_dataloader.dataset.data_root = str(root)
    check_dataset_paths(cfg, ('train', ))
    (root / 'ImageSets/Segmentation/train.txt').write_text('\n  \n')
    with pytest.raises(ValueError, match=r'train_dataloader.dataset.ann_file'
                       r": annotation file '.*train.txt' is empty"):
        check_dataset_paths(cfg, ('train', ))


def test_new_key_allowed_with_plus_prefix():
    from mmengine.config import Config

    from grpo_rm_mm.utils import merge_cfg_options
    cfg = Config(dict(model=dict(a=1), lst=[dict(b=1)]))
    merge_cfg_options(cfg, {'+model.new': 2, 'lst.0.b': 3})
    assert cfg.model.new == 2 and cfg.lst[0].b == 3


def test_cfg_options_add_new_keys_and_refuse_typos(monkeypatch):
    """MMSeg's docs add keys (``randomness.deterministic``, a hook's
    ``interval``): a key close to no existing one is added and said so; a
    likely typo is still refused with its suggestion."""
    from mmengine.config import Config

    from grpo_rm_mm.utils import ConfigKeyError, config, merge_cfg_options
    printed = []  # MMEngine's logger may write to a stream set up earlier
    monkeypatch.setattr(config, 'print_log',
                        lambda msg, **kwargs: printed.append(msg))
    cfg = Config.fromfile(osp.join(REPO_ROOT, DEMO_CONFIG))
    assert 'deterministic' not in cfg.get('randomness', {})
    merge_cfg_options(cfg, {'randomness.deterministic': True,
                            'default_hooks.visualization.interval': 1})
    assert cfg.randomness.deterministic is True
    assert cfg.default_hooks.visualization == dict(
        type='SegVisualizationHook', interval=1)
    assert any("added the new key 'default_hooks.visualization.interval'"
               in msg for msg in printed), printed
    for typo, suggestion in (('model.decode_head.num_classs', 'num_classes'),
                             ('train_cfg.max_iter', 'max_iters'),
                             ('default_hooks.visualisation.draw',
                              'visualization')):
        with pytest.raises(ConfigKeyError,
                           match=f"did you mean '{suggestion}'"):
            merge_cfg_options(cfg, {typo: 1})
    with pytest.raises(ConfigKeyError, match='is no index'):
        merge_cfg_options(cfg, {'custom_hooks.7.interval': 1})


def test_test_tool_missing_checkpoint(tmp_path):
    proc = run_tool('tools/test.py', DEMO_CONFIG, str(tmp_path / 'no.pth'))
    assert proc.returncode != 0
    assert 'checkpoint not found' in proc.stderr and 'no.pth' in proc.stderr


def _voc_copy(synthetic_voc, tmp_path):
    root = tmp_path / 'VOC2012'
    shutil.copytree(synthetic_voc, root)
    with open(root / 'ImageSets/Segmentation/val.txt') as f:
        name = f.read().split()[0]
    return root, name


def _load(root, name, reduce_zero_label=False, **kwargs):
    """Load one sample as the dataset would (its ``reduce_zero_label``)."""
    from grpo_rm_mm.datasets.transforms import (CheckedLoadAnnotations,
                                                CheckedLoadImageFromFile)
    results = dict(img_path=str(root / 'JPEGImages' / f'{name}.jpg'),
                   seg_map_path=str(root / 'SegmentationClass' /
                                    f'{name}.png'),
                   reduce_zero_label=reduce_zero_label, seg_fields=[])
    results = CheckedLoadImageFromFile().transform(results)
    return CheckedLoadAnnotations(**kwargs).transform(results)


def test_checked_loaders_pass_good_files(synthetic_voc, tmp_path):
    root, name = _voc_copy(synthetic_voc, tmp_path)
    out = _load(root, name, num_classes=21)
    assert out['img'].shape[:2] == out['gt_seg_map'].shape
    # the synthetic masks hold 255 borders and a few classes up to 12
    assert {0, 255} <= set(out['gt_seg_map'].flat)


def _write_mask(path, values):
    """A palette PNG holding ``values`` in horizontal bands."""
    import numpy as np
    from PIL import Image
    mask = np.repeat(np.array(values, np.uint8), 128 // len(values) + 1)
    mask = np.tile(mask[:128, None], (1, 128))
    image = Image.fromarray(mask, mode='L').convert('P')
    image.putpalette(list(range(256)) * 3)
    image.save(path)


def test_mask_label_outside_the_classes_names_file_and_values(
        synthetic_voc, tmp_path):
    root, name = _voc_copy(synthetic_voc, tmp_path)
    _write_mask(root / 'SegmentationClass' / f'{name}.png',
                [0, 3, 21, 30, 255])
    with pytest.raises(ValueError, match=(
            rf"mask .*{name}.png has label value\(s\) \[21, 30\] outside "
            r"the dataset's 21 classes \(0..20\) that are not the ignore "
            r'index 255')):
        _load(root, name, num_classes=21)
    # the same file is fine for a dataset with more classes
    assert _load(root, name, num_classes=31)['gt_seg_map'].max() == 255


def test_mask_labels_are_checked_after_reduce_zero_label(synthetic_voc,
                                                         tmp_path):
    # ADE20K style: 0 is "other" (ignored), 1..C are the C classes
    root, name = _voc_copy(synthetic_voc, tmp_path)
    mask_path = root / 'SegmentationClass' / f'{name}.png'
    _write_mask(mask_path, [0, 1, 21, 255])
    out = _load(root, name, num_classes=21, reduce_zero_label=True)
    assert set(out['gt_seg_map'].flat) == {0, 20, 255}
    _write_mask(mask_path, [0, 1, 22])
    with pytest.raises(ValueError, match=r'\[21\] \(after '
                       r'reduce_zero_label\) outside'):
        _load(root, name, num_classes=21, reduce_zero_label=True)


@pytest.mark.parametrize('backend', ['pillow', 'cv2'])
@pytest.mark.parametrize('damage', ['garbage', 'truncated'])
def test_corrupt_mask_names_the_file(synthetic_voc, tmp_path, damage,
                                     backend):
    from grpo_rm_mm.datasets.transforms import CorruptImageError
    root, name = _voc_copy(synthetic_voc, tmp_path)
    png = root / 'SegmentationClass' / f'{name}.png'
    data = png.read_bytes()
    png.write_bytes(b'not a png' * 10 if damage == 'garbage' else
                    data[:len(data) // 2])
    with pytest.raises(CorruptImageError,
                       match=rf'corrupt mask .*{name}.png: cannot be decoded'):
        _load(root, name, imdecode_backend=backend)


def test_every_split_checks_mask_labels_against_its_dataset(
        synthetic_voc, tmp_path):
    from mmengine.config import Config
    from mmengine.registry import DefaultScope
    from mmseg.registry import DATASETS

    from grpo_rm_mm.utils import bind_mask_label_range
    cfg = Config.fromfile(osp.join(REPO_ROOT, DEMO_CONFIG))
    cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
    cfg.val_dataloader.dataset.metainfo = dict(classes=('a', 'b', 'c'))
    cfg.test_dataloader.dataset.pipeline[1].transforms[2][0].ignore_index = 7
    bind_mask_label_range(cfg)
    train = cfg.train_dataloader.dataset.pipeline[1]
    val = cfg.val_dataloader.dataset.pipeline[2]  # after Resize
    tta = cfg.test_dataloader.dataset.pipeline[1].transforms[2][0]
    assert (train.num_classes, train.ignore_index) == (21, 255)
    assert val.num_classes == 3  # the dataset's own class list
    assert (tta.num_classes, tta.ignore_index) == (21, 7)  # config kept
    # and the training dataset then refuses a bad mask, naming it
    root, name = _voc_copy(synthetic_voc, tmp_path)
    _write_mask(root / 'SegmentationClass' / f'{name}.png', [0, 40])
    (root / 'ImageSets/Segmentation/train.txt').write_text(name + '\n')
    with DefaultScope.overwrite_default_scope('mmseg'):
        dataset = DATASETS.build(dict(cfg.train_dataloader.dataset,
                                      data_root=str(root)))
        with pytest.raises(ValueError,
                           match=rf'{name}.png has label .*\[40\]'):
            dataset[0]


def test_test_tool_refuses_mask_labels_outside_the_classes(
        trained, synthetic_voc, tmp_path):
    # MMSeg's IoUMetric would drop those pixels and report a wrong mIoU
    work_dir, _ = trained
    root, name = _voc_copy(synthetic_voc, tmp_path)
    _write_mask(root / 'SegmentationClass' / f'{name}.png', [0, 5, 23])
    proc = run_tool('tools/test.py', DEMO_CONFIG,
                    osp.join(work_dir, 'iter_4.pth'), '--work-dir',
                    str(tmp_path / 'w'), '--cfg-options',
                    *data_options(root))
    assert proc.returncode != 0
    assert (f"{name}.png has label value(s) [23] outside the dataset's 21 "
            'classes') in proc.stderr, proc.stderr[-3000:]


def test_mask_check_allows_resize_before_annotations(
        synthetic_voc, tmp_path):
    # MMSeg's test pipelines resize the image, then load the full-size mask
    from mmcv.transforms import Resize

    from grpo_rm_mm.datasets.transforms import (CheckedLoadAnnotations,
                                                CheckedLoadImageFromFile)
    root, name = _voc_copy(synthetic_voc, tmp_path)
    results = dict(img_path=str(root / 'JPEGImages' / f'{name}.jpg'),
                   seg_map_path=str(root / 'SegmentationClass' /
                                    f'{name}.png'),
                   reduce_zero_label=False, seg_fields=[])
    results = CheckedLoadImageFromFile().transform(results)
    results = Resize(scale=(200, 200), keep_ratio=True).transform(results)
    results = CheckedLoadAnnotations().transform(results)
    assert results['img'].shape[:2] == (200, 200)
    assert results['gt_seg_map'].shape == (128, 128)


def test_mask_size_mismatch_names_both_files(synthetic_voc, tmp_path):
    from PIL import Image
    root, name = _voc_copy(synthetic_voc, tmp_path)
    mask_path = root / 'SegmentationClass' / f'{name}.png'
    mask = Image.open(mask_path)
    mask.resize((100, 90), Image.NEAREST).save(mask_path)
    with pytest.raises(ValueError, match=rf'{name}.png has size \(90, 100\)'
                       rf'.*{name}.jpg has size \(128, 128\)'):
        _load(root, name)


def test_jpeg_with_data_after_the_image_is_accepted(synthetic_voc,
                                                    tmp_path):
    # e.g. phone photos with appended data: complete, decodable images
    root, name = _voc_copy(synthetic_voc, tmp_path)
    jpg = root / 'JPEGImages' / f'{name}.jpg'
    jpg.write_bytes(jpg.read_bytes() + b'TRAILER' * 20)
    assert _load(root, name)['img'].shape[:2] == (128, 128)


@pytest.mark.parametrize('damage', ['garbage', 'truncated'])
def test_corrupt_jpeg_names_the_file(synthetic_voc, tmp_path, damage):
    from grpo_rm_mm.datasets.transforms import CorruptImageError
    root, name = _voc_copy(synthetic_voc, tmp_path)
    jpg = root / 'JPEGImages' / f'{name}.jpg'
    data = jpg.read_bytes()
    jpg.write_bytes(b'not a jpeg' * 10 if damage == 'garbage' else
                    data[:len(data) // 2])
    with pytest.raises(CorruptImageError, match=f'{name}.jpg'):
        _load(root, name)
    assert cv2.imread(str(jpg)) is None or damage == 'truncated'


def test_amp_without_gpu_is_a_clear_error(tmp_path):
    import torch
    if torch.cuda.is_available():
        pytest.skip('a GPU is present: --amp trains')
    proc = run_tool('tools/train.py', DEMO_CONFIG, '--amp', '--work-dir',
                    str(tmp_path))
    assert proc.returncode != 0
    assert '--amp needs a GPU' in proc.stderr


def test_test_tool_tta_out_and_show_dir(trained, synthetic_voc, tmp_path):
    work_dir, _ = trained
    out, show = tmp_path / 'out', tmp_path / 'show'
    proc = run_tool('tools/test.py', DEMO_CONFIG,
                    osp.join(work_dir, 'iter_4.pth'), '--work-dir',
                    str(tmp_path / 'w'), '--tta', '--out', str(out),
                    '--show-dir', str(show), '--cfg-options',
                    *data_options(synthetic_voc))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'mIoU' in proc.stdout + proc.stderr
    names = sorted(p.stem for p in out.glob('*.png'))
    with open(osp.join(synthetic_voc, 'ImageSets/Segmentation/val.txt')) as f:
        assert names == sorted(f.read().split())  # one mask per image
    # one overlay per image by default (MMSeg's hook: every 50th batch)
    assert len(list(show.rglob('*.png'))) == len(names)


def test_dist_test_two_processes(trained, synthetic_voc, tmp_path):
    import os
    import subprocess
    import sys

    from conftest import REPO_ROOT
    work_dir, _ = trained
    proc = subprocess.run(
        ['bash', 'tools/dist_test.sh', DEMO_CONFIG,
         osp.join(work_dir, 'iter_4.pth'), '2', '--work-dir',
         str(tmp_path), '--cfg-options', *data_options(synthetic_voc)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=600,
        env=dict(os.environ, PYTHON=sys.executable, OMP_NUM_THREADS='1',
                 PORT=str(29600 + os.getpid() % 1000)))
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    metrics_files = glob.glob(str(tmp_path / '*' / '*.json'))
    with open(metrics_files[0]) as f:
        assert 0.0 <= json.load(f)['mIoU'] <= 100.0


def test_voc_config_without_dinov2_checkpoint_names_it(synthetic_voc,
                                                       tmp_path):
    proc = run_tool('tools/train.py', 'configs/grpo_rm_dinov2_voc.py',
                    '--work-dir', str(tmp_path), '--cfg-options',
                    *data_options(synthetic_voc),
                    'model.backbone.init_cfg.checkpoint=/no/dinov2_s.pth')
    assert proc.returncode != 0
    assert 'FileNotFoundError' in proc.stderr
    assert "init_cfg.checkpoint='/no/dinov2_s.pth' does not exist" in \
        proc.stderr


def _train_tool():
    return load_tool('train')


def test_train_flags_map_onto_the_config(tmp_path):
    tool = _train_tool()
    cls_config = ('configs/demo/'
                  'grpo-rm_dinov2-tiny_1xb16-10e_synthetic-cls-64x64.py')
    cfg = tool.build_cfg(tool.parse_args([
        cls_config, '--auto-scale-lr', '--no-validate', '--resume',
        'https://example.org/ckpt.pth', '--work-dir', str(tmp_path)]))
    assert cfg.auto_scale_lr.enable is True
    assert cfg.val_cfg is None and cfg.val_dataloader is None
    assert cfg.resume is True and cfg.load_from.startswith('https://')
    assert cfg.work_dir == str(tmp_path)
    cfg = tool.build_cfg(tool.parse_args([DEMO_CONFIG, '--resume']))
    assert cfg.resume is True and cfg.get('load_from') is None
    assert cfg.work_dir == osp.join('./work_dirs', osp.splitext(
        osp.basename(DEMO_CONFIG))[0])


def test_train_vis_tensorboard_writes_events(tmp_path, monkeypatch):
    """``--vis tensorboard``: no config edit; the local JSON log stays."""
    pytest.importorskip('tensorboard')
    from mmengine.registry import VISUALIZERS
    tool = _train_tool()
    cfg = tool.build_cfg(tool.parse_args([DEMO_CONFIG, '--vis', 'tensorboard',
                                          '--work-dir', str(tmp_path)]))
    assert [b['type'] for b in cfg.visualizer.vis_backends] == [
        'LocalVisBackend', 'TensorboardVisBackend']
    visualizer = VISUALIZERS.build(dict(
        cfg.visualizer, type='Visualizer', name='vis_tensorboard_test',
        save_dir=str(tmp_path)))
    visualizer.add_scalars({'loss': 0.5}, step=1)
    visualizer.close()
    assert list(tmp_path.rglob('events.out.tfevents.*'))
    assert list(tmp_path.rglob('scalars.json'))
    # without the package: a clear error that says how to install it
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, 'find_spec', lambda name, *a: None
                        if name == 'tensorboard' else real_find_spec(name, *a))
    with pytest.raises(ImportError, match=r'pip install -e "\.\[tensorb'):
        tool.build_cfg(tool.parse_args([DEMO_CONFIG, '--vis',
                                        'tensorboard']))


@pytest.mark.parametrize('config', [DEMO_CONFIG, 'configs/demo/'
                                    'grpo-rm_dinov2-tiny_1xb16-10e_'
                                    'synthetic-cls-64x64.py'])
def test_test_flags_map_onto_the_config(config, tmp_path):
    tool = load_tool('test')
    ckpt = tmp_path / 'x.pth'
    ckpt.write_bytes(b'')
    cfg = tool.build_cfg(tool.parse_args([
        config, str(ckpt), '--show-dir', str(tmp_path), '--interval', '3',
        '--out', str(tmp_path / 'm.json'), '--out-item', 'metrics']))
    assert cfg.default_hooks.visualization.interval == 3
    # metrics go to --out after the run: no prediction dump configured
    evaluators = cfg.test_evaluator
    evaluators = evaluators if isinstance(evaluators, list) else [evaluators]
    assert all(e['type'] != 'DumpResults' for e in evaluators)
    assert 'output_dir' not in evaluators[0]
    cfg = tool.build_cfg(tool.parse_args([config, str(ckpt), '--show-dir',
                                          str(tmp_path)]))
    assert cfg.default_hooks.visualization.interval == 1


# ------------------------------------------- checkpoints that do not fit
def test_test_tool_refuses_checkpoint_of_another_head(trained,
                                                      synthetic_voc,
                                                      tmp_path):
    # the checkpoint's decode head has 21 classes, the model 5
    work_dir, _ = trained
    ckpt = osp.join(work_dir, 'iter_4.pth')
    proc = run_tool('tools/test.py', DEMO_CONFIG, ckpt, '--work-dir',
                    str(tmp_path), '--cfg-options',
                    *data_options(synthetic_voc),
                    'model.decode_head.num_classes=5')
    assert proc.returncode != 0
    assert 'CheckpointMismatchError' in proc.stderr
    assert f'checkpoint {ckpt} does not fit the model' in proc.stderr
    assert ('decode_head.conv_seg.weight: checkpoint [21, 192, 1, 1] vs '
            'model [5, 192, 1, 1]') in proc.stderr, proc.stderr[-3000:]
    assert not glob.glob(str(tmp_path / '*' / '*.json')), 'it evaluated'


def test_train_load_from_refuses_another_width(trained, synthetic_voc,
                                               tmp_path):
    work_dir, _ = trained
    ckpt = osp.join(work_dir, 'iter_4.pth')
    proc = run_tool(
        'tools/train.py', DEMO_CONFIG, '--work-dir', str(tmp_path),
        '--cfg-options', *data_options(synthetic_voc), f'+load_from={ckpt}',
        'model.backbone.arch.embed_dims=48',
        'model.backbone.arch.feedforward_channels=192',
        'model.decode_head.in_channels=[48,48]')
    assert proc.returncode != 0
    assert f'checkpoint {ckpt} does not fit the model' in proc.stderr
    assert 'backbone.cls_token: checkpoint [1, 1, 96] vs model [1, 1, 48]' \
        in proc.stderr, proc.stderr[-3000:]
    assert '... and' in proc.stderr  # many keys: the list is cut short


# ------------------------------------------------- process group teardown
@pytest.mark.parametrize('fails', [False, True])
def test_runs_end_with_barrier_and_destroyed_process_group(monkeypatch,
                                                           fails):
    # a live gloo group at exit can abort the process ("terminate called
    # without an active exception"); after an error other ranks may never
    # reach a barrier, so there is none then
    import torch.distributed as dist

    from grpo_rm_mm.utils import closing_process_group
    for key, value in dict(MASTER_ADDR='127.0.0.1', MASTER_PORT='29437',
                           RANK='0', WORLD_SIZE='1').items():
        monkeypatch.setenv(key, value)
    barriers = []
    real_barrier = dist.barrier
    monkeypatch.setattr(dist, 'barrier',
                        lambda: barriers.append(1) or real_barrier())
    try:
        with pytest.raises(RuntimeError) if fails else \
                contextlib.nullcontext():
            with closing_process_group():
                dist.init_process_group('gloo')
                if fails:
                    raise RuntimeError('a rank failed')
        assert not dist.is_initialized()
        assert barriers == ([] if fails else [1])
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


# ------------------------------------------------------- launch scripts
FAKE_SRUN = '''#!/usr/bin/env bash
# Records its arguments, then (unless SRUN_DRY) starts --ntasks copies of
# the command with SLURM's variables, as srun does on one node.
printf '%s\\n' "$@" > "$SRUN_RECORD"
ntasks=1
while [ $# -gt 0 ] && [[ $1 == -* ]]; do
    case $1 in
        -p) shift 2; continue ;;
        --ntasks=*) ntasks=${1#--ntasks=} ;;
    esac
    shift
done
[ -n "${SRUN_DRY:-}" ] && exit 0
pids=()
for ((i = 0; i < ntasks; i++)); do
    SLURM_PROCID=$i SLURM_LOCALID=$i SLURM_NTASKS=$ntasks \\
        SLURM_NODELIST='node[1]' "$@" &
    pids+=($!)
done
rc=0
for pid in "${pids[@]}"; do wait "$pid" || rc=$?; done
exit $rc
'''
FAKE_SCONTROL = '#!/usr/bin/env bash\necho 127.0.0.1\n'


def _fake_slurm(tmp_path, **env):
    """PATH with a fake ``srun`` / ``scontrol``; returns (env, record)."""
    import os
    import stat
    import sys
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    for name, text in (('srun', FAKE_SRUN), ('scontrol', FAKE_SCONTROL)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(stat.S_IRWXU)
    record = tmp_path / 'srun_args.txt'
    full = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
                SRUN_RECORD=str(record), PYTHON=sys.executable,
                OMP_NUM_THREADS='1')
    full.update(env)
    return full, record


def _bash(script, *args, env):
    import subprocess
    return subprocess.run(['bash', script, *args], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=600)


SRUN_OPTIONS = ['-p', 'gpu', '--job-name=grpo', '--gres=gpu:4', '--ntasks=8',
                '--ntasks-per-node=4', '--cpus-per-task=3',
                '--kill-on-bad-exit=1', '--time=10', '--exclusive']


@pytest.mark.parametrize('work_dir, tail', [
    (['wd'], ['--work-dir', 'wd', '--launcher', 'slurm', '--no-validate']),
    (['--work-dir', 'wd'],
     ['--launcher', 'slurm', '--no-validate', '--work-dir', 'wd']),
])
def test_slurm_train_passes_mmseg_arguments_to_srun(tmp_path, work_dir,
                                                    tail):
    import sys
    env, record = _fake_slurm(
        tmp_path, SRUN_DRY='1', GPUS='8', GPUS_PER_NODE='4',
        CPUS_PER_TASK='3', SRUN_ARGS='--time=10 --exclusive',
        PY_ARGS='--no-validate')
    proc = _bash('tools/slurm_train.sh', 'gpu', 'grpo', DEMO_CONFIG,
                 *work_dir, '--cfg-options', 'a=1', env=env)
    assert proc.returncode == 0, proc.stderr
    assert record.read_text().split('\n')[:-1] == SRUN_OPTIONS + [
        sys.executable, '-u', 'tools/train.py', DEMO_CONFIG, *tail,
        '--cfg-options', 'a=1']


def test_slurm_test_passes_mmseg_arguments_to_srun(tmp_path):
    import sys
    env, record = _fake_slurm(
        tmp_path, SRUN_DRY='1', GPUS='8', GPUS_PER_NODE='4',
        CPUS_PER_TASK='3', SRUN_ARGS='--time=10 --exclusive')
    proc = _bash('tools/slurm_test.sh', 'gpu', 'grpo', DEMO_CONFIG, 'c.pth',
                 '--tta', env=env)
    assert proc.returncode == 0, proc.stderr
    assert record.read_text().split('\n')[:-1] == SRUN_OPTIONS + [
        sys.executable, '-u', 'tools/test.py', DEMO_CONFIG, 'c.pth',
        '--launcher', 'slurm', '--tta']


@pytest.mark.parametrize('script, args', [
    ('tools/slurm_train.sh', ['gpu', 'grpo']),
    ('tools/slurm_test.sh', ['gpu', 'grpo', DEMO_CONFIG]),
])
def test_slurm_scripts_print_usage_when_arguments_are_missing(
        tmp_path, script, args):
    env, record = _fake_slurm(tmp_path, SRUN_DRY='1')
    proc = _bash(script, *args, env=env)
    assert proc.returncode == 2 and 'usage:' in proc.stderr
    assert not record.exists()


def test_dist_train_multi_node_variables_reach_torchrun(tmp_path):
    # a fake python records what dist_train.sh hands to torch.distributed
    import os
    fake = tmp_path / 'python'
    fake.write_text('#!/usr/bin/env bash\nprintf "%s\\n" "$@" > "$RECORD"\n')
    fake.chmod(0o755)
    record = tmp_path / 'args.txt'
    env = dict(os.environ, PYTHON=str(fake), RECORD=str(record), NNODES='2',
               NODE_RANK='1', MASTER_ADDR='10.0.0.7', PORT='29123')
    for script, args in (('tools/dist_train.sh', [DEMO_CONFIG, '8']),
                         ('tools/dist_test.sh', [DEMO_CONFIG, 'c.pth', '8'])):
        proc = _bash(script, *args, '--x', env=env)
        assert proc.returncode == 0, proc.stderr
        assert record.read_text().split('\n')[:6] == [
            '-m', 'torch.distributed.run', '--nnodes=2', '--node_rank=1',
            '--master_addr=10.0.0.7', '--nproc_per_node=8']
        assert '--master_port=29123' in record.read_text()


def test_dist_slurm_train_two_processes(synthetic_voc, tmp_path):
    """tools/slurm_train.sh through a fake srun: 2 gloo tasks on the CPU."""
    import os
    import torch
    if torch.cuda.is_available():
        pytest.skip('CUDA present: slurm tasks would each take a GPU')
    env, record = _fake_slurm(
        tmp_path, GPUS='2', GPUS_PER_NODE='2',
        MASTER_PORT=str(31000 + os.getpid() % 1000))
    env.pop('MASTER_ADDR', None)  # from the fake scontrol, as on a cluster
    proc = _bash('tools/slurm_train.sh', 'cpu', 'grpo', DEMO_CONFIG,
                 str(tmp_path / 'w'), '--no-validate', '--cfg-options',
                 *data_options(synthetic_voc), 'train_cfg.max_iters=2',
                 'default_hooks.checkpoint.interval=2',
                 'default_hooks.logger.interval=1', env=env)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    assert 'Distributed launcher: slurm' in log
    assert 'Distributed training: True' in log
    assert 'GPU number: 2' in log  # MMEngine's name for the world size
    assert osp.isfile(tmp_path / 'w' / 'iter_2.pth')
