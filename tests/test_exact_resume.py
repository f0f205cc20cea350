"""kill -9 in the middle of an epoch, then ``--resume``: a GRPO-RM
classification run with the paper configs' random augmentation
(RandomResizedCrop + flip), drop-path and two data-loader workers ends
bitwise where the uninterrupted run ends (the same computation repeated, so
bitwise is right)."""
import os
import os.path as osp
import subprocess
import sys

import pytest
from conftest import REPO_ROOT, assert_same_training_state, run_in_process

CLS_DEMO = osp.join(REPO_ROOT, 'configs/demo/'
                    'grpo-rm_dinov2-tiny_1xb16-10e_synthetic-cls-64x64.py')
TESTS = osp.dirname(osp.abspath(__file__))
#: the paper configs' train pipeline (configs/_base_/datasets/cls_224.py),
#: at 42 x 42 (3 x 3 patches of 14)
PAPER_PIPELINE = ("[dict(type='CheckedLoadImageFromFile'), "
                  "dict(type='RandomResizedCrop', scale=42), "
                  "dict(type='RandomFlip', prob=0.5, direction='horizontal'),"
                  " dict(type='PackInputs')]")
TEST_PIPELINE = ("[dict(type='CheckedLoadImageFromFile'), "
                 "dict(type='Resize', scale=(42, 42)), "
                 "dict(type='PackInputs')]")

#: 16 images, batch 4: 4 iterations an epoch, 8 in all; validation and a
#: checkpoint after iteration 4
LOOPS = {
    'epoch': (
        'train_cfg = dict(by_epoch=True, max_epochs=2, val_interval=1)\n'
        "train_sampler = dict(type='DefaultSampler', shuffle=True)\n"
        'default_hooks = dict(logger=dict(interval=1), '
        'checkpoint=dict(interval=1, max_keep_ckpts=5))\n',
        'epoch_2.pth', 'resumed epoch: 1, iter: 4'),
    'iter': (
        "train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', "
        'max_iters=8, val_interval=4)\n'
        "train_sampler = dict(type='InfiniteSampler', shuffle=True)\n"
        'default_hooks = dict(logger=dict(interval=1, '
        'log_metric_by_epoch=False), checkpoint=dict(by_epoch=False, '
        'interval=4, max_keep_ckpts=5))\n'
        "param_scheduler = dict(type='CosineAnnealingLR', by_epoch=False, "
        'T_max=8, eta_min_ratio=0.01)\n',
        'iter_8.pth', 'resumed epoch: 0, iter: 4'),
}


@pytest.fixture(scope='module')
def cls_data(tmp_path_factory):
    from grpo_rm_mm.datasets import make_synthetic_cls
    return make_synthetic_cls(str(tmp_path_factory.mktemp('cls')), 16, 4)


def write_config(path, data_root, loop, num_workers=2, extra_hook='',
                 old_model='interval=3', extra=''):
    """The classification demo with the paper pipeline, drop-path and a
    lagging old model, and ``extra_hook`` (of tests/kill_hook.py)."""
    hooks = f"[dict(type='GRPOOldModelHook', {old_model})"
    if extra_hook:
        hooks += f', dict(type={extra_hook})'
    path.write_text(
        f"_base_ = ['{CLS_DEMO}']\n{LOOPS[loop][0]}{extra}"
        'model = dict(backbone=dict(drop_path_rate=0.2))\n'
        f'train_dataloader = dict(batch_size=4, num_workers={num_workers}, '
        f'persistent_workers={num_workers > 0}, sampler=train_sampler, '
        f"dataset=dict(data_root='{data_root}', pipeline={PAPER_PIPELINE}))\n"
        "val_dataloader = dict(batch_size=4, num_workers=0, "
        "persistent_workers=False, dataset=dict("
        f"data_root='{data_root}', pipeline={TEST_PIPELINE}))\n"
        'test_dataloader = val_dataloader\n'
        "custom_imports = dict(imports=['grpo_rm_mm', 'kill_hook'], "
        'allow_failed_imports=False)\n'
        f'custom_hooks = {hooks}]\n')
    return str(path)


def train_in_process(*args):
    """tools/train.py in this process (saves an interpreter start)."""
    run_in_process('train', *args)


#: the GRPO-RM old model of each loop: refreshed every epoch, every 3 iters
OLD_MODEL = {'epoch': 'interval=1, by_epoch=True', 'iter': 'interval=3'}


@pytest.fixture(scope='module')
def uninterrupted(cls_data, tmp_path_factory):
    """The uninterrupted run of each loop (trained once, when first used):
    its last checkpoint."""
    done = {}

    def run(loop):
        if loop not in done:
            folder = tmp_path_factory.mktemp(f'whole_{loop}')
            train_in_process(
                write_config(folder / 'whole.py', cls_data, loop,
                             old_model=OLD_MODEL[loop]),
                '--work-dir', str(folder))
            done[loop] = folder / LOOPS[loop][1]
        return done[loop]

    return run


@pytest.mark.parametrize('loop', ['epoch', 'iter'])
def test_kill_9_mid_epoch_then_resume_is_bitwise_exact(loop, cls_data,
                                                       uninterrupted,
                                                       tmp_path, capfd):
    _, last, resumed = LOOPS[loop]
    killed = tmp_path / 'killed'
    # before iteration 6 of 8: the middle of the second pass over the data;
    # the last checkpoint is the one after iteration 4
    config = write_config(tmp_path / 'killed.py', cls_data, loop,
                          extra_hook="'KillAtIterHook', at_iter=6",
                          old_model=OLD_MODEL[loop])
    # output to a file: the killed process's workers, which may outlive it
    # for a few seconds, do not hold up the test
    with open(tmp_path / 'killed.log', 'w') as log:
        code = subprocess.call(
            [sys.executable, 'tools/train.py', config, '--work-dir',
             str(killed)], cwd=REPO_ROOT, stdout=log, stderr=log,
            env=dict(os.environ, OMP_NUM_THREADS='2',
                     PYTHONPATH=os.pathsep.join(
                         [TESTS, REPO_ROOT,
                          os.environ.get('PYTHONPATH', '')])))
    assert code == -9, (tmp_path / 'killed.log').read_text()[-3000:]
    capfd.readouterr()
    train_in_process(write_config(tmp_path / 'resume.py', cls_data, loop,
                                  old_model=OLD_MODEL[loop]),
                     '--work-dir', str(killed), '--resume')
    assert resumed in capfd.readouterr().out
    assert_same_training_state(uninterrupted(loop), killed / last)
    # the two runs' logs make the uninterrupted run's loss curve
    from grpo_rm_mm.utils import read_run_logs
    joined = read_run_logs(str(killed))
    reference = read_run_logs(str(uninterrupted(loop).parent))
    assert [(r['step'], r['loss']) for r in joined['train']] == \
        [(r['step'], r['loss']) for r in reference['train']] and \
        len(joined['train']) == 8
    assert 'stopped at iteration 6 of 8' in joined['notes'][0]


def test_epoch_loop_resumed_inside_an_epoch_skips_its_trained_batches(
        cls_data, uninterrupted, tmp_path, capfd):
    # without data-loader workers (the pipeline runs in the main process,
    # between drop-path draws) and with checkpoints every 2 iterations of
    # the epoch loop; the run crashes before iteration 6, in the middle of
    # epoch 2: the resumed run trains only that epoch's last 2 batches
    # (MMEngine would train all 4 again) with the old model refreshed at the
    # epoch's start, and ends as the uninterrupted run with 2 workers did
    checkpoints = ('default_hooks = dict(logger=dict(interval=1), '
                   'checkpoint=dict(by_epoch=False, interval=2))\n')
    old_model = OLD_MODEL['epoch']
    crashed = tmp_path / 'crashed'
    with pytest.raises(RuntimeError, match='test crash'):
        train_in_process(
            write_config(tmp_path / 'crash.py', cls_data, 'epoch', 0,
                         "'CrashAtIterHook', at_iter=6", old_model,
                         checkpoints), '--work-dir', str(crashed))
    capfd.readouterr()
    train_in_process(
        write_config(tmp_path / 'rest.py', cls_data, 'epoch', 0,
                     old_model=old_model, extra=checkpoints),
        '--work-dir', str(crashed), '--resume')
    out = capfd.readouterr().out
    assert 'resumed epoch: 1, iter: 6' in out
    assert 'its first 2 batches were trained before the checkpoint' in out
    assert out.count('Epoch(train) [2]') == 2  # logged every iteration
    assert_same_training_state(uninterrupted('epoch'), crashed / 'iter_8.pth')
