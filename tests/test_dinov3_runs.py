"""The DINOv3 demo under the unchanged GRPOOldModelHook: 2 iterations with
a lagged old model, an exact resume (in-process runners) and 2-process DDP
(tools/dist_train.sh)."""
import math
import os
import os.path as osp
import shutil
import subprocess
import sys

import pytest
import torch
from conftest import REPO_ROOT, assert_same_training_state
from mmengine.config import Config
from mmengine.registry import DefaultScope

DEMO = osp.join(REPO_ROOT, 'configs/demo/'
                'grpo-rm_dinov3-tiny_1xb8-300_synthetic-voc-112x112.py')
TESTS = osp.dirname(osp.abspath(__file__))


@pytest.fixture(autouse=True)
def restore_default_scope():
    with DefaultScope.overwrite_default_scope('mmseg'):
        yield


def demo_config(work_dir, data_root, max_iters, interval):
    """The demo on the small synthetic VOC: batch 2, no workers, a
    checkpoint every 2 iterations, no validation."""
    cfg = Config.fromfile(DEMO)
    cfg.work_dir = str(work_dir)
    for split in ('train', 'val', 'test'):
        cfg[f'{split}_dataloader'].update(
            batch_size=2, num_workers=0, persistent_workers=False)
        cfg[f'{split}_dataloader'].dataset.data_root = data_root
    cfg.train_cfg.update(max_iters=max_iters, val_interval=100)
    cfg.default_hooks.checkpoint.interval = 2
    cfg.default_hooks.logger.interval = 1
    cfg.custom_hooks = [dict(type='GRPOOldModelHook', interval=interval)]
    return cfg


def train(cfg):
    from mmengine.runner import Runner
    runner = Runner.from_cfg(cfg)
    runner.train()
    return runner


@pytest.fixture(scope='module')
def uninterrupted(synthetic_voc, tmp_path_factory):
    """The demo trained for 4 iterations, old model refreshed every 3: the
    runner's message hub and its work_dir (iter_2.pth, iter_4.pth)."""
    work_dir = tmp_path_factory.mktemp('dinov3_demo')
    with DefaultScope.overwrite_default_scope('mmseg'):
        runner = train(demo_config(work_dir, synthetic_voc, 4, interval=3))
    return runner.message_hub, work_dir


def test_demo_trains_two_iterations_with_a_lagged_old_model(uninterrupted):
    cfg = Config.fromfile(DEMO)
    assert cfg.model.backbone.type == 'DINOv3'
    assert cfg.custom_hooks == [dict(type='GRPOOldModelHook', interval=10)]
    hub, work_dir = uninterrupted
    # per iteration, as logged: the second ran against the old model of the
    # first, one step behind, so its probability ratios are no longer 1
    ages = hub.get_scalar('train/grpo_old_age').data[0]
    ratios = hub.get_scalar('train/decode.grpo_ratio_mean').data[0]
    assert list(ages[:2]) == [0, 1]
    assert ratios[0] == pytest.approx(1.0, abs=1e-6)
    assert math.isfinite(ratios[1]) and ratios[1] != pytest.approx(
        1.0, abs=1e-6)
    assert all(map(math.isfinite, hub.get_scalar('train/loss').data[0]))
    old = torch.load(work_dir / 'iter_2.pth',
                     weights_only=False)['grpo_old_model']
    assert old['refreshed_at'] == 0
    assert 'module.backbone.blocks.0.attn.qkv.weight' in old['state_dict']


def test_resume_matches_an_uninterrupted_run(uninterrupted, synthetic_voc,
                                             tmp_path):
    """Resuming from the iteration-2 checkpoint ends bit for bit where the
    uninterrupted run ended; its old model (refreshed at 0 in the
    checkpoint) is refreshed at 3 in both."""
    whole = uninterrupted[1]
    shutil.copy(whole / 'iter_2.pth', tmp_path / 'iter_2.pth')
    cfg = demo_config(tmp_path, synthetic_voc, 4, interval=3)
    cfg.update(resume=True, load_from=str(tmp_path / 'iter_2.pth'))
    runner = train(cfg)
    assert runner.iter == 4
    assert_same_training_state(whole / 'iter_4.pth', tmp_path / 'iter_4.pth')
    old = torch.load(tmp_path / 'iter_4.pth',
                     weights_only=False)['grpo_old_model']
    assert old['refreshed_at'] == 3


def test_two_process_ddp_keeps_ranks_identical(synthetic_voc, tmp_path):
    cfg = demo_config(tmp_path / 'ddp', synthetic_voc, 4, interval=2)
    cfg.custom_hooks.append(dict(type='DumpRankParamsHook'))
    cfg.custom_imports = dict(imports=['grpo_rm_mm', 'ddp_dump_hook'],
                              allow_failed_imports=False)
    path = str(tmp_path / 'cfg.py')
    cfg.dump(path)
    env = dict(os.environ, PYTHON=sys.executable, OMP_NUM_THREADS='1',
               PORT=str(29300 + os.getpid() % 1000),
               PYTHONPATH=os.pathsep.join(
                   [TESTS, REPO_ROOT, os.environ.get('PYTHONPATH', '')]))
    proc = subprocess.run(
        ['bash', osp.join(REPO_ROOT, 'tools/dist_train.sh'), path, '2'],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=600, env=env)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    assert 'old model refreshed at iter 2' in log
    ranks = [torch.load(tmp_path / 'ddp' / f'params_rank{r}.pth')
             for r in (0, 1)]
    start = torch.load(tmp_path / 'ddp' / 'iter_2.pth', weights_only=False)
    assert any(not torch.equal(v, start['state_dict'][k])
               for k, v in ranks[0].items()), 'nothing trained after iter 2'
    assert any(k.startswith('backbone.blocks.') for k in ranks[0])
    for key, value in ranks[0].items():
        assert torch.equal(value, ranks[1][key]), key
