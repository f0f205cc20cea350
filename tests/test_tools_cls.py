"""The same tools run an MMPretrain classification config end to end."""
import glob
import json
import os.path as osp
import pickle

import pytest
from conftest import run_in_process, run_tool

CLS_CONFIG = ('configs/demo/'
              'grpo-rm_dinov2-tiny_1xb16-10e_synthetic-cls-64x64.py')


@pytest.fixture(scope='module')
def synthetic_cls(tmp_path_factory):
    from grpo_rm_mm.datasets import make_synthetic_cls
    return make_synthetic_cls(str(tmp_path_factory.mktemp('cls')), 24, 8)


def options(data_root):
    opts = []
    for split in ('train', 'val', 'test'):
        opts += [f'{split}_dataloader.dataset.data_root={data_root}',
                 f'{split}_dataloader.num_workers=0',
                 f'{split}_dataloader.persistent_workers=False']
    return opts


@pytest.fixture(scope='module')
def trained(tmp_path_factory, synthetic_cls):
    work_dir = tmp_path_factory.mktemp('cls_work')
    proc = run_tool('tools/train.py', CLS_CONFIG, '--work-dir', str(work_dir),
                    '--cfg-options', *options(synthetic_cls),
                    'train_cfg.max_epochs=2', 'train_cfg.val_interval=2',
                    'default_hooks.logger.interval=1')
    assert proc.returncode == 0, proc.stderr[-3000:]
    return work_dir, proc.stdout + proc.stderr


def test_classification_trains_with_grpo_rm_and_old_model(trained):
    work_dir, log = trained
    assert osp.isfile(osp.join(work_dir, 'epoch_2.pth'))
    assert 'accuracy/top1' in log
    assert 'GRPOOldModelHook: old model refreshed every 5 iterations' in log
    assert 'grpo_clip_frac' in log and 'grpo_old_age' in log


def test_classification_test_tool_accuracy_and_out(trained, synthetic_cls,
                                                   tmp_path):
    work_dir, _ = trained
    out = tmp_path / 'preds.pkl'
    proc = run_tool('tools/test.py', CLS_CONFIG,
                    osp.join(work_dir, 'epoch_2.pth'), '--work-dir',
                    str(tmp_path), '--out', str(out), '--cfg-options',
                    *options(synthetic_cls))
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(glob.glob(str(tmp_path / '*' / '*.json'))[0]) as f:
        assert 0.0 <= json.load(f)['accuracy/top1'] <= 100.0
    with open(out, 'rb') as f:
        preds = pickle.load(f)
    assert len(preds) == 8 and 'pred_score' in preds[0]


def test_classification_show_dir_and_metrics_out(trained, synthetic_cls,
                                                 tmp_path):
    """``--show-dir`` draws every image (MMPretrain's hook alone: every
    5000th); ``--out-item metrics`` writes the metrics to ``--out``."""
    work_dir, _ = trained
    show, out = tmp_path / 'show', tmp_path / 'metrics.json'
    proc = run_tool('tools/test.py', CLS_CONFIG,
                    osp.join(work_dir, 'epoch_2.pth'), '--work-dir',
                    str(tmp_path / 'w'), '--show-dir', str(show), '--out',
                    str(out), '--out-item', 'metrics', '--cfg-options',
                    *options(synthetic_cls))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(list(show.rglob('*.png'))) == 8  # the 8 val images
    with open(out) as f:
        metrics = json.load(f)
    with open(glob.glob(str(tmp_path / 'w' / '*' / '*.json'))[0]) as f:
        logged = json.load(f)  # what the runner logged (and timings)
    assert metrics == {'accuracy/top1': logged['accuracy/top1']}


def test_classification_dataset_layout(synthetic_cls):
    from mmpretrain.datasets import CustomDataset

    from grpo_rm_mm.datasets.synthetic_cls import CLASS_NAMES
    ds = CustomDataset(data_root=synthetic_cls, data_prefix='val',
                       pipeline=[])
    assert ds.CLASSES == CLASS_NAMES and len(ds) == 8


@pytest.mark.parametrize('checkpoint', ['trained', 'none'])
def test_eval_representation_end_to_end(checkpoint, trained, synthetic_cls,
                                        tmp_path, capfd):
    work_dir, _ = trained
    path = (osp.join(work_dir, 'epoch_2.pth')
            if checkpoint == 'trained' else 'none')
    out = tmp_path / 'sub' / 'repr.json'
    run_in_process('eval_representation', CLS_CONFIG, path, '--out', out,
                   '--batch-size', '5', '--cfg-options',
                   *options(synthetic_cls))
    stdout = capfd.readouterr().out
    with open(out) as f:
        report = json.load(f)
    assert report['num_train'] == 24 and report['num_test'] == 8
    assert report['num_classes'] == 5 and report['feature_dim'] == 96
    assert report['checkpoint'] == path
    for key in ('knn_k10_top1', 'knn_k20_top1', 'linear_top1'):
        assert 0.0 <= report[key] <= 100.0
        # 8 test images: every accuracy is a multiple of 12.5%
        assert report[key] % 12.5 == 0.0
        assert f'{key}: {report[key]:.2f}' in stdout


def test_eval_representation_refuses_missing_checkpoint(
        synthetic_cls, tmp_path):
    import importlib.util

    from conftest import REPO_ROOT
    spec = importlib.util.spec_from_file_location(
        'eval_representation',
        osp.join(REPO_ROOT, 'tools/eval_representation.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    from mmengine.registry import DefaultScope
    missing = str(tmp_path / 'nope.pth')
    # the tool sets the process's default scope: put it back afterwards
    with DefaultScope.overwrite_default_scope('mmpretrain'), \
            pytest.raises(FileNotFoundError,
                          match=f'checkpoint not found: {missing}'):
        tool.main([CLS_CONFIG, missing, '--cfg-options',
                   *options(synthetic_cls)])
