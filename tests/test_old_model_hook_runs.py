"""GRPOOldModelHook in real runs: exact resume and 2-process DDP on CPU."""
import math
import os
import os.path as osp
import subprocess
import sys

import torch
from conftest import (REPO_ROOT, assert_same_training_state, run_in_process,
                      run_tool)

DEMO = osp.join(REPO_ROOT, 'configs/demo/'
                'grpo-rm_dinov2-tiny_1xb8-300_synthetic-voc-112x112.py')
TESTS = osp.dirname(osp.abspath(__file__))


def write_config(tmp_path, data_root, interval, extra_hooks=''):
    """A config on the demo: small data, 4 iterations, lagging old model."""
    path = tmp_path / 'cfg.py'
    loaders = ''.join(
        f"{s}_dataloader = dict(batch_size=2, num_workers=0, "
        f"persistent_workers=False, dataset=dict(data_root='{data_root}'))\n"
        for s in ('train', 'val', 'test'))
    path.write_text(
        f"_base_ = ['{DEMO}']\n{loaders}"
        "train_cfg = dict(max_iters=4, val_interval=100)\n"
        "default_hooks = dict(checkpoint=dict(interval=2),"
        " logger=dict(interval=1))\n"
        "custom_imports = dict(imports=['grpo_rm_mm', 'ddp_dump_hook'],"
        " allow_failed_imports=False)\n"
        f"custom_hooks = [dict(type='GRPOOldModelHook', interval={interval})"
        f"{extra_hooks}]\n")
    return str(path)


def env():
    return dict(PYTHONPATH=os.pathsep.join(
        [TESTS, REPO_ROOT, os.environ.get('PYTHONPATH', '')]))


def train(cfg, work_dir, *args):
    proc = run_tool('tools/train.py', cfg, '--work-dir', str(work_dir),
                    *args, env=env())
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def test_resume_matches_an_uninterrupted_run(tmp_path, synthetic_voc,
                                             capfd):
    # interval 3: the checkpoint at iter 2 holds an old model refreshed at 0
    cfg = write_config(tmp_path, synthetic_voc, interval=3)
    whole, halves = tmp_path / 'whole', tmp_path / 'halves'
    run_in_process('train', cfg, '--work-dir', whole)
    run_in_process('train', cfg, '--work-dir', halves, '--cfg-options',
                   'train_cfg.max_iters=2')
    capfd.readouterr()
    run_in_process('train', cfg, '--work-dir', halves, '--resume')
    assert 'resumed epoch: 0, iter: 2' in ''.join(capfd.readouterr())
    assert_same_training_state(whole / 'iter_4.pth', halves / 'iter_4.pth')
    old = torch.load(halves / 'iter_4.pth',
                     weights_only=False)['grpo_old_model']
    assert old['refreshed_at'] == 3


def test_two_process_ddp_keeps_ranks_identical(tmp_path, synthetic_voc):
    cfg = write_config(tmp_path, synthetic_voc, interval=2,
                       extra_hooks=", dict(type='DumpRankParamsHook')")
    proc = subprocess.run(
        ['bash', osp.join(REPO_ROOT, 'tools/dist_train.sh'), cfg, '2',
         '--work-dir', str(tmp_path / 'ddp')],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=600,
        env=dict(os.environ, **env(), PYTHON=sys.executable,
                 OMP_NUM_THREADS='1', PORT=str(29500 + os.getpid() % 1000)))
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    assert 'old model refreshed at iter 2' in log
    rank0 = torch.load(tmp_path / 'ddp' / 'params_rank0.pth')
    rank1 = torch.load(tmp_path / 'ddp' / 'params_rank1.pth')
    start = torch.load(tmp_path / 'ddp' / 'iter_2.pth', weights_only=False)
    moved = any(not torch.equal(v, start['state_dict'][k])
                for k, v in rank0.items())
    assert moved, 'parameters did not change between iter 2 and 4'
    for key, value in rank0.items():
        assert torch.equal(value, rank1[key]), key


def test_mmengine_compile_trains_the_demo_with_a_lagged_old_model(
        tmp_path, synthetic_voc):
    # MMEngine's compile traces the whole train_step: the loss (and the
    # hook's hand-off) must not stop it. aot_eager traces forward and
    # backward like inductor but skips its C++ code generation, which takes
    # minutes on 2 CPU cores (the inductor run is reported in issue 10).
    cfg = write_config(tmp_path, synthetic_voc, interval=2)
    with open(cfg, 'a') as f:
        f.write("compile = dict(backend='aot_eager')\n"
                # one block: tracing time grows with the graph
                "model = dict(backbone=dict(arch=dict(num_layers=1), "
                "out_indices=(0, )))\n")
    log = train(cfg, tmp_path / 'compiled', '--cfg-options',
                'train_cfg.max_iters=2')
    assert 'Model has been "compiled"' in log
    lines = [ln for ln in log.splitlines() if 'Iter(train) [2/2]' in ln]
    assert lines and 'decode.grpo_clip_frac' in lines[0]
    loss = float(lines[0].split(' loss: ')[1].split()[0])
    assert math.isfinite(loss)
