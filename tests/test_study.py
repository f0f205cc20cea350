"""The GRPO-RM decomposition study: its summary maths (recomputed here
independently, also on the committed results), its log readers, and its
quick mode end to end (every part and family, one seed, a few
iterations)."""
import json
import math
import os
import os.path as osp
import sys

import numpy as np
import pytest
from conftest import REPO_ROOT, run_tool

pytest.importorskip('sklearn')
pytest.importorskip('matplotlib')
sys.path.insert(0, osp.join(REPO_ROOT, 'tools', 'experiments'))
import study  # noqa: E402
import study_report  # noqa: E402

RESULTS = osp.join(REPO_ROOT, 'tools', 'experiments', 'results')
#: two-sided 95 % Student t quantiles by degrees of freedom (a printed
#: table, not scipy: an independent reference)
T975 = {1: 12.7062, 2: 4.3027, 3: 3.1824, 4: 2.7764, 5: 2.5706,
        6: 2.4469, 7: 2.3646, 8: 2.3060, 9: 2.2622}


def run(point, seed, curve, part='digits'):
    return dict(part=part, point=point, seed=seed, x_unit='epoch',
                curve={'accuracy/top1': curve},
                final={'accuracy/top1': curve[-1][1]})


def test_summary_mean_std_paired_interval_and_reach():
    runs = [run('CE', 0, [[1, 50.0], [2, 90.0]]),
            run('CE', 1, [[1, 80.0], [2, 100.0]]),
            run('CE', 2, [[1, 85.0], [2, 95.0]]),
            run('GRPO', 0, [[1, 86.0], [2, 88.0]]),    # below 90.25
            run('GRPO', 1, [[1, 60.0], [2, 70.0]]),    # never
            run('GRPO', 2, [[1, 91.0], [2, 99.0]])]    # epoch 1
    summary = study_report.summarise(runs)['digits']['points']
    assert summary['CE']['final']['accuracy/top1'] == pytest.approx(
        [95.0, 5.0])
    assert 'diff' not in summary['CE']
    # 95 % of CE's final mean is 90.25: seed 0 ends at 90.0
    assert summary['CE']['reach'] == dict(threshold=pytest.approx(90.25),
                                          reached=2, of=3, x=[2.0, 0.0])
    grpo = summary['GRPO']
    assert grpo['reach']['reached'] == 1 and grpo['reach']['x'] == [1, 0]
    # differences -2, -30, +4: mean -9.33, std 18.15, n = 3
    diffs = np.array([-2.0, -30.0, 4.0])
    half = T975[2] * diffs.std(ddof=1) / math.sqrt(3)
    got = grpo['diff']['accuracy/top1']
    assert got['n'] == 3
    assert got['mean'] == pytest.approx(diffs.mean())
    assert got['low'] == pytest.approx(diffs.mean() - half, abs=1e-3)
    assert got['high'] == pytest.approx(diffs.mean() + half, abs=1e-3)
    table = study_report.format_tables(study_report.summarise(runs))
    assert '| GRPO | 3 | 85.7 ± 14.6 | -9.3 [-54.4, +35.7] |' in table


def test_pairs_by_seed_and_baseline_by_prefix():
    runs = [run('fresh head: CE', 0, [[1, 10.0]], 'finetune'),
            run('fresh head: CE', 1, [[1, 20.0]], 'finetune'),
            run('fresh head: X', 1, [[1, 25.0]], 'finetune'),
            run('fresh head: X', 2, [[1, 99.0]], 'finetune')]
    diff = study_report.summarise(runs)['finetune']['points'][
        'fresh head: X']['diff']['accuracy/top1']
    assert diff == dict(n=1, mean=5.0, std=0.0, low=None, high=None)
    assert study_report.baseline_of('reused head: group') == \
        'reused head: CE'
    assert study_report.baseline_of('group, refresh 10') == 'CE'


def test_train_diagnostics_and_lockout_warning(tmp_path):
    records = [{'iter': 1, 'decode.grpo_true_clipped': 0.0,
                'decode.grpo_clip_frac': 0.1, 'decode.grpo_ratio_mean': 1},
               {'iter': 2, 'decode.grpo_true_clipped': 0.9,
                'decode.grpo_clip_frac': 0.3, 'decode.grpo_ratio_mean': 5},
               {'iter': 3, 'decode.grpo_true_clipped': 0.7,
                'decode.grpo_clip_frac': 0.2, 'decode.grpo_ratio_mean': 2},
               {'iter': 4, 'decode.grpo_true_clipped': 1.0}]
    got = study.train_diagnostics(records)
    assert got['grpo_clip_frac'] == pytest.approx(0.2)
    assert got['grpo_ratio_mean_max'] == 5
    assert got['grpo_true_clipped_start'] == 0.9   # steps 2 and 3 only
    log = tmp_path / '20260101_000000' / '20260101_000000.log'
    os.makedirs(log.parent)
    log.write_text('x\nWARNING - GRPOOldModelHook: at iteration 2, 1 '
                   'step(s) after a refresh, 90% of the groups of head '
                   '(LinearClsHead) have their true class locked out\n')
    assert study.lockout_warning(str(tmp_path)).startswith('WARNING')
    assert study.lockout_warning(str(tmp_path / 'none')) == ''


def test_committed_tables_are_computed_from_the_committed_runs():
    """Every mean, std and paired interval of the committed summary, and
    the rows of results.md, recomputed from results.json's runs."""
    with open(osp.join(RESULTS, 'results.json')) as f:
        runs = json.load(f)['runs']
    with open(osp.join(RESULTS, 'summary.json')) as f:
        summary = json.load(f)
    with open(osp.join(RESULTS, 'results.md')) as f:
        table = f.read()
    assert len({r['seed'] for r in runs}) >= 5
    checked = 0
    for part, data in summary.items():
        for point, entry in data['points'].items():
            group = {r['seed']: r for r in runs
                     if (r['part'], r['point']) == (part, point)}
            assert len(group) >= 5, (part, point)
            for metric, (mean, std) in entry['final'].items():
                values = [r['final'][metric] for r in group.values()]
                assert mean == pytest.approx(np.mean(values), abs=1e-9)
                assert std == pytest.approx(np.std(values, ddof=1),
                                            abs=1e-9)
            prefix, sep, _ = point.rpartition(': ')
            base = {r['seed']: r for r in runs if (r['part'], r['point'])
                    == (part, f'{prefix}{sep}CE')}
            for metric, diff in entry.get('diff', {}).items():
                seeds = sorted(set(group) & set(base))
                d = np.array([group[s]['final'][metric] -
                              base[s]['final'][metric] for s in seeds])
                half = T975[len(d) - 1] * d.std(ddof=1) / math.sqrt(len(d))
                assert diff['mean'] == pytest.approx(d.mean(), abs=1e-9)
                assert diff['low'] == pytest.approx(d.mean() - half,
                                                    abs=1e-3)
                assert diff['high'] == pytest.approx(d.mean() + half,
                                                     abs=1e-3)
                checked += 1
    assert checked > 50
    # and results.md shows them: the first row of every part
    for part, data in summary.items():
        point, entry = next(iter(data['points'].items()))
        mean, std = entry['final'][data['primary']]
        assert f'| {point} | {len(entry["seeds"])} | {mean:.1f} ± ' \
            f'{std:.1f} |' in table, (part, point)


def test_quick_mode_runs_every_part_and_family(tmp_path):
    out, work = tmp_path / 'out', tmp_path / 'work'
    proc = run_tool('tools/experiments/study.py', '--quick', '--out',
                    str(out), '--work-dir', str(work), timeout=900,
                    env=dict(OMP_NUM_THREADS='1'))
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(out / 'results.json') as f:
        results = json.load(f)
    runs = results['runs']
    parts = {r['part'] for r in runs}
    assert parts == {'digits', 'voc', 'pretrain', 'finetune', 'represent',
                     'classes'}
    families = results['families']
    assert set(families['digits'].values()) == {
        '', 'normalisation x lag', 'clip', 'target', 'sampled groups',
        'rewards'}
    assert set(families['voc'].values()) == {
        '', 'normalisation x lag', 'clip', 'target'}
    points = {(r['part'], r['point']) for r in runs}
    assert ('digits', 'none, refresh 3') in points    # the longer lag
    assert ('digits', 'group, refresh 3, dual clip 3') in points
    assert ('voc', 'group, on-policy, no background penalty') in points
    for r in runs:
        assert r['seed'] == 0 and r['cpu_seconds'] >= 0
        for value in r['final'].values():
            assert 0.0 <= value <= 100.0
    finetune = [r for r in runs if r['part'] == 'finetune']
    assert {r['point'] for r in finetune} == {
        'fresh head: CE', 'fresh head: none, refresh 2', 'reused head: CE',
        'reused head: group, refresh 2'}
    for r in finetune:
        assert 'calibration/ECE' in r['final']
        if 'CE' not in r['point']:
            assert r['lockout_warning'] in ('', ) or \
                study.LOCKOUT_MESSAGE in r['lockout_warning']
            assert r['train_curve']['grpo_true_clipped']
    represent = {r['point']: r for r in runs if r['part'] == 'represent'}
    assert set(represent) == {study.PRETRAINED} | {
        r['point'] for r in finetune if 'CE' not in r['point']}
    assert set(represent[study.PRETRAINED]['final']) == {
        'knn_k20_top1', 'linear_top1', 'retained_knn_k20_top1',
        'retained_linear_top1'}
    classes = [r for r in runs if r['part'] == 'classes']
    assert {r['classes'] for r in classes} == {2, 1000}
    assert all(r['train']['finite'] == 1.0 for r in classes)
    assert all(math.isfinite(r['train']['grpo_adv_true_max'])
               for r in classes if 'CE' not in r['point'])
    assert results['sessions'][-1]['cpu_seconds'] > 0
    md = (out / 'results.md').read_text()
    assert md.startswith('Cost: ') and '### classes' in md and 'Δ' in md
    assert (out / 'curves.png').stat().st_size > 1000
