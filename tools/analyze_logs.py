"""Plot MMEngine scalar logs of one or more runs into one PNG.

Reads ``<work_dir>/<timestamp>/vis_data/scalars.json`` (every run of each
work dir, in time order: a resumed run's parts join into one curve, the
later record winning where they overlap; or a ``scalars.json`` given
directly) and draws, against
iterations or epochs, one panel each for the training loss, the validation
metrics (accuracy / mIoU, and the background / foreground IoU of
``ClassIoUMetric``) and GRPO-RM's diagnostics: ``grpo_reward_mean``,
``grpo_clip_frac``, ``grpo_ratio_mean`` and ``grpo_adv_true`` (with their
``decode.`` / ``aux.`` variants in the same panel). Panels with no data in
any run are left out; lines are labelled by run. Prints a table of each
run's last validation metrics.

    python tools/analyze_logs.py work_dirs/ce work_dirs/grpo \\
        --labels CE GRPO-RM --out curves.png [--x epoch] [--val-keys mIoU]

``--val-keys`` keeps the validation panel to the metrics named (one line
per run with one key).

``--keys KEY...`` plots any logged scalars instead, one panel each, like
MMSeg's and MMPretrain's ``analyze_logs.py --keys``: ``lr``, per-head losses
(``decode.loss_ce``), ``decode.acc_seg``, ``grpo_old_age``, ``time``,
validation metrics (``mIoU``), or shell-style patterns (``'decode.*'``).

In epoch-based runs MMEngine logs validation at epochs and training at
iterations; the other axis uses the iterations per epoch estimated from the
log (exact up to the logging interval).
"""
import argparse
import fnmatch
import math
import os.path as osp
import sys
from typing import Dict, List, Optional, Sequence, Tuple

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from grpo_rm_mm.utils.logs import read_run_logs  # noqa: E402

#: (panel title, keys; a key also matches its decode./aux. variants)
TRAIN_PANELS = (
    ('loss', ('loss', )),
    ('GRPO-RM reward (mean)', ('grpo_reward_mean', )),
    ('GRPO-RM clip fraction', ('grpo_clip_frac', )),
    ('GRPO-RM ratio (mean)', ('grpo_ratio_mean', )),
    ('GRPO-RM true-class advantage', ('grpo_adv_true', )),
)
VAL_PANEL = 'validation'
VAL_KEYS = ('accuracy/top1', 'accuracy/top5', 'mIoU', 'aAcc', 'mIoU.fg',
            'IoU.background')
HEAD_PREFIXES = ('', 'decode.', 'aux.')

Series = Dict[str, Dict[str, Tuple[List[float], List[float]]]]


def iters_per_epoch(train: List[dict]) -> Optional[int]:
    """Estimate from (epoch, iter) pairs: epoch e holds iterations
    ((e - 1) * n, e * n], so n >= iter / epoch for every record."""
    pairs = [(r['epoch'], r['iter']) for r in train
             if r.get('epoch') and 'iter' in r]
    if not pairs:
        return None
    return max(math.ceil(it / ep) for ep, it in pairs)


def run_series(log: dict, label: str, x: str, source: str,
               keys: Optional[Sequence[str]] = None,
               val_keys: Sequence[str] = VAL_KEYS) -> Series:
    """Every plotted series of one run: ``{panel: {line label: (xs, ys)}}``.

    With ``keys``, one panel per key (or pattern) instead of the default
    panels; validation lines are marked ``(val)``. ``val_keys``: the
    validation metrics of the default validation panel.
    """
    by_epoch = log['by_epoch']
    if x == 'epoch' and not by_epoch:
        raise ValueError(f'{source} is an iteration-based run (no "epoch" '
                         'in its training records); plot it with --x iter')
    per_epoch = iters_per_epoch(log['train']) if by_epoch else None

    def train_x(record):
        step = record.get('iter', record['step'])
        return step / per_epoch if x == 'epoch' else step

    def val_x(record):
        step = record['step']
        return step * per_epoch if by_epoch and x == 'iter' else step

    series: Series = {}
    if keys:
        for key in keys:
            for records, to_x, tag in ((log['train'], train_x, ''),
                                       (log['val'], val_x, ' (val)')):
                logged = {k for r in records for k in r}
                for name in sorted(fnmatch.filter(logged, key)):
                    points = [(to_x(r), r[name]) for r in records
                              if name in r and name != 'step']
                    line = label if name == key else f'{label} {name}'
                    if points:
                        series.setdefault(key, {})[line + tag] = \
                            _unzip(points)
        return series
    for title, keys in TRAIN_PANELS:
        for key in keys:
            for prefix in HEAD_PREFIXES:
                name = prefix + key
                points = [(train_x(r), r[name]) for r in log['train']
                          if name in r]
                if points:
                    line = f'{label} ({prefix[:-1]})' if prefix else label
                    series.setdefault(title, {})[line] = _unzip(points)
    for key in val_keys:
        points = [(val_x(r), r[key]) for r in log['val'] if key in r]
        if points:
            series.setdefault(VAL_PANEL, {})[f'{label} {key}'] = \
                _unzip(points)
    return series


def _unzip(points) -> Tuple[List[float], List[float]]:
    xs, ys = zip(*points)
    return list(xs), list(ys)


def collect(sources: Sequence[str], labels: Optional[Sequence[str]],
            x: str, keys: Optional[Sequence[str]] = None,
            val_keys: Sequence[str] = VAL_KEYS) -> Series:
    """Merge the series of every run (labels default to the folder names);
    ``keys``, ``val_keys``: see :func:`run_series`."""
    if labels and len(labels) != len(sources):
        raise ValueError(f'--labels has {len(labels)} names for '
                         f'{len(sources)} runs')
    labels = labels or [osp.basename(osp.normpath(s)) for s in sources]
    merged: Series = {}
    logged = set()
    for source, label in zip(sources, labels):
        log = read_run_logs(source)
        for note in log['notes']:
            print(f'{source}: {note}')
        for panel, lines in run_series(log, label, x, source, keys,
                                       val_keys).items():
            merged.setdefault(panel, {}).update(lines)
        logged.update(k for r in log['train'] + log['val'] for k in r)
    missing = [k for k in keys or [] if k not in merged]
    if missing:
        raise ValueError(f'--keys {missing}: logged by none of the runs. '
                         f'Logged scalars: {sorted(logged - {"step"})}')
    return merged


def final_table(sources: Sequence[str],
                labels: Optional[Sequence[str]]) -> str:
    """A markdown table of each run's last validation record."""
    labels = labels or [osp.basename(osp.normpath(s)) for s in sources]
    rows = []
    for source, label in zip(sources, labels):
        val = read_run_logs(source)['val']
        rows.append((label, val[-1] if val else {}))
    keys = [k for k in VAL_KEYS if any(k in r for _, r in rows)]
    if not keys:
        return 'no validation records'
    lines = ['| run | ' + ' | '.join(keys) + ' |',
             '|---|' + '---|' * len(keys)]
    for label, record in rows:
        cells = [f'{record[k]:.2f}' if k in record else '-' for k in keys]
        lines.append(f'| {label} | ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def plot(series: Series, x: str, out: str, title: str = '',
         order: Optional[Sequence[str]] = None) -> List[str]:
    """Draw the panels (training panels first, validation second; or those
    of ``order``) into ``out``; returns the panel titles in drawing
    order."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    order = order or ([TRAIN_PANELS[0][0], VAL_PANEL] +
                      [t for t, _ in TRAIN_PANELS[1:]])
    panels = [p for p in order if p in series]
    if not panels:
        raise ValueError('nothing to plot: the logs have none of the keys '
                         f'{[k for _, ks in TRAIN_PANELS for k in ks]} or '
                         f'{list(VAL_KEYS)}')
    cols = min(3, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.3 * rows),
                             squeeze=False)
    for ax, panel in zip(axes.flat, panels):
        for line, (xs, ys) in series[panel].items():
            val = panel == VAL_PANEL or line.endswith('(val)')
            ax.plot(xs, ys, label=line, lw=1.2, marker='o' if val else None,
                    ms=3)
        ax.set_title(panel)
        ax.set_xlabel(x)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis('off')
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out, dpi=80)
    plt.close(fig)
    return panels


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('runs', nargs='+',
                        help='work dirs (their newest run) or scalars.json '
                        'files')
    parser.add_argument('--labels', nargs='+', help='one name per run')
    parser.add_argument('--x', choices=('iter', 'epoch'), default='iter',
                        help='x axis (epoch: epoch-based runs only)')
    parser.add_argument('--out', default='curves.png', help='PNG to write')
    parser.add_argument('--title', default='')
    parser.add_argument(
        '--keys', nargs='+',
        help='plot these logged scalars (or shell-style patterns), one '
        'panel each, instead of the default panels; e.g. lr '
        'decode.loss_ce decode.acc_seg grpo_old_age time mIoU')
    parser.add_argument('--val-keys', nargs='+', metavar='KEY',
                        help='validation metrics of the validation panel '
                        '(default: every one of ' + ', '.join(VAL_KEYS) +
                        ' the logs have), e.g. --val-keys mIoU for one line '
                        'per run')
    return parser.parse_args(argv)


def main(argv=None) -> List[str]:
    args = parse_args(argv)
    series = collect(args.runs, args.labels, args.x, args.keys,
                     args.val_keys or VAL_KEYS)
    if args.val_keys and not args.keys and VAL_PANEL not in series:
        raise ValueError(f'no run logs any of --val-keys {args.val_keys} '
                         f'(validation metrics: {list(VAL_KEYS)})')
    panels = plot(series, args.x, args.out, args.title, args.keys)
    print(final_table(args.runs, args.labels))
    print(f'wrote {args.out}: ' + ', '.join(panels))
    return panels


if __name__ == '__main__':
    main()
