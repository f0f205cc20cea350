"""tools/analyze_logs.py reads every run of a work dir: a resumed run's
parts make one curve, and a killed run is read up to its last record."""
import json
import os
import os.path as osp
import sys

import pytest
from conftest import REPO_ROOT

pytest.importorskip('matplotlib')
sys.path.insert(0, osp.join(REPO_ROOT, 'tools'))
import analyze_logs  # noqa: E402


def write_run(work_dir, stamp, iters, loss, val=(), max_iters=32,
              half_written=False):
    """One run folder as MMEngine writes it: the scalar log (a record a
    line) and the config next to it."""
    folder = osp.join(work_dir, stamp, 'vis_data')
    os.makedirs(folder)
    with open(osp.join(folder, 'config.py'), 'w') as f:
        f.write("train_cfg = dict(type='IterBasedTrainLoop', "
                f'max_iters={max_iters}, val_interval=16)\n')
    with open(osp.join(folder, 'scalars.json'), 'w') as f:
        for it in iters:
            f.write(json.dumps({'lr': 1e-3, 'loss': loss(it), 'iter': it,
                                'step': it}) + '\n')
            if it in val:
                f.write(json.dumps({'mIoU': float(it), 'step': it}) + '\n')
        if half_written:  # killed while writing: no end, no newline
            f.write('{"lr": 0.001, "loss": 0.5, "it')


def test_resumed_run_is_one_curve(tmp_path, capsys):
    # killed after iteration 20, resumed from the checkpoint at 16
    work = str(tmp_path / 'work')
    write_run(work, '20260101_100000', range(1, 21), lambda it: 100 + it,
              val=(16, ))
    write_run(work, '20260101_110000', range(17, 33), lambda it: it,
              val=(32, ))
    series = analyze_logs.collect([work], ['run'], 'iter')
    xs, ys = series['loss']['run']
    assert xs == list(range(1, 33))
    assert ys == [100 + it for it in range(1, 17)] + list(range(17, 33))
    assert series['validation']['run mIoU'] == ([16, 32], [16.0, 32.0])
    out = capsys.readouterr().out
    assert ('20260101_100000: iterations 1-20; stopped at iteration 20 of '
            '32 (killed, or still running)') in out
    assert ('20260101_110000: iterations 17-32; replacing the earlier '
            'records of iterations 17-20') in out


def test_newest_run_killed_early_keeps_the_completed_one(tmp_path, capsys):
    work = str(tmp_path / 'work')
    write_run(work, '20260101_100000', range(1, 33), lambda it: it,
              val=(16, 32))
    write_run(work, '20260101_110000', (1, 2), lambda it: 50 + it,
              half_written=True)
    out_png = str(tmp_path / 'curves.png')
    analyze_logs.main([work, '--labels', 'run', '--out', out_png])
    out = capsys.readouterr().out
    series = analyze_logs.collect([work], ['run'], 'iter')
    xs, ys = series['loss']['run']
    assert xs == list(range(1, 33)) and ys[2:] == list(range(3, 33))
    assert '| run | 32.00 |' in out  # the completed run's last validation
    assert ('20260101_110000: iterations 1-2; replacing the earlier records '
            'of iterations 1-2; stopped at iteration 2 of 32 (killed, or '
            'still running); its last record (line 3) is half written: read '
            'up to the one before') in out


def test_a_broken_line_inside_a_log_is_still_an_error(tmp_path):
    work = str(tmp_path / 'work')
    write_run(work, '20260101_100000', (1, 2), lambda it: it)
    path = osp.join(work, '20260101_100000', 'vis_data', 'scalars.json')
    with open(path) as f:
        lines = f.readlines()
    lines[0] = lines[0][:10] + '\n'
    with open(path, 'w') as f:
        f.writelines(lines)
    with pytest.raises(ValueError, match='scalars.json:1 is not a JSON'):
        analyze_logs.collect([work], None, 'iter')
