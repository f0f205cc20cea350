"""Which part of GRPO-RM helps? The decomposition study, rerunnable.

On-policy GRPO-RM is cross-entropy towards a target t with every group's
gradient rescaled to the same norm (``shared/docs/method.md``, "What
GRPO-RM is, in cross-entropy terms"); the loss's options switch its parts
one at a time. Every MMEngine run is one of the project's configs
(``configs/digits``, ``configs/demo``) with a few keys changed (seed,
schedule, model size, loss options, old-model refresh interval), trained
in this process through MMEngine's ``Runner``, one after the other on one
thread; its validation curve is read back from its own scalar log (the
file ``tools/analyze_logs.py`` reads).

Parts (``--parts``):

- ``digits``: scikit-learn's digits, 10 classes, from scratch. CE; each
  normalisation (``scale_rewards`` 'group' = the paper, 'batch', 'none')
  on-policy and with the old model refreshed every 10 and 45 (one epoch)
  iterations; clip-higher and dual clip with 'group' at both lags; the
  target (c = 0.5, 2 with 'none' and 'group'); sampled groups (G = 2, 4,
  8, 10); the reward decomposition (accuracy only, uniformity only,
  uniformity weight 0.5, 2). Accuracy and expected calibration error
  (ECE), per epoch.
- ``voc``: the synthetic Pascal VOC layout, 21 classes (6 present), from
  scratch: CE; each normalisation on-policy and refreshed every 10
  iterations; clip-higher and dual clip there; the target (no background
  penalty, with 'none': exactly CE's gradient / C). mIoU per 40 iterations.
- ``finetune``: the paper's setting at small scale: pre-train with CE on
  digits 0-4, fine-tune on digits 5-9 with a freshly initialised head (CE
  and each normalisation on-policy / refreshed every 10), and with the
  pre-trained head re-used (CE, GRPO-RM on-policy and refreshed every 10:
  the lock-out, ``grpo_true_clipped`` in the first steps and whether
  ``GRPOOldModelHook`` warned). Accuracy and ECE per epoch.
- ``represent``: kNN (k = 20) and linear-probe accuracy of the pooled
  backbone features on digits 5-9 and, for retention, on digits 0-4, of
  the pre-trained model unchanged and of every fine-tuned one
  (``tools/eval_representation.py``).
- ``classes``: the class-set size, C = 2 to 1000, on Gaussian clusters
  with a linear head in a plain PyTorch loop (``class_size.py``): CE and
  GRPO-RM ('group' on-policy and refreshed every 10 steps, 'batch',
  'none'), with the advantage statistics checked finite at every step.

Tables (``study_report.py``): mean ± std over seeds, the paired
difference of every GRPO-RM point to CE over the same seeds with its 95 %
Student-t interval, and the epochs / iterations to 95 % of CE's final
value. ``--out`` gets ``results.json`` (every run: final metrics, curve,
training diagnostics, CPU and wall seconds; the CPU and wall time of each
session), ``results.md`` and ``summary.json`` (rewritten after each run,
so an interrupted study keeps what it measured and resumes from it) and
``curves.png`` (redrawn after each part).

    python tools/experiments/study.py                      # the full study
    python tools/experiments/study.py --quick --out /tmp/q  # 1 seed, tiny
"""
import argparse
import glob
import json
import os
import os.path as osp
import sys
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, REPO_ROOT)
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

import grpo_rm_mm  # noqa: E402,F401  (shims + registration)
import numpy as np  # noqa: E402
import torch  # noqa: E402
from class_size import train_head  # noqa: E402
from grpo_rm_mm.datasets import make_synthetic_voc  # noqa: E402
from grpo_rm_mm.engine.hooks.old_model_hook import LOCKOUT_WINDOW  # noqa
from grpo_rm_mm.models.losses.grpo_rm_base import STATS_KEYS  # noqa: E402
from grpo_rm_mm.utils import (build_runner, find_scalar_log,  # noqa: E402
                              read_scalar_log)
from mmengine.config import Config  # noqa: E402
from study_report import format_tables, plot_curves, summarise  # noqa

DIGITS_CE = 'configs/digits/ce_dinov2-tiny-p2_1xb32-20e_digits-8x8.py'
DIGITS_GRPO = 'configs/digits/grpo-rm_dinov2-tiny-p2_1xb32-20e_digits-8x8.py'
VOC_CE = 'configs/demo/ce_dinov2-tiny_1xb8-300_synthetic-voc-112x112.py'
VOC_GRPO = 'configs/demo/grpo-rm_dinov2-tiny_1xb8-300_synthetic-voc-112x112.py'
CONFIGS = {('ce', 'digits'): DIGITS_CE, ('grpo', 'digits'): DIGITS_GRPO,
           ('ce', 'voc'): VOC_CE, ('grpo', 'voc'): VOC_GRPO}
PRETRAIN_DIGITS = (0, 1, 2, 3, 4)
FINETUNE_DIGITS = (5, 6, 7, 8, 9)
NORMS = ('group', 'batch', 'none')

#: run sizes: full study / --quick (the test suite)
SIZES = {
    False: dict(digits_epochs=8, digits_lr=3e-3, digits_images=None,
                digits_lags=(10, 45), voc_iters=200, voc_val=40,
                voc_images=(96, 24), voc_lag=10, pretrain_epochs=20,
                finetune_epochs=10, finetune_lag=10,
                classes=(2, 10, 100, 1000), class_steps=300,
                class_val=30),
    True: dict(digits_epochs=2, digits_lr=3e-3, digits_images=64,
               digits_lags=(2, 3), voc_iters=6, voc_val=3,
               voc_images=(8, 4), voc_lag=2, pretrain_epochs=2,
               finetune_epochs=2, finetune_lag=2, classes=(2, 1000),
               class_steps=6, class_val=3),
}
DIGITS_METRICS = ['accuracy/top1', 'calibration/ECE',
                  'calibration/confidence']
VOC_METRICS = ['mIoU', 'IoU.background', 'mIoU.fg']
#: the lock-out warning of GRPOOldModelHook, as it appears in a run's log
LOCKOUT_MESSAGE = 'have their true class locked out'

#: (name, family, 'ce' | 'grpo', config edit)
Point = Tuple[str, str, str, Callable]


# ------------------------------------------------------------ config edits
def _hook(cfg: Config, interval: int) -> None:
    cfg.custom_hooks = [dict(type='GRPOOldModelHook', interval=interval)]


def _loss(cfg: Config) -> dict:
    head = cfg.model.get('decode_head') or cfg.model.head
    return head.get('loss_decode') or head.loss


def grpo(interval: int = 1, **loss) -> Callable:
    """An edit: old-model refresh interval (1: on-policy) and loss
    options."""

    def edit(cfg: Config) -> None:
        _hook(cfg, interval)
        _loss(cfg).update(loss)

    return edit


def _nothing(cfg: Config) -> None:
    pass


def lag_name(interval: int) -> str:
    return 'on-policy' if interval == 1 else f'refresh {interval}'


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


def _epochs(cfg: Config, epochs: int, lr: Optional[float] = None) -> None:
    cfg.train_cfg = dict(by_epoch=True, max_epochs=epochs, val_interval=1)
    cfg.param_scheduler = dict(type='CosineAnnealingLR', by_epoch=True,
                               T_max=epochs, eta_min_ratio=0.01)
    if lr is not None:
        cfg.optim_wrapper.optimizer.lr = lr


def _tiny_vit(backbone: dict, embed_dims: int, layers: int) -> None:
    backbone.arch = dict(embed_dims=embed_dims, num_layers=layers,
                         num_heads=2, feedforward_channels=4 * embed_dims)
    backbone.out_indices = (layers - 1, )


def _with_calibration(cfg: Config) -> None:
    cfg.val_evaluator = [dict(type='Accuracy', topk=(1, )),
                         dict(type='ExpectedCalibrationError')]
    cfg.test_evaluator = cfg.val_evaluator


def base_digits(sizes: dict, epochs: int, lr: Optional[float] = None,
                digits: Optional[Sequence[int]] = None,
                load_from: Optional[str] = None) -> Callable:
    """The digits config at the study's size, optionally a subset of the
    digits (relabelled) starting from a checkpoint."""

    def edit(cfg: Config) -> None:
        _epochs(cfg, epochs, lr)
        _with_calibration(cfg)
        for loader in ('train_dataloader', 'val_dataloader',
                       'test_dataloader'):
            if sizes['digits_images']:
                cfg[loader].dataset.indices = sizes['digits_images']
            if digits is not None:
                cfg[loader].dataset.digits = tuple(digits)
        if digits is not None:
            cfg.model.head.num_classes = len(digits)
            cfg.data_preprocessor.num_classes = len(digits)
        cfg.load_from = load_from

    return edit


def base_voc(sizes: dict, data_root: str) -> Callable:
    """56 x 56 crops of 64-pixel images, 7-pixel patches (8 x 8 tokens)."""

    def edit(cfg: Config) -> None:
        for loader in ('train_dataloader', 'val_dataloader',
                       'test_dataloader'):
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
        iters = sizes['voc_iters']
        warmup = max(1, iters // 15)
        cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=iters,
                             val_interval=sizes['voc_val'])
        cfg.param_scheduler = [
            dict(type='LinearLR', start_factor=0.1, by_epoch=False,
                 begin=0, end=warmup),
            dict(type='PolyLR', eta_min=1e-5, power=1.0, begin=warmup,
                 end=iters, by_epoch=False),
        ]
        cfg.val_evaluator = dict(type='ClassIoUMetric', iou_metrics=['mIoU'])
        cfg.test_evaluator = cfg.val_evaluator
        cfg.default_hooks.visualization = dict(type='SegVisualizationHook')

    return edit


def _log_every_step(cfg: Config) -> None:
    """Log each iteration's own values (the lock-out shows in steps 2-3)."""
    cfg.default_hooks.logger.interval = 1
    cfg.log_processor = dict(by_epoch=True, window_size=1)


# ------------------------------------------------------------------ runs
class Study:
    """Runs points x seeds, keeps every result, rewrites the report."""

    def __init__(self, out: str, work_dir: str, seeds: List[int],
                 quick: bool):
        self.out, self.work_dir = out, work_dir
        self.seeds, self.quick = seeds, quick
        self.sizes = SIZES[quick]
        self.runs: List[dict] = []
        self.sessions: List[dict] = []
        self.families: Dict[str, Dict[str, str]] = {}
        #: count this process as a session of the study (not --report-only)
        self.in_session = True
        self._cpu, self._wall = time.process_time(), time.time()
        os.makedirs(out, exist_ok=True)
        results = osp.join(out, 'results.json')
        if osp.exists(results) and not quick:  # resume an interrupted study
            with open(results) as f:
                saved = json.load(f)
            self.runs = saved['runs']
            self.sessions = saved.get('sessions', [])
            self.families = saved.get('families', {})

    def done(self, part: str, point: str, seed: int) -> Optional[dict]:
        for run in self.runs:
            if (run['part'], run['point'], run['seed']) == \
                    (part, point, seed):
                return run
        return None

    def record(self, run: dict, family: Optional[str] = None) -> dict:
        """Keep a finished run and rewrite the report."""
        self.runs.append(run)
        if family is not None:
            self.families.setdefault(run['part'], {})[run['point']] = family
        self.save()
        shown = {k: round(v, 2) for k, v in run['final'].items()}
        print(f'[study] {run["part"]} / {run["point"]} / seed '
              f'{run["seed"]}: {shown} ({run["cpu_seconds"]:.0f} CPU-s, '
              f'{run["seconds"]:.0f} s)', flush=True)
        return run

    def train(self, part: str, point: Point, seed: int,
              base: List[Callable], metrics: List[str],
              keep_checkpoint: bool = False, step_log: bool = False,
              config: Optional[str] = None) -> dict:
        """Train one config (``base`` edits, then the point's) and record
        its validation curve and training diagnostics."""
        name, family, kind, edit = point
        previous = self.done(part, name, seed)
        if previous is not None:
            return previous
        config = config or CONFIGS[(kind, 'voc' if part == 'voc'
                                    else 'digits')]
        cfg = Config.fromfile(osp.join(REPO_ROOT, config))
        for step in base + [edit]:
            step(cfg)
        _quiet(cfg)
        if step_log:
            _log_every_step(cfg)
        _no_checkpoints(cfg, keep_checkpoint)
        slug = ''.join(c if c.isalnum() or c in '.=-' else '-'
                       for c in f'{part}_{name}_seed{seed}')
        cfg.work_dir = osp.join(self.work_dir, slug)
        # unique logger and visualizer instances (the MMSeg runtime names
        # its visualizer, and a named instance would be reused)
        cfg.experiment_name = slug
        cfg.visualizer.name = slug
        cfg.randomness = dict(seed=seed, deterministic=False)
        cpu, wall = time.process_time(), time.time()
        runner = build_runner(cfg)
        runner.train()
        log = read_scalar_log(find_scalar_log(cfg.work_dir))
        curve = {m: [[r['step'], r[m]] for r in log['val'] if m in r]
                 for m in metrics}
        run = dict(part=part, point=name, seed=seed, config=config,
                   x_unit='epoch' if log['by_epoch'] else 'iter',
                   curve=curve,
                   final={m: c[-1][1] for m, c in curve.items() if c},
                   train=train_diagnostics(log['train']),
                   cpu_seconds=round(time.process_time() - cpu, 2),
                   seconds=round(time.time() - wall, 1),
                   work_dir=cfg.work_dir)
        if kind == 'grpo' and step_log:
            # the steps the hook watches for a lock-out
            run['lockout_warning'] = lockout_warning(cfg.work_dir)
            run['train_curve'] = {'grpo_true_clipped': [
                [r['iter'], r['grpo_true_clipped']] for r in log['train']
                if 'grpo_true_clipped' in r and r['iter'] <= LOCKOUT_WINDOW]}
        if keep_checkpoint:
            run['checkpoint'] = osp.join(
                cfg.work_dir, f'epoch_{cfg.train_cfg.max_epochs}.pth')
        return self.record(run, family)

    def save(self, figure: bool = False) -> None:
        self.runs.sort(key=run_order(self.sizes))
        sessions = self.sessions + ([self.session()] if self.in_session
                                    else [])
        costs = part_costs(self.runs)
        with open(osp.join(self.out, 'results.json'), 'w') as f:
            json.dump(dict(seeds=self.seeds, quick=self.quick,
                           torch_threads=torch.get_num_threads(),
                           sizes=self.sizes, sessions=sessions,
                           costs=costs, families=self.families,
                           runs=self.runs), f, indent=1)
        summary = summarise(self.runs)
        with open(osp.join(self.out, 'results.md'), 'w') as f:
            f.write(cost_line(sessions, costs) + '\n\n' +
                    format_tables(summary, costs))
        with open(osp.join(self.out, 'summary.json'), 'w') as f:
            json.dump(summary, f, indent=1)
        if figure:
            plot_curves(self.runs, self.families,
                        osp.join(self.out, 'curves.png'))

    def session(self) -> dict:
        """This process's CPU and wall time so far."""
        return dict(cpu_seconds=round(time.process_time() - self._cpu, 1),
                    wall_seconds=round(time.time() - self._wall, 1),
                    started=time.strftime('%Y-%m-%d %H:%M:%S',
                                          time.localtime(self._wall)))


def train_diagnostics(records: List[dict]) -> Dict[str, float]:
    """GRPO-RM's logged diagnostics over training (every head's key, e.g.
    ``decode.grpo_clip_frac``): the mean of each, the largest mean ratio,
    and the lock-out fraction of steps 2 and 3 (one and two steps after
    the first refresh; with ``step_log`` each record is one step)."""
    out: Dict[str, float] = {}
    for key in STATS_KEYS:
        values = [v for r in records for k, v in r.items()
                  if k.rpartition('.')[2] == key]
        if values:
            out[key] = float(np.mean(values))
    ratios = [v for r in records for k, v in r.items()
              if k.rpartition('.')[2] == 'grpo_ratio_mean']
    if ratios:
        out['grpo_ratio_mean_max'] = float(max(ratios))
    start = [v for r in records if r.get('iter') in (2, 3)
             for k, v in r.items()
             if k.rpartition('.')[2] == 'grpo_true_clipped']
    if start:
        out['grpo_true_clipped_start'] = float(max(start))
    return out


def lockout_warning(work_dir: str) -> str:
    """The hook's lock-out warning in the run's text log, or ''."""
    for path in sorted(glob.glob(osp.join(work_dir, '*', '*.log'))):
        with open(path) as f:
            for line in f:
                if LOCKOUT_MESSAGE in line:
                    return line.strip()
    return ''


def part_costs(runs: List[dict]) -> Dict[str, dict]:
    costs: Dict[str, dict] = {}
    for run in runs:
        cost = costs.setdefault(run['part'], dict(cpu=0.0, wall=0.0,
                                                  runs=0))
        cost['cpu'] += run.get('cpu_seconds', 0.0)
        cost['wall'] += run.get('seconds', 0.0)
        cost['runs'] += 1
    return costs


def cost_line(sessions: List[dict], costs: Dict[str, dict]) -> str:
    """What the runs kept cost (the full study), and what the sessions
    cost (reruns and set-up included)."""
    runs_cpu = sum(c['cpu'] for c in costs.values())
    runs_wall = sum(c['wall'] for c in costs.values())
    cpu = sum(s['cpu_seconds'] for s in sessions)
    wall = sum(s['wall_seconds'] for s in sessions)
    return (f'Cost: {runs_cpu / 60:.1f} CPU-minutes ({runs_wall / 60:.1f} '
            'minutes of wall time) for the runs below, one thread; '
            f'{cpu / 60:.1f} CPU-minutes ({wall / 60:.1f} wall) in '
            f'{len(sessions)} session(s) of the study process, reruns and '
            'set-up included (`time.process_time` / `time.time`).')


# ---------------------------------------------------------------- points
def quick_cut(points: List[Point], quick: bool) -> List[Point]:
    """--quick: the CE points and the last point of every family."""
    if not quick:
        return points
    last = {point[1]: point for point in points}
    return [p for p in points if p[2] == 'ce' or last[p[1]] is p]


def normalisation_points(lags: Sequence[int], prefix: str = '',
                         family: str = 'normalisation x lag'
                         ) -> List[Point]:
    return [(f'{prefix}{norm}, {lag_name(lag)}', family, 'grpo',
             grpo(lag, scale_rewards=norm))
            for lag in (1, ) + tuple(lags) for norm in NORMS]


def clip_points(lag: int) -> List[Point]:
    return [(f'group, {lag_name(lag)}, clip-higher 0.28', 'clip', 'grpo',
             grpo(lag, clip_eps_high=0.28)),
            (f'group, {lag_name(lag)}, dual clip 3', 'clip', 'grpo',
             grpo(lag, dual_clip=3.0))]


def digits_points(num_classes: int = 10) -> List[Point]:
    on = 'group, on-policy'
    return (
        [(f'{norm}, on-policy, c = {c:g}', 'target', 'grpo',
          grpo(1, scale_rewards=norm, accuracy_reward=c))
         for norm in ('none', 'group') for c in (0.5, 2.0)] +
        [(f'{on}, G = {g} sampled', 'sampled groups', 'grpo',
          grpo(1, group_size=g)) for g in (2, 4, 8, num_classes)] +
        [(f'{on}, accuracy only (λ = 0)', 'rewards', 'grpo',
          grpo(1, uniformity_weight=0.0)),
         (f'{on}, uniformity only (c = 0)', 'rewards', 'grpo',
          grpo(1, accuracy_reward=0.0)),
         (f'{on}, λ = 0.5', 'rewards', 'grpo', grpo(1, uniformity_weight=.5)),
         (f'{on}, λ = 2', 'rewards', 'grpo', grpo(1, uniformity_weight=2.0))])


CE: Point = ('CE', '', 'ce', _nothing)


def run_points(study: Study, part: str, points: List[Point],
               base: List[Callable], metrics: List[str]) -> None:
    for point in quick_cut(points, study.quick):
        for seed in study.seeds:
            study.train(part, point, seed, base, metrics)


# ---------------------------------------------------------------- parts
def digits_all(lags: Sequence[int]) -> List[Point]:
    """Every digits point, in the tables' order."""
    return [CE] + normalisation_points(lags) + [
        p for lag in lags for p in clip_points(lag)] + digits_points()


def run_digits(study: Study) -> None:
    sizes = study.sizes
    base = [base_digits(sizes, sizes['digits_epochs'], sizes['digits_lr'])]
    run_points(study, 'digits', digits_all(sizes['digits_lags']), base,
               DIGITS_METRICS)


def voc_all(lag: int) -> List[Point]:
    """Every VOC point, in the tables' order."""
    return [CE] + normalisation_points((lag, )) + clip_points(lag) + [
        ('none, on-policy, no background penalty', 'target', 'grpo',
         grpo(1, scale_rewards='none', background_index=None)),
        ('group, on-policy, no background penalty', 'target', 'grpo',
         grpo(1, background_index=None))]


def run_voc(study: Study) -> None:
    sizes = study.sizes
    root = osp.join(study.work_dir, 'data', 'synthetic_voc_64')
    train, val = sizes['voc_images']
    data_root = make_synthetic_voc(root, num_train=train, num_val=val,
                                   size=64, seed=5)
    points = voc_all(sizes['voc_lag'])
    run_points(study, 'voc', points, [base_voc(sizes, data_root)],
               VOC_METRICS)


def finetune_points(lag: int) -> List[Point]:
    fresh = [('fresh head: CE', 'fresh head', 'ce', _nothing)]
    fresh += normalisation_points((lag, ), 'fresh head: ', 'fresh head')
    reused = [('reused head: CE', 'reused head', 'ce', _nothing),
              ('reused head: group, on-policy', 'reused head', 'grpo',
               grpo(1)),
              (f'reused head: group, {lag_name(lag)}', 'reused head',
               'grpo', grpo(lag))]
    return fresh + reused


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


PRETRAINED = 'pre-trained (unchanged)'


def pretrain(study: Study, seed: int) -> dict:
    base = [base_digits(study.sizes, study.sizes['pretrain_epochs'],
                        digits=PRETRAIN_DIGITS)]
    return study.train('pretrain', ('CE digits 0-4', '', 'ce', _nothing),
                       seed, base, DIGITS_METRICS, keep_checkpoint=True)


def run_finetune(study: Study) -> None:
    points = quick_cut(finetune_points(study.sizes['finetune_lag']),
                       study.quick)
    for seed in study.seeds:
        checkpoint = pretrain(study, seed)['checkpoint']
        for point in points:
            start = checkpoint if point[0].startswith('reused') else \
                backbone_only(checkpoint)
            base = [base_digits(study.sizes, study.sizes['finetune_epochs'],
                                digits=FINETUNE_DIGITS, load_from=start)]
            study.train('finetune', point, seed, base, DIGITS_METRICS,
                        keep_checkpoint=True, step_log=True)


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
    """kNN / linear probe of the pooled backbone features (train split
    fits, val split scores) on the fine-tuning digits and, retained, on
    the pre-training digits, through ``tools/eval_representation.py``."""
    evaluate = _eval_representation()
    tasks = {'': FINETUNE_DIGITS, 'retained_': PRETRAIN_DIGITS}
    for seed in study.seeds:
        models = {PRETRAINED: pretrain(study, seed)}
        for point in finetune_points(study.sizes['finetune_lag']):
            run = study.done('finetune', point[0], seed)
            # --quick: the CE models take the same code path, skip them
            if run is not None and not (study.quick and point[2] == 'ce'):
                models[point[0]] = run
        for point, run in models.items():
            if study.done('represent', point, seed):
                continue
            cpu, wall = time.process_time(), time.time()
            config = osp.join(run['work_dir'], osp.basename(run['config']))
            final = {}
            for prefix, digits in tasks.items():
                subset = str(digits).replace(' ', '')
                report = evaluate([
                    config, run['checkpoint'], '--seed', str(seed),
                    '--ks', '20', '--cfg-options',
                    f'train_dataloader.dataset.digits={subset}',
                    f'test_dataloader.dataset.digits={subset}'])
                final.update({prefix + k: v for k, v in report.items()
                              if k.endswith('top1')})
            study.record(dict(
                part='represent', point=point, seed=seed, final=final,
                curve={}, cpu_seconds=round(time.process_time() - cpu, 2),
                seconds=round(time.time() - wall, 1)))


CLASS_METHODS = [('CE', dict(type='CE'), None),
                 ('group, on-policy', dict(type='GRPO'), None),
                 ('group, refresh 10', dict(type='GRPO'), 10),
                 ('batch, on-policy', dict(type='GRPO',
                                           scale_rewards='batch'), None),
                 ('none, on-policy', dict(type='GRPO', scale_rewards='none'),
                  None)]


def run_classes(study: Study) -> None:
    sizes = study.sizes
    methods = CLASS_METHODS[:2] if study.quick else CLASS_METHODS
    for num_classes in sizes['classes']:
        for method, loss, refresh in methods:
            point = f'C = {num_classes}: {method}'
            for seed in study.seeds:
                if study.done('classes', point, seed):
                    continue
                cpu, wall = time.process_time(), time.time()
                run = train_head(num_classes, seed, sizes['class_steps'],
                                 sizes['class_val'], loss, refresh)
                run.update(part='classes', point=point, seed=seed,
                           classes=num_classes,
                           cpu_seconds=round(time.process_time() - cpu, 2),
                           seconds=round(time.time() - wall, 1))
                study.record(run, 'class-set size')


def run_order(sizes: dict) -> Callable:
    """Sort key of a run: part, then point as the study defines them (the
    tables' order, whatever order the runs were made in), then seed."""
    finetune = [p[0] for p in finetune_points(sizes['finetune_lag'])]
    points = {
        'digits': [p[0] for p in digits_all(sizes['digits_lags'])],
        'voc': [p[0] for p in voc_all(sizes['voc_lag'])],
        'pretrain': [], 'finetune': finetune,
        'represent': [PRETRAINED] + finetune,
        'classes': [f'C = {c}: {m[0]}' for c in sizes['classes']
                    for m in CLASS_METHODS]}
    parts = list(points)

    def key(run: dict) -> tuple:
        names = points.get(run['part'], [])
        return (parts.index(run['part']) if run['part'] in parts else
                len(parts), names.index(run['point']) if run['point'] in
                names else len(names), run['seed'])

    return key


PARTS = dict(digits=run_digits, voc=run_voc, finetune=run_finetune,
             represent=run_represent, classes=run_classes)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--parts', nargs='+', default=list(PARTS),
                        choices=list(PARTS))
    parser.add_argument('--seeds', nargs='+', type=int,
                        default=[0, 1, 2, 3, 4])
    parser.add_argument('--quick', action='store_true',
                        help='1 seed, 2 epochs / 6 iterations, tiny data, '
                        'CE and the last point of every family, no kNN / '
                        'probe of the CE models: '
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
    study.in_session = not args.report_only
    for part in [] if args.report_only else args.parts:
        PARTS[part](study)
        study.save(figure=not args.quick)  # --quick: drawn once, below
    study.save(figure=True)
    print(format_tables(summarise(study.runs), part_costs(study.runs)))
    return study


if __name__ == '__main__':
    main()
