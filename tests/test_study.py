"""The GRPO-RM vs CE study: its summary maths, and its quick mode end to
end (every part, every point, one seed, a few iterations)."""
import json
import os.path as osp
import sys

import pytest
from conftest import REPO_ROOT, run_tool

pytest.importorskip('sklearn')
pytest.importorskip('matplotlib')
sys.path.insert(0, osp.join(REPO_ROOT, 'tools', 'experiments'))
import study  # noqa: E402


def run(point, seed, curve):
    return dict(part='digits', point=point, seed=seed, x_unit='epoch',
                curve={'accuracy/top1': curve},
                final={'accuracy/top1': curve[-1][1]})


def test_summary_mean_std_and_epochs_to_95_percent_of_ce():
    runs = [run('CE', 0, [[1, 50.0], [2, 90.0]]),
            run('CE', 1, [[1, 80.0], [2, 100.0]]),
            run('GRPO', 0, [[1, 86.0], [2, 88.0]]),    # below 90.25
            run('GRPO', 1, [[1, 60.0], [2, 70.0]])]    # never
    summary = study.summarise(runs)['digits']['points']
    assert summary['CE']['final']['accuracy/top1'] == pytest.approx(
        [95.0, 7.0710678])
    assert summary['CE']['reach'] == dict(threshold=90.25, reached=1, of=2,
                                          x=[2.0, 0.0])
    assert summary['GRPO']['reach']['reached'] == 0
    assert summary['GRPO']['final']['accuracy/top1'] == pytest.approx(
        [79.0, 12.7279221])
    table = study.format_tables(study.summarise(runs))
    assert '| CE | 2 | 95.0 ± 7.1 | 2.0 ± 0.0 (1/2 reached) |' in table


def test_quick_mode_runs_every_part(tmp_path):
    out, work = tmp_path / 'out', tmp_path / 'work'
    proc = run_tool('tools/experiments/study.py', '--quick', '--out',
                    str(out), '--work-dir', str(work), timeout=600,
                    env=dict(OMP_NUM_THREADS='1'))
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(out / 'results.json') as f:
        runs = json.load(f)['runs']
    points = {(r['part'], r['point']) for r in runs}
    expected = {('digits', p) for p in ('CE', 'on-policy', 'refresh 10',
                                        'c = 4, on-policy')}
    expected |= {('voc', p) for p in ('CE', 'on-policy', 'refresh 10',
                                      'no background penalty, refresh 10')}
    expected |= {('cls', p) for p in ('CE', 'on-policy', 'refresh 10')}
    expected |= {('finetune', p) for p, _, _ in study.FINETUNE_POINTS[:3]}
    expected |= {('represent', p) for p in ('pre-trained (unchanged)', 'CE',
                                            'GRPO-RM on-policy',
                                            'GRPO-RM refresh 10')}
    expected.add(('pretrain', 'CE digits 0-4'))
    assert points == expected
    for r in runs:
        assert r['seed'] == 0
        for value in r['final'].values():
            assert 0.0 <= value <= 100.0
    voc = [r for r in runs if r['part'] == 'voc']
    assert all(set(r['final']) == {'mIoU', 'IoU.background', 'mIoU.fg'}
               for r in voc)
    assert (out / 'curves.png').stat().st_size > 1000
    assert '### represent' in (out / 'results.md').read_text()
