"""The study's summaries, tables and figure, from its list of runs.

A run is a dict: ``part``, ``point``, ``seed``, ``final`` (metric -> value),
``curve`` (metric -> [[x, value], ...]), ``x_unit`` and, for GRPO-RM runs,
``train`` (diagnostics over training). Every number of the tables is
computed here from those per-run values:

- mean ± sample std (n - 1) over seeds of each final metric;
- for each point other than its baseline, the paired difference to the
  baseline over the seeds both have, mean and 95 % interval
  ``mean ± t(0.975, n - 1) * std / sqrt(n)`` (Student t);
- the iterations / epochs at which a run's validation curve first reaches
  :data:`REACH` of its baseline's final mean (the runs that never do are
  counted, not averaged).

The baseline of a point named ``'PREFIX: NAME'`` is ``'PREFIX: CE'``, of
any other point ``'CE'``.
"""
import math
from typing import Dict, List, Optional, Sequence

import numpy as np

#: share of the baseline's final value that defines "reached"
REACH = 0.95
#: two-sided interval of the paired differences
CONFIDENCE = 0.95

PRIMARY = {'digits': 'accuracy/top1', 'voc': 'mIoU',
           'pretrain': 'accuracy/top1', 'finetune': 'accuracy/top1',
           'represent': 'knn_k20_top1', 'classes': 'accuracy'}
#: the metrics whose paired difference to the baseline each table shows
DIFFS = {'digits': ('accuracy/top1', 'calibration/ECE'),
         'finetune': ('accuracy/top1', 'calibration/ECE'),
         'represent': ('knn_k20_top1', 'linear_top1',
                       'retained_knn_k20_top1', 'retained_linear_top1')}
#: training diagnostics shown as columns (mean over training, or max)
TRAIN_COLUMNS = {'digits': ('grpo_clip_frac', ),
                 'voc': ('grpo_clip_frac', ),
                 'finetune': ('grpo_true_clipped_start', ),
                 'classes': ('grpo_adv_true_max', 'finite')}
SHORT = {'accuracy/top1': 'top-1 %', 'calibration/ECE': 'ECE %',
         'calibration/confidence': 'confidence %',
         'IoU.background': 'bg IoU', 'mIoU.fg': 'fg mIoU',
         'knn_k20_top1': 'kNN', 'linear_top1': 'linear',
         'retained_knn_k20_top1': 'kNN 0-4', 'retained_linear_top1':
         'linear 0-4', 'grpo_clip_frac': 'clip frac',
         'grpo_true_clipped_start': 'locked out at steps 2-3',
         'grpo_adv_true_max': 'max A_true', 'accuracy': 'top-1 %',
         'finite': 'share of runs finite'}


def baseline_of(point: str) -> str:
    prefix, sep, _ = point.rpartition(': ')
    return f'{prefix}{sep}CE'


def t_quantile(dof: int) -> float:
    """The Student t quantile of the two-sided :data:`CONFIDENCE` interval.
    """
    from scipy.stats import t
    return float(t.ppf(0.5 + CONFIDENCE / 2, dof))


def mean_std(values: Sequence[float]) -> List[Optional[float]]:
    if not len(values):
        return [None, None]
    std = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    return [float(np.mean(values)), std]


def paired_difference(values: Dict[int, float],
                      baseline: Dict[int, float]) -> Optional[dict]:
    """Mean of ``values[s] - baseline[s]`` over the common seeds ``s``, its
    sample std and 95 % interval (None with fewer than 2 seeds)."""
    seeds = sorted(set(values) & set(baseline))
    if not seeds:
        return None
    diffs = [values[s] - baseline[s] for s in seeds]
    mean, std = mean_std(diffs)
    if len(diffs) < 2:
        return dict(n=len(diffs), mean=mean, std=std, low=None, high=None)
    half = t_quantile(len(diffs) - 1) * std / math.sqrt(len(diffs))
    return dict(n=len(diffs), mean=mean, std=std, low=mean - half,
                high=mean + half)


def _reach(curve: List[list], threshold: float) -> Optional[float]:
    for x, value in curve:
        if value >= threshold:
            return x
    return None


def _by_seed(runs: List[dict], metric: str, where: str = 'final'
             ) -> Dict[int, float]:
    return {r['seed']: r[where][metric] for r in runs
            if metric in r.get(where, {})}


def summarise(runs: List[dict]) -> Dict[str, dict]:
    """Per part and point: mean / std of each final metric and training
    diagnostic, paired differences to the baseline, and when the primary
    metric first reached :data:`REACH` of the baseline's final mean."""
    summary: Dict[str, dict] = {}
    for part in dict.fromkeys(r['part'] for r in runs):
        primary = PRIMARY[part]
        part_runs = [r for r in runs if r['part'] == part]
        points: Dict[str, dict] = {}
        for point in dict.fromkeys(r['point'] for r in part_runs):
            group = [r for r in part_runs if r['point'] == point]
            metrics = list(dict.fromkeys(m for r in group for m in r['final']))
            entry = dict(seeds=[r['seed'] for r in group],
                         x_unit=group[0].get('x_unit'),
                         final={m: mean_std(list(_by_seed(group, m).values()))
                                for m in metrics})
            train = list(dict.fromkeys(
                k for r in group for k in r.get('train', {})))
            if train:
                entry['train'] = {k: mean_std(list(_by_seed(
                    group, k, 'train').values())) for k in train}
            warned = [r['lockout_warning'] for r in group
                      if 'lockout_warning' in r]
            if warned:
                entry['warned'] = sum(bool(w) for w in warned)
            base_runs = [r for r in part_runs
                         if r['point'] == baseline_of(point)]
            if base_runs and point != baseline_of(point):
                entry['diff'] = {}
                for metric in DIFFS.get(part, (primary, )):
                    diff = paired_difference(_by_seed(group, metric),
                                             _by_seed(base_runs, metric))
                    if diff is not None:
                        entry['diff'][metric] = diff
            base = [r['final'][primary] for r in base_runs
                    if primary in r['final']]
            if base and all(r.get('curve', {}).get(primary) for r in group):
                threshold = REACH * float(np.mean(base))
                reached = [_reach(r['curve'][primary], threshold)
                           for r in group]
                hits = [x for x in reached if x is not None]
                entry['reach'] = dict(threshold=threshold,
                                      reached=len(hits), of=len(group),
                                      x=mean_std(hits))
            points[point] = entry
        summary[part] = dict(primary=primary, points=points)
    return summary


# --------------------------------------------------------------- tables
def _fmt(mean_std_, digits: int = 1) -> str:
    mean, std = mean_std_
    return '-' if mean is None else f'{mean:.{digits}f} ± {std:.{digits}f}'


def _fmt_diff(diff: Optional[dict]) -> str:
    if diff is None:
        return ''
    if diff['low'] is None:
        return f'{diff["mean"]:+.1f} (n = 1)'
    return (f'{diff["mean"]:+.1f} [{diff["low"]:+.1f}, '
            f'{diff["high"]:+.1f}]')


def format_tables(summary: Dict[str, dict],
                  costs: Optional[Dict[str, dict]] = None) -> str:
    """One markdown table per part; ``costs``: CPU / wall seconds a part."""
    lines = [
        'Mean ± sample std over seeds; Δ: paired difference to the '
        f'baseline (CE) over the same seeds, mean [{int(CONFIDENCE * 100)} '
        '% Student-t interval]; reach: first epoch / iteration at which '
        f'the curve reaches {int(REACH * 100)} % of the baseline\'s final '
        'mean (mean ± std of the runs that reach it, and how many do).', '']
    for part, data in summary.items():
        points = data['points']
        metrics = list(dict.fromkeys(
            m for p in points.values() for m in p['final']))
        diffs = list(dict.fromkeys(
            m for p in points.values() for m in p.get('diff', {})))
        train = [k for k in TRAIN_COLUMNS.get(part, ())
                 if any(k in p.get('train', {}) for p in points.values())]
        reach = any('reach' in p for p in points.values())
        warned = any('warned' in p for p in points.values())
        head = ['point', 'n'] + [SHORT.get(m, m) for m in metrics]
        head += [f'Δ {SHORT.get(m, m)}' for m in diffs]
        head += [SHORT.get(k, k) for k in train]
        if warned:
            head.append('hook warned')
        if reach:
            unit = next(p['x_unit'] for p in points.values()
                        if 'reach' in p)
            head.append(f'{unit}s to {int(REACH * 100)} % of CE')
        title = f'### {part}'
        if costs and part in costs:
            title += (f' ({costs[part]["cpu"] / 60:.1f} CPU-minutes, '
                      f'{costs[part]["wall"] / 60:.1f} wall)')
        lines += [title, '', '| ' + ' | '.join(head) + ' |',
                  '|' + '---|' * len(head)]
        for point, entry in points.items():
            row = [point, str(len(entry['seeds']))]
            row += [_fmt(entry['final'].get(m, [None, None]))
                    for m in metrics]
            row += [_fmt_diff(entry.get('diff', {}).get(m)) for m in diffs]
            row += [_fmt(entry.get('train', {}).get(k, [None, None]), 2)
                    for k in train]
            if warned:
                row.append(f'{entry["warned"]}/{len(entry["seeds"])}'
                           if 'warned' in entry else '')
            if reach:
                r = entry.get('reach')
                row.append('-' if r is None else
                           f'{_fmt(r["x"])} ({r["reached"]}/{r["of"]})'
                           if r['reached'] else f'never (0/{r["of"]})')
            lines.append('| ' + ' | '.join(row) + ' |')
        lines.append('')
    return '\n'.join(lines)


# --------------------------------------------------------------- figure
def plot_curves(runs: List[dict], families: Dict[str, Dict[str, str]],
                path: str) -> None:
    """Mean validation curve of each point, one panel per part and family
    of points (``families[part][point]``; CE in every panel of its part);
    the class-set-size part as final accuracy against C."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    panels = []
    for part in dict.fromkeys(r['part'] for r in runs):
        if part == 'represent':
            continue
        names = families.get(part, {})
        for family in dict.fromkeys(
                names.get(r['point'], '') for r in runs
                if r['part'] == part and not r['point'].endswith('CE')):
            panels.append((part, family))
    if not panels:
        return
    cols = min(4, len(panels))
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows),
                             squeeze=False)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis('off')
    for ax, (part, family) in zip(axes.flat, panels):
        part_runs = [r for r in runs if r['part'] == part]
        if part == 'classes':
            _plot_class_size(ax, part_runs)
        else:
            _plot_family(ax, part, family, part_runs,
                         families.get(part, {}))
        ax.set_title(f'{part}: {family}' if family else part, fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=5.5)
    fig.tight_layout()
    fig.savefig(path, dpi=64)
    plt.close(fig)


def _plot_family(ax, part, family, part_runs, names) -> None:
    metric = PRIMARY[part]
    for point in dict.fromkeys(r['point'] for r in part_runs):
        if not (point == 'CE' or names.get(point, '') == family):
            continue
        curves = [np.array(r['curve'][metric]) for r in part_runs
                  if r['point'] == point and r['curve'].get(metric)]
        if not curves:
            continue
        length = min(len(c) for c in curves)
        xs = curves[0][:length, 0]
        ys = np.mean([c[:length, 1] for c in curves], axis=0)
        style = dict(lw=2.0, color='k') if point.endswith('CE') else \
            dict(lw=1)
        ax.plot(xs, ys, label=f'{point} (n={len(curves)})', **style)
    ax.set_xlabel(part_runs[0]['x_unit'])
    ax.set_ylabel(metric)


def _plot_class_size(ax, part_runs) -> None:
    methods = dict.fromkeys(r['point'].partition(': ')[2]
                            for r in part_runs)
    for method in methods:
        by_c: Dict[int, list] = {}
        for r in part_runs:
            if r['point'].partition(': ')[2] == method:
                by_c.setdefault(r['classes'], []).append(
                    r['final']['accuracy'])
        cs = sorted(by_c)
        style = dict(lw=2.0, color='k') if method == 'CE' else dict(lw=1)
        ax.plot(cs, [np.mean(by_c[c]) for c in cs], marker='o', ms=3,
                label=method, **style)
    ax.set_xscale('log')
    ax.set_xlabel('classes C')
    ax.set_ylabel('final accuracy %')
