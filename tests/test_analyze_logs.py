"""tools/analyze_logs.py on small MMEngine scalar logs."""
import json
import os
import os.path as osp
import sys

import pytest
from conftest import REPO_ROOT

pytest.importorskip('matplotlib')
sys.path.insert(0, osp.join(REPO_ROOT, 'tools'))
import analyze_logs  # noqa: E402


def write_log(work_dir, records, stamp='20260101_000000'):
    path = osp.join(work_dir, stamp, 'vis_data', 'scalars.json')
    os.makedirs(osp.dirname(path))
    with open(path, 'w') as f:
        for record in records:
            f.write(json.dumps(record) + '\n')
    return path


@pytest.fixture
def seg_runs(tmp_path):
    """An iteration-based GRPO-RM run (decode. / aux. diagnostics) and its
    CE twin, as MMEngine writes them."""
    grpo, ce = str(tmp_path / 'grpo'), str(tmp_path / 'ce')
    train = []
    for it in (10, 20, 30):
        train.append({'lr': 1e-3, 'loss': -0.1 * it, 'iter': it, 'step': it,
                      'decode.grpo_reward_mean': 0.01 * it,
                      'aux.grpo_reward_mean': 0.02 * it,
                      'decode.grpo_clip_frac': 0.1,
                      'decode.grpo_ratio_mean': 1.0 + it / 1000,
                      'decode.grpo_adv_true': 3.0 - it / 100})
    write_log(grpo, train + [{'mIoU': 40.0, 'IoU.background': 70.0,
                              'mIoU.fg': 35.0, 'step': 30}])
    write_log(ce, [{'lr': 1e-3, 'loss': 2.0 - it / 100, 'iter': it,
                    'step': it} for it in (10, 20, 30)] +
              [{'mIoU': 50.0, 'IoU.background': 90.0, 'mIoU.fg': 45.0,
                'step': 30}])
    # an older run in the same work dir: a later run logged its steps again
    write_log(ce, [{'lr': 1.0, 'loss': 99.0, 'iter': it, 'step': it}
                   for it in (10, 20)], stamp='20250101_000000')
    return grpo, ce


def test_series_and_png(seg_runs, tmp_path, capsys):
    grpo, ce = seg_runs
    series = analyze_logs.collect([grpo, ce], ['GRPO-RM', 'CE'], 'iter')
    assert series['loss']['CE'] == ([10, 20, 30], [1.9, 1.8, 1.7])
    assert series['loss']['GRPO-RM'][1] == pytest.approx([-1, -2, -3])
    reward = series['GRPO-RM reward (mean)']
    assert set(reward) == {'GRPO-RM (decode)', 'GRPO-RM (aux)'}
    assert reward['GRPO-RM (aux)'][1] == pytest.approx([0.2, 0.4, 0.6])
    assert series['GRPO-RM true-class advantage']['GRPO-RM (decode)'][1] == \
        pytest.approx([2.9, 2.8, 2.7])
    assert series['validation']['CE IoU.background'] == ([30], [90.0])
    out = str(tmp_path / 'curves.png')
    panels = analyze_logs.main([grpo, ce, '--labels', 'GRPO-RM', 'CE',
                                '--out', out])
    assert panels == ['loss', 'validation', 'GRPO-RM reward (mean)',
                      'GRPO-RM clip fraction', 'GRPO-RM ratio (mean)',
                      'GRPO-RM true-class advantage']
    with open(out, 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'
    table = capsys.readouterr().out
    assert '| GRPO-RM | 40.00 | 35.00 | 70.00 |' in table
    assert '| CE | 50.00 | 45.00 | 90.00 |' in table


def test_epoch_based_run_on_both_axes(tmp_path):
    run = str(tmp_path / 'cls')
    # 10 iterations per epoch, logged every 4
    write_log(run, [
        {'lr': 1e-3, 'loss': 1.0, 'epoch': 1, 'iter': 4, 'step': 4},
        {'lr': 1e-3, 'loss': 0.9, 'epoch': 1, 'iter': 8, 'step': 8},
        {'lr': 1e-3, 'loss': 0.8, 'epoch': 2, 'iter': 12, 'step': 12},
        {'lr': 1e-3, 'loss': 0.7, 'epoch': 2, 'iter': 20, 'step': 20},
        {'accuracy/top1': 55.0, 'step': 2}])
    by_iter = analyze_logs.collect([run], None, 'iter')
    assert by_iter['validation']['cls accuracy/top1'] == ([20], [55.0])
    by_epoch = analyze_logs.collect([run], None, 'epoch')
    assert by_epoch['loss']['cls'][0] == pytest.approx([0.4, 0.8, 1.2, 2.0])
    assert by_epoch['validation']['cls accuracy/top1'] == ([2], [55.0])


def test_errors_name_the_problem(seg_runs, tmp_path):
    grpo, _ = seg_runs
    with pytest.raises(ValueError, match='iteration-based run'):
        analyze_logs.collect([grpo], None, 'epoch')
    with pytest.raises(FileNotFoundError, match='no MMEngine scalar log'):
        analyze_logs.collect([str(tmp_path)], None, 'iter')
    with pytest.raises(ValueError, match='2 runs'):
        analyze_logs.collect([grpo, grpo], ['one'], 'iter')
    bad = write_log(str(tmp_path / 'bad'), [{'lr': 1, 'step': 1}])
    with open(bad, 'a') as f:
        f.write('{not json\n')
    with pytest.raises(ValueError, match='scalars.json:2 is not a JSON'):
        analyze_logs.collect([bad], None, 'iter')


def test_keys_plot_any_logged_scalar(seg_runs, tmp_path):
    """``--keys`` as MMSeg's / MMPretrain's: one panel per logged scalar,
    training and validation records alike, patterns too."""
    grpo, ce = seg_runs
    out = str(tmp_path / 'keys.png')
    panels = analyze_logs.main([grpo, ce, '--labels', 'GRPO-RM', 'CE',
                                '--keys', 'lr', 'decode.grpo_*', 'mIoU',
                                '--out', out])
    assert panels == ['lr', 'decode.grpo_*', 'mIoU'] and osp.isfile(out)
    series = analyze_logs.collect([grpo, ce], ['GRPO-RM', 'CE'], 'iter',
                                  ['lr', 'decode.grpo_*', 'mIoU'])
    assert series['lr']['CE'] == ([10, 20, 30], [1e-3] * 3)
    assert set(series['decode.grpo_*']) == {
        f'GRPO-RM decode.grpo_{k}' for k in ('reward_mean', 'clip_frac',
                                             'ratio_mean', 'adv_true')}
    assert series['decode.grpo_*']['GRPO-RM decode.grpo_clip_frac'] == (
        [10, 20, 30], [0.1] * 3)
    assert series['mIoU'] == {'GRPO-RM (val)': ([30], [40.0]),
                              'CE (val)': ([30], [50.0])}
    with pytest.raises(ValueError, match=r"--keys \['acc_seg'\]: logged by "
                       r"none of the runs. Logged scalars: \['IoU.back"):
        analyze_logs.collect([grpo, ce], None, 'iter', ['lr', 'acc_seg'])


def test_val_keys_choose_the_validation_lines(seg_runs, tmp_path):
    grpo, ce = seg_runs
    series = analyze_logs.collect([grpo, ce], ['GRPO-RM', 'CE'], 'iter',
                                  val_keys=['mIoU'])
    assert series['validation'] == {'GRPO-RM mIoU': ([30], [40.0]),
                                    'CE mIoU': ([30], [50.0])}
    out = str(tmp_path / 'one.png')
    assert 'validation' in analyze_logs.main(
        [grpo, ce, '--out', out, '--val-keys', 'mIoU'])
    with pytest.raises(ValueError, match='--val-keys'):
        analyze_logs.main([grpo, '--out', out, '--val-keys', 'mIoU.typo'])
