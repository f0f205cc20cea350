"""Train a segmentor (MMSeg config) or classifier (MMPretrain config).

Same flags and behaviour as MMSegmentation's ``tools/train.py``; the config's
``default_scope`` decides which codebase it belongs to. Importing
``grpo_rm_mm`` applies the compatibility shims and registers the project's
components.
"""
import argparse
import importlib.util
import logging
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import grpo_rm_mm  # noqa: E402,F401  (shims + registration)
import torch  # noqa: E402
from grpo_rm_mm.utils import (build_runner, check_checkpoint,  # noqa: E402
                              check_dataset_paths, closing_process_group,
                              load_config)
from grpo_rm_mm.utils import (check_checkpoint_file,  # noqa: E402
                              prepare_work_dir)
from mmengine.config import Config, DictAction  # noqa: E402
from mmengine.logging import print_log  # noqa: E402


#: --vis name -> (MMEngine backend, package it needs, how to install it)
VIS_BACKENDS = {
    'tensorboard': ('TensorboardVisBackend', 'tensorboard',
                    'pip install -e ".[tensorboard]"'),
    'wandb': ('WandbVisBackend', 'wandb', 'pip install wandb'),
}


def add_vis_backends(cfg: Config, names) -> None:
    """``--vis``: add MMEngine visualisation backends to the config's
    visualizer (the local one stays: tools/analyze_logs.py reads it)."""
    for name in names:
        backend, package, install = VIS_BACKENDS[name]
        if importlib.util.find_spec(package) is None:
            raise ImportError(f'--vis {name} needs the {package} package, '
                              f'which is not installed: {install}')
        backends = list(cfg.visualizer.get('vis_backends') or [])
        if not any(b.get('type') == backend for b in backends):
            backends.append(dict(type=backend))
        cfg.visualizer.vis_backends = backends


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train a model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--resume',
        nargs='?',
        const='auto',
        default=None,
        help='resume from the latest checkpoint in the work dir, or from the '
        'checkpoint given')
    parser.add_argument(
        '--overwrite',
        action='store_true',
        help='start a fresh run even where the work dir holds the '
        'checkpoints of another run (they are replaced); without it such a '
        'run stops before training')
    parser.add_argument(
        '--amp',
        action='store_true',
        default=False,
        help='enable automatic-mixed-precision training')
    parser.add_argument(
        '--auto-scale-lr',
        action='store_true',
        help='scale the lr by the real batch size over the config\'s '
        'auto_scale_lr.base_batch_size (MMPretrain flag)')
    parser.add_argument(
        '--no-validate',
        action='store_true',
        help='do not evaluate during training (MMPretrain flag)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings in the config, key=value (e.g. '
        'model.decode_head.num_classes=21); a key close to an existing one '
        'is refused as a typo, write +key=value to add it')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    parser.add_argument(
        '--vis',
        nargs='+',
        choices=sorted(VIS_BACKENDS),
        default=[],
        help='also log scalars to these backends, beside the local JSON '
        'log (tensorboard: pip install -e ".[tensorboard]", then '
        'tensorboard --logdir WORK_DIR)')
    # torch.distributed.launch passes --local-rank; torchrun sets LOCAL_RANK
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def build_cfg(args) -> Config:
    cfg = load_config(args.config, args.launcher, args.cfg_options,
                      args.work_dir)

    if args.amp:
        if not torch.cuda.is_available():
            raise ValueError('--amp needs a GPU: MMEngine\'s AmpOptimWrapper '
                             'does not train on the CPU')
        optim_wrapper = cfg.optim_wrapper.type
        if optim_wrapper == 'AmpOptimWrapper':
            print_log('AMP training is already enabled in your config.',
                      logger='current', level=logging.WARNING)
        else:
            if optim_wrapper != 'OptimWrapper':
                raise ValueError(
                    '--amp needs optim_wrapper.type OptimWrapper, got '
                    f'{optim_wrapper}')
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.loss_scale = 'dynamic'

    if args.auto_scale_lr:
        if 'base_batch_size' not in cfg.get('auto_scale_lr', {}):
            raise KeyError('--auto-scale-lr needs auto_scale_lr.base_batch_'
                           'size in the config')
        cfg.auto_scale_lr.enable = True
    if args.no_validate:
        cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None

    add_vis_backends(cfg, args.vis)
    if args.resume == 'auto':
        cfg.resume = True
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume
    return cfg


def main(argv=None):
    args = parse_args(argv)
    cfg = build_cfg(args)
    splits = ('train', 'val') if cfg.get('val_cfg') else ('train', )
    check_dataset_paths(cfg, splits)
    check_checkpoint(cfg.get('load_from'))
    check_checkpoint_file(cfg.get('load_from'))
    prepare_work_dir(cfg, resume=bool(cfg.get('resume')),
                     overwrite=args.overwrite)
    with closing_process_group():
        build_runner(cfg).train()


if __name__ == '__main__':
    main()
