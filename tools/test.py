"""Test (and evaluate) a checkpoint: mIoU for MMSeg, accuracy for MMPretrain.

Same flags and behaviour as MMSegmentation's ``tools/test.py``; the config's
``default_scope`` decides which codebase it belongs to.
"""
import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import grpo_rm_mm  # noqa: E402,F401  (shims + registration)
from grpo_rm_mm.utils import (build_runner, check_checkpoint,  # noqa: E402
                              check_dataset_paths, closing_process_group,
                              config_scope, load_config)
from grpo_rm_mm.utils import (check_checkpoint_file,  # noqa: E402
                              check_labelled_splits)
from mmengine.config import Config, DictAction  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test (and eval) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--work-dir',
        help='if specified, the evaluation metric results will be dumped '
        'into the directory as json')
    parser.add_argument(
        '--out',
        help='segmentation: directory to save the predicted masks to; '
        'classification: pickle file to dump the predictions to')
    parser.add_argument(
        '--show', action='store_true', help='show prediction results')
    parser.add_argument(
        '--show-dir',
        help='directory where painted images will be saved. If specified, '
        'it will be automatically saved to the work_dir/timestamp/show_dir')
    parser.add_argument(
        '--wait-time', type=float, default=2, help='the interval of show (s)')
    parser.add_argument(
        '--interval',
        type=int,
        default=1,
        help='with --show / --show-dir, draw every N-th image (segmentation: '
        'every N-th batch); default: every image (MMPretrain flag)')
    parser.add_argument(
        '--out-item',
        choices=['metrics', 'pred'],
        help='what --out receives (MMPretrain flag): pred, the predictions '
        '(default), or metrics, the metrics as a file whose suffix picks '
        'the format (.json, .yaml, .pkl)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings in the config, key=value; a key close to an '
        'existing one is refused as a typo, write +key=value to add it')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    parser.add_argument(
        '--tta', action='store_true', help='test time augmentation')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def enable_visualization(cfg, args, scope: str) -> None:
    hooks = cfg.default_hooks
    if 'visualization' not in hooks:
        raise KeyError('--show/--show-dir need a visualization hook in '
                       "default_hooks, e.g. visualization=dict("
                       "type='SegVisualizationHook')")
    vis = hooks['visualization']
    if args.interval < 1:
        raise ValueError(f'--interval must be >= 1, got {args.interval}')
    vis['interval'] = args.interval
    if scope == 'mmseg':
        vis['draw'] = True
        if args.show_dir:
            cfg.visualizer['save_dir'] = args.show_dir
    else:
        vis['enable'] = True
        vis['out_dir'] = args.show_dir
    if args.show:
        vis['show'] = True
        vis['wait_time'] = args.wait_time


def build_cfg(args) -> Config:
    cfg = load_config(args.config, args.launcher, args.cfg_options,
                      args.work_dir)
    check_checkpoint(args.checkpoint)
    scope = config_scope(cfg)
    cfg.load_from = args.checkpoint

    if args.show or args.show_dir:
        enable_visualization(cfg, args, scope)
    if args.tta:
        if 'tta_model' not in cfg or 'tta_pipeline' not in cfg:
            raise KeyError('--tta needs tta_model and tta_pipeline in the '
                           'config')
        cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
        cfg.tta_model.module = cfg.model
        cfg.model = cfg.tta_model
    if args.out is not None and args.out_item != 'metrics':
        if scope == 'mmseg':
            cfg.test_evaluator['output_dir'] = args.out
            cfg.test_evaluator['keep_results'] = True
        else:
            evaluators = cfg.test_evaluator
            if isinstance(evaluators, dict):
                evaluators = [evaluators]
            cfg.test_evaluator = list(evaluators) + [
                dict(type='DumpResults', out_file_path=args.out)
            ]
    return cfg


def main(argv=None):
    args = parse_args(argv)
    cfg = build_cfg(args)
    check_dataset_paths(cfg, ('test', ))
    check_checkpoint_file(args.checkpoint)
    check_labelled_splits(cfg, ('test', ), 'tools/test.py')
    with closing_process_group():
        metrics = build_runner(cfg, complete_checkpoint=True).test()
        if args.out is not None and args.out_item == 'metrics':
            dump_metrics(metrics, args.out)
    return metrics


def dump_metrics(metrics: dict, path: str) -> None:
    """``--out-item metrics``: the metrics into ``path`` (rank 0 only)."""
    import mmengine
    from mmengine.dist import is_main_process
    if is_main_process():
        os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
        mmengine.dump(metrics, path)


if __name__ == '__main__':
    main()
