"""Does GRPO-RM learn as well as cross-entropy? The study, rerunnable.

Every run is one of the project's configs (``configs/digits``,
``configs/demo``) with a few keys changed (seed, schedule, model size, loss
options, old-model refresh interval), trained in this process through
MMEngine's ``Runner`` (one thread, one run after the other: on a small CPU
start-up dominates short runs). Each run's validation curve is read back
from its own scalar log, the file ``tools/analyze_logs.py`` reads.

Parts (``--parts``):

- ``digits``: scikit-learn's digits, 10 classes (accuracy, per epoch);
- ``cls``: the synthetic shapes classification set, 5 classes;
- ``voc``: the synthetic Pascal VOC layout, 6 of 21 classes present (mIoU,
  background IoU, foreground mIoU, per iteration);
- ``finetune``: the paper's setting at small scale: pre-train with CE on
  digits 0-4, fine-tune on digits 5-9 (other classes) with CE and with
  GRPO-RM; the final checkpoints are kept for ``--parts represent``;
- ``represent``: kNN and linear-probe accuracy of the pooled backbone
  features on digits 5-9, for the pre-trained model unchanged and for
  each fine-tuned one (``grpo_rm_mm.evaluation``).

For each point: final metric (mean and sample std over seeds) and the
iterations / epochs until the validation curve first reaches 95 % of the
final CE value of its part. Results go to ``--out`` as ``results.json``
(every run, with its curve), ``results.md`` (the tables) and
``curves.png``; both are rewritten after each run, so an interrupted study
leaves what it measured.

    python tools/experiments/study.py                      # the full study
    python tools/experiments/study.py --quick --out /tmp/q  # 1 seed, tiny
"""
import argparse
import json
import os
import os.path as osp
import sys
import time
from typing import Callable, Dict, List, Optional

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, REPO_ROOT)

import grpo_rm_mm  # noqa: E402,F401  (shims + registration)
import numpy as np  # noqa: E402
import torch  # noqa: E402
from grpo_rm_mm.datasets import make_synthetic_cls  # noqa: E402
from grpo_rm_mm.datasets import make_synthetic_voc  # noqa: E402
from grpo_rm_mm.utils import (build_runner, find_scalar_log,  # noqa: E402
                              read_scalar_log)
from mmengine.config import Config  # noqa: E402

DIGITS_CE = 'configs/digits/ce_dinov2-tiny-p2_1xb32-20e_digits-8x8.py'
DIGITS_GRPO = 'configs/digits/grpo-rm_dinov2-tiny-p2_1xb32-20e_digits-8x8.py'
CLS_CE = 'configs/demo/ce_dinov2-tiny_1xb16-10e_synthetic-cls-64x64.py'
CLS_GRPO = 'configs/demo/grpo-rm_dinov2-tiny_1xb16-10e_synthetic-cls-64x64.py'
VOC_CE = 'configs/demo/ce_dinov2-tiny_1xb8-300_synthetic-voc-112x112.py'
VOC_GRPO = 'configs/demo/grpo-rm_dinov2-tiny_1xb8-300_synthetic-voc-112x112.py'
PRETRAIN_DIGITS = (0, 1, 2, 3, 4)
FINETUNE_DIGITS = (5, 6, 7, 8, 9)
#: share of the final CE value that defines "reached" (iterations-to-95%)
REACH = 0.95


# ------------------------------------------------------------ config edits
def _hook(cfg: Config, interval: int, by_epoch: bool = False) -> None:
    cfg.custom_hooks = [
        dict(type='GRPOOldModelHook', interval=interval, by_epoch=by_epoch)
    ]


def _loss(cfg: Config) -> dict:
    head = cfg.model.get('decode_head') or cfg.model.head
    return head.get('loss_decode') or head.loss


def grpo(interval: int = 10, by_epoch: bool = False, **loss) -> Callable:
    """An edit: old-model refresh interval and loss options."""

    def edit(cfg: Config) -> None:
        _hook(cfg, interval, by_epoch)
        _loss(cfg).update(loss)

    return edit


def _no_checkpoints(cfg: Config, keep_last: bool) -> None:
    cfg.default_hooks.checkpoint = dict(
        type='CheckpointHook', interval=10**9, by_epoch=cfg.train_cfg.get(
            'by_epoch', False), save_last=keep_last, max_keep_ckpts=1)


def _quiet(cfg: Config) -> None:
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].num_workers = 0
        cfg[loader].persistent_workers = False
    cfg.log_level = 'WARNING'
    cfg.default_hooks.logger.interval = 10


def _epochs(cfg: Config, epochs: int, val_every: int) -> None:
    cfg.train_cfg = dict(by_epoch=True, max_epochs=epochs,
                         val_interval=val_every)
    cfg.param_scheduler = dict(type='CosineAnnealingLR', by_epoch=True,
                               T_max=epochs, eta_min_ratio=0.01)


def _tiny_vit(backbone: dict, embed_dims: int, layers: int) -> None:
    backbone.arch = dict(embed_dims=embed_dims, num_layers=layers,
                         num_heads=2, feedforward_channels=4 * embed_dims)
    backbone.out_indices = (layers - 1, )


def base_digits(cfg: Config, quick: bool) -> None:
    _epochs(cfg, 2 if quick else 20, 1 if quick else 2)
    if quick:
        for loader in ('train_dataloader', 'val_dataloader'):
            cfg[loader].dataset.indices = 64


def base_cls(cfg: Config, quick: bool, data_root: str) -> None:
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].dataset.data_root = data_root
    _tiny_vit(cfg.model.backbone, 64, 3)
    cfg.model.backbone.img_size = 56
    cfg.model.head.in_channels = 64
    cfg.train_dataloader.batch_size = 16
    _epochs(cfg, 2 if quick else 8, 1 if quick else 2)


def base_voc(cfg: Config, quick: bool, data_root: str) -> None:
    """56 x 56 crops of 64-pixel images, 7-pixel patches (8 x 8 tokens)."""
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].dataset.data_root = data_root
    for step in cfg.train_dataloader.dataset.pipeline:
        if step.type == 'RandomResize':
            step.scale = (64, 64)
        elif step.type == 'RandomCrop':
            step.crop_size = (56, 56)
    for step in cfg.val_dataloader.dataset.pipeline:
        if step.type == 'Resize':
            step.scale = (64, 64)
    cfg.model.data_preprocessor.size = (56, 56)
    backbone = cfg.model.backbone
    _tiny_vit(backbone, 64, 3)
    backbone.img_size = 56
    backbone.patch_size = 7
    cfg.model.decode_head.in_channels = [64, 64]
    iters = 6 if quick else 200
    warmup = max(1, iters // 15)
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=iters,
                         val_interval=3 if quick else 40)
    cfg.param_scheduler = [
        dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0,
             end=warmup),
        dict(type='PolyLR', eta_min=1e-5, power=1.0, begin=warmup,
             end=iters, by_epoch=False),
    ]
    cfg.val_evaluator = dict(type='ClassIoUMetric', iou_metrics=['mIoU'])
    cfg.test_evaluator = cfg.val_evaluator
    cfg.default_hooks.visualization = dict(type='SegVisualizationHook')


def digits_subset(digits, pretrained: Optional[str] = None,
                  epochs: int = 20) -> Callable:
    """Train / validate on a subset of the digits (labels renumbered)."""

    def edit(cfg: Config) -> None:
        for loader in ('train_dataloader', 'val_dataloader',
                       'test_dataloader'):
            cfg[loader].dataset.digits = tuple(digits)
        cfg.model.head.num_classes = len(digits)
        cfg.data_preprocessor.num_classes = len(digits)
        if cfg.train_cfg.max_epochs > 2:  # not --quick
            _epochs(cfg, epochs, 2)
        cfg.load_from = pretrained

    return edit


# ------------------------------------------------------------------ runs
class Study:
    """Runs points x seeds, keeps every result, rewrites the report."""

    def __init__(self, out: str, work_dir: str, seeds: List[int],
                 quick: bool):
        self.out, self.work_dir = out, work_dir
        self.seeds, self.quick = seeds, quick
        self.runs: List[dict] = []
        os.makedirs(out, exist_ok=True)
        results = osp.join(out, 'results.json')
        if osp.exists(results) and not quick:  # resume an interrupted study
            with open(results) as f:
                self.runs = json.load(f)['runs']

    def done(self, part: str, point: str, seed: int) -> Optional[dict]:
        for run in self.runs:
            if (run['part'], run['point'], run['seed']) == \
                    (part, point, seed):
                return run
        return None

    def train(self, part: str, point: str, config: str, seed: int,
              edits: List[Callable], metrics: List[str],
              keep_checkpoint: bool = False) -> dict:
        """Train one config (with ``edits``) and record its val curve."""
        previous = self.done(part, point, seed)
        if previous is not None:
            return previous
        cfg = Config.fromfile(osp.join(REPO_ROOT, config))
        for edit in edits:
            edit(cfg)
        _quiet(cfg)
        _no_checkpoints(cfg, keep_checkpoint)
        name = f'{part}_{point}_seed{seed}'.replace(' ', '-').replace(
            '/', '-')
        cfg.work_dir = osp.join(self.work_dir, name)
        # unique logger and visualizer instances (the MMSeg runtime names
        # its visualizer, and a named instance would be reused)
        cfg.experiment_name = name
        cfg.visualizer.name = name
        cfg.randomness = dict(seed=seed, deterministic=False)
        start = time.time()
        runner = build_runner(cfg)
        runner.train()
        seconds = time.time() - start
        log = read_scalar_log(find_scalar_log(cfg.work_dir))
        curve = {m: [[r['step'], r[m]] for r in log['val'] if m in r]
                 for m in metrics}
        run = dict(part=part, point=point, seed=seed, config=config,
                   x_unit='epoch' if log['by_epoch'] else 'iter',
                   curve=curve,
                   final={m: c[-1][1] for m, c in curve.items() if c},
                   seconds=round(seconds, 1), work_dir=cfg.work_dir)
        if keep_checkpoint:
            run['checkpoint'] = osp.join(
                cfg.work_dir, f'epoch_{cfg.train_cfg.max_epochs}.pth')
        self.runs.append(run)
        self.save()
        print(f'[study] {part} / {point} / seed {seed}: {run["final"]} '
              f'({seconds:.0f} s)', flush=True)
        return run

    def save(self) -> None:
        with open(osp.join(self.out, 'results.json'), 'w') as f:
            json.dump(dict(seeds=self.seeds, quick=self.quick,
                           torch_threads=torch.get_num_threads(),
                           runs=self.runs), f, indent=1)
        summary = summarise(self.runs)
        with open(osp.join(self.out, 'results.md'), 'w') as f:
            f.write(format_tables(summary))
        with open(osp.join(self.out, 'summary.json'), 'w') as f:
            json.dump(summary, f, indent=1)
        plot_curves(self.runs, osp.join(self.out, 'curves.png'))


# ----------------------------------------------------------- summarising
PRIMARY = {'digits': 'accuracy/top1', 'cls': 'accuracy/top1',
           'voc': 'mIoU', 'pretrain': 'accuracy/top1',
           'finetune': 'accuracy/top1'}


def _reach(curve: List[list], threshold: float) -> Optional[float]:
    for x, value in curve:
        if value >= threshold:
            return x
    return None


def _mean_std(values: List[float]) -> List[Optional[float]]:
    if not values:
        return [None, None]
    std = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    return [float(np.mean(values)), std]


def summarise(runs: List[dict]) -> Dict[str, dict]:
    """Per part and point: mean / std of each final metric, and when the
    primary metric first reached 95 % of the part's final CE mean."""
    summary: Dict[str, dict] = {}
    for part in dict.fromkeys(r['part'] for r in runs):
        if part == 'represent':
            summary[part] = _summarise_represent(
                [r for r in runs if r['part'] == part])
            continue
        primary = PRIMARY[part]
        part_runs = [r for r in runs if r['part'] == part]
        ce = [r['final'][primary] for r in part_runs if r['point'] == 'CE']
        threshold = REACH * float(np.mean(ce)) if ce else None
        points = {}
        for point in dict.fromkeys(r['point'] for r in part_runs):
            group = [r for r in part_runs if r['point'] == point]
            entry = dict(seeds=[r['seed'] for r in group],
                         x_unit=group[0]['x_unit'], final={})
            for metric in group[0]['final']:
                entry['final'][metric] = _mean_std(
                    [r['final'][metric] for r in group
                     if metric in r['final']])
            if threshold is not None:
                reached = [_reach(r['curve'][primary], threshold)
                           for r in group]
                hits = [x for x in reached if x is not None]
                entry['reach'] = dict(threshold=round(threshold, 2),
                                      reached=len(hits), of=len(group),
                                      x=_mean_std(hits))
            points[point] = entry
        summary[part] = dict(primary=primary, points=points)
    return summary


def _summarise_represent(runs: List[dict]) -> dict:
    points = {}
    for point in dict.fromkeys(r['point'] for r in runs):
        group = [r for r in runs if r['point'] == point]
        points[point] = dict(
            seeds=[r['seed'] for r in group],
            final={m: _mean_std([r['final'][m] for r in group])
                   for m in group[0]['final']})
    return dict(primary='knn', points=points)


def _fmt(mean_std) -> str:
    mean, std = mean_std
    return '-' if mean is None else f'{mean:.1f} ± {std:.1f}'


def format_tables(summary: Dict[str, dict]) -> str:
    lines = []
    for part, data in summary.items():
        points = data['points']
        metrics = list(dict.fromkeys(
            m for p in points.values() for m in p['final']))
        reach = part != 'represent'
        head = ['point', 'seeds'] + metrics
        if reach:
            unit = next(iter(points.values()))['x_unit']
            head.append(f'{unit}s to {int(REACH * 100)}% of CE')
        lines += [f'### {part}', '', '| ' + ' | '.join(head) + ' |',
                  '|' + '---|' * len(head)]
        for point, entry in points.items():
            row = [point, str(len(entry['seeds']))]
            row += [_fmt(entry['final'].get(m, [None, None]))
                    for m in metrics]
            if reach and 'reach' in entry:
                r = entry['reach']
                row.append(f'{_fmt(r["x"])} ({r["reached"]}/{r["of"]} '
                           'reached)')
            elif reach:
                row.append('-')
            lines.append('| ' + ' | '.join(row) + ' |')
        lines.append('')
    return '\n'.join(lines)


def plot_curves(runs: List[dict], path: str) -> None:
    """Mean validation curve of each point, one panel per part."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    parts = [p for p in dict.fromkeys(r['part'] for r in runs)
             if p in PRIMARY]
    if not parts:
        return
    cols = min(3, len(parts))
    rows = -(-len(parts) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.4 * cols, 3.3 * rows),
                             squeeze=False)
    for ax in list(axes.flat)[len(parts):]:
        ax.axis('off')
    for ax, part in zip(axes.flat, parts):
        metric = PRIMARY[part]
        part_runs = [r for r in runs if r['part'] == part]
        for point in dict.fromkeys(r['point'] for r in part_runs):
            curves = [np.array(r['curve'][metric]) for r in part_runs
                      if r['point'] == point and r['curve'][metric]]
            length = min(len(c) for c in curves)
            xs = curves[0][:length, 0]
            ys = np.mean([c[:length, 1] for c in curves], axis=0)
            style = dict(lw=2.2, color='k') if point == 'CE' else dict(lw=1)
            ax.plot(xs, ys, label=f'{point} (n={len(curves)})', **style)
        ax.set_title(part)
        ax.set_xlabel(part_runs[0]['x_unit'])
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=64)
    plt.close(fig)


# ---------------------------------------------------------------- parts
def run_digits(study: Study) -> None:
    base = [lambda cfg: base_digits(cfg, study.quick)]
    # 1438 training images, batch 32 (64 in --quick); the reward variants
    # on-policy, the best refresh setting on the digits (measured first)
    epoch_iters = 2 if study.quick else 45
    for point, config, edit in quick_cut(
            classification_points(epoch_iters, variant_interval=1),
            study.quick):
        for seed in study.seeds:
            study.train('digits', point, config_of(config, 'digits'), seed,
                        base + [edit], ['accuracy/top1'])


def config_of(kind: str, part: str) -> str:
    return {('ce', 'digits'): DIGITS_CE, ('grpo', 'digits'): DIGITS_GRPO,
            ('ce', 'cls'): CLS_CE, ('grpo', 'cls'): CLS_GRPO,
            ('ce', 'voc'): VOC_CE, ('grpo', 'voc'): VOC_GRPO}[(kind, part)]


def classification_points(epoch_iters: Optional[int] = None,
                          variant_interval: int = 10):
    """(point, 'ce' | 'grpo', edit): CE, the refresh intervals, and the
    reward variants at refresh interval ``variant_interval``.

    "1 epoch" is an iteration interval of one epoch's length: the same
    refreshes (each epoch's first iteration) as ``interval=1,
    by_epoch=True``.
    """
    points = [('CE', 'ce', lambda cfg: None),
              ('on-policy', 'grpo', grpo(1)),
              ('refresh 10', 'grpo', grpo(10)),
              ('refresh 50', 'grpo', grpo(50)),
              ('refresh 200', 'grpo', grpo(200))]
    if epoch_iters:
        points.append(('refresh 1 epoch', 'grpo', grpo(epoch_iters)))
    at = 'on-policy' if variant_interval == 1 else \
        f'refresh {variant_interval}'
    return points + [
        (f'Eq. 5 (deviation), {at}', 'grpo',
         grpo(variant_interval, uniformity='deviation')),
        (f'accuracy only, {at}', 'grpo',
         grpo(variant_interval, uniformity='none')),
        (f'c = 2, {at}', 'grpo', grpo(variant_interval, accuracy_reward=2.0)),
        (f'c = 4, {at}', 'grpo', grpo(variant_interval, accuracy_reward=4.0)),
    ]


def quick_cut(points: list, quick: bool) -> list:
    """--quick: CE, on-policy, refresh 10 and the last point (a variant)
    exercise every kind of edit at a fraction of the time."""
    return points[:3] + points[-1:] if quick else points


def run_cls(study: Study) -> None:
    root = osp.join(study.work_dir, 'data', 'synthetic_cls_56')
    make_synthetic_cls(root, num_train=32 if study.quick else 400,
                       num_val=16 if study.quick else 100, size=56, seed=3)
    base = [lambda cfg: base_cls(cfg, study.quick, root)]
    # 8 epochs of 25 iterations: "refresh 200" never refreshes
    points = classification_points(2 if study.quick else 25)
    for point, config, edit in (points[:3] if study.quick else points):
        for seed in study.seeds:
            study.train('cls', point, config_of(config, 'cls'), seed,
                        base + [edit], ['accuracy/top1'])


VOC_METRICS = ['mIoU', 'IoU.background', 'mIoU.fg']


def run_voc(study: Study) -> None:
    root = osp.join(study.work_dir, 'data', 'synthetic_voc_64')
    data_root = make_synthetic_voc(root, num_train=8 if study.quick else 96,
                                   num_val=4 if study.quick else 24,
                                   size=64, seed=5)
    base = [lambda cfg: base_voc(cfg, study.quick, data_root)]
    # the reward variants at the configs' refresh interval, 10; an epoch
    # is 12 iterations (96 images, batch 8)
    points = classification_points(12)
    points.append(('no background penalty, refresh 10', 'grpo',
                   grpo(10, background_index=None)))
    for point, config, edit in quick_cut(points, study.quick):
        for seed in study.seeds:
            study.train('voc', point, config_of(config, 'voc'), seed,
                        base + [edit], VOC_METRICS)


# 10 epochs of ~575 images at batch 32 (180 iterations): "refresh 200"
# never refreshes, the old model stays the pre-trained one
FINETUNE_POINTS = [('CE', 'ce', lambda cfg: None),
                   ('GRPO-RM on-policy', 'grpo', grpo(1)),
                   ('GRPO-RM refresh 10', 'grpo', grpo(10)),
                   ('GRPO-RM refresh 200', 'grpo', grpo(200))]


def backbone_only(checkpoint: str) -> str:
    """A copy of ``checkpoint`` without the head: fine-tuning starts from
    the pre-trained backbone and a fresh head."""
    path = checkpoint.replace('.pth', '_backbone.pth')
    if not osp.exists(path):
        state = torch.load(checkpoint, map_location='cpu',
                           weights_only=False)['state_dict']
        torch.save(dict(state_dict={k: v for k, v in state.items()
                                    if not k.startswith('head.')}), path)
    return path


def pretrain(study: Study, seed: int) -> dict:
    base = [lambda cfg: base_digits(cfg, study.quick),
            digits_subset(PRETRAIN_DIGITS)]
    return study.train('pretrain', 'CE digits 0-4', DIGITS_CE, seed, base,
                       ['accuracy/top1'], keep_checkpoint=True)


def run_finetune(study: Study) -> None:
    for seed in study.seeds:
        start = backbone_only(pretrain(study, seed)['checkpoint'])
        base = [lambda cfg: base_digits(cfg, study.quick),
                digits_subset(FINETUNE_DIGITS, start, epochs=10)]
        points = FINETUNE_POINTS[:3] if study.quick else FINETUNE_POINTS
        for point, config, edit in points:
            study.train('finetune', point, config_of(config, 'digits'),
                        seed, base + [edit], ['accuracy/top1'],
                        keep_checkpoint=True)


def _eval_representation():
    """``tools/eval_representation.py``'s ``main``, run in this process."""
    import importlib.util
    path = osp.join(REPO_ROOT, 'tools', 'eval_representation.py')
    spec = importlib.util.spec_from_file_location('eval_representation',
                                                  path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def run_represent(study: Study) -> None:
    """kNN / linear probe of the pooled backbone features on digits 5-9
    (train split fits, val split scores), through
    ``tools/eval_representation.py``."""
    evaluate = _eval_representation()
    subset = str(FINETUNE_DIGITS).replace(' ', '')
    for seed in study.seeds:
        models = {'pre-trained (unchanged)': pretrain(study, seed)}
        for point, _, _ in FINETUNE_POINTS:
            run = study.done('finetune', point, seed)
            if run is not None:
                models[point] = run
        for point, run in models.items():
            if study.done('represent', point, seed):
                continue
            config = osp.join(run['work_dir'], osp.basename(run['config']))
            report = evaluate([
                config, run['checkpoint'], '--seed', str(seed),
                '--cfg-options', f'train_dataloader.dataset.digits={subset}',
                f'test_dataloader.dataset.digits={subset}'
            ])
            final = {k: v for k, v in report.items() if k.endswith('top1')}
            study.runs.append(dict(part='represent', point=point, seed=seed,
                                   final=final, curve={}))
            study.save()
            print(f'[study] represent / {point} / seed {seed}: {final}',
                  flush=True)


PARTS = dict(digits=run_digits, finetune=run_finetune,
             represent=run_represent, voc=run_voc, cls=run_cls)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--parts', nargs='+', default=list(PARTS),
                        choices=list(PARTS))
    parser.add_argument('--seeds', nargs='+', type=int, default=[0, 1, 2])
    parser.add_argument('--quick', action='store_true',
                        help='1 seed, 2 epochs / 6 iterations, tiny data: '
                        'checks that every part runs (the test suite)')
    parser.add_argument('--out', default='tools/experiments/results')
    parser.add_argument('--work-dir', default='work_dirs/study')
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--report-only', action='store_true',
                        help='rewrite results.md, summary.json and '
                        'curves.png from --out/results.json, train nothing')
    return parser.parse_args(argv)


def main(argv=None) -> Study:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    seeds = args.seeds[:1] if args.quick else args.seeds
    study = Study(args.out, args.work_dir, seeds, args.quick)
    if args.report_only:
        study.save()
    for part in [] if args.report_only else args.parts:
        PARTS[part](study)
    print(format_tables(summarise(study.runs)))
    return study


if __name__ == '__main__':
    main()
