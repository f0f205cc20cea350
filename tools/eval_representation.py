"""kNN and linear-probe accuracy of a classifier's frozen representation.

Extracts the features the head sees (backbone, then neck) on the config's
train and test splits, both with the test pipeline, and reports DINOv2's
weighted kNN (k = 10 and 20, T = 0.07) and a softmax-regression probe::

    python tools/eval_representation.py CONFIG CHECKPOINT [--out FILE.json]

``CHECKPOINT`` may be ``none``: the model as the config initialises it,
i.e. the pretrained backbone of its ``init_cfg`` before any fine-tuning.
"""
import argparse
import json
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import grpo_rm_mm  # noqa: E402,F401  (shims + registration)
import torch  # noqa: E402
from grpo_rm_mm.evaluation import (evaluate_representation,  # noqa: E402
                                   extract_features)
from grpo_rm_mm.utils import (bind_class_list, check_checkpoint,  # noqa
                              check_checkpoint_file, check_checkpoint_fits,
                              check_dataset_paths, check_labelled_splits,
                              config_scope, load_config)
from mmengine.config import DictAction  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402
from mmengine.runner import Runner  # noqa: E402
from mmengine.runner.checkpoint import (  # noqa: E402
    _load_checkpoint, _load_checkpoint_to_model)
from mmengine.runner.utils import set_random_seed  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='kNN / linear-probe evaluation of frozen features')
    parser.add_argument('config', help='classification config file path')
    parser.add_argument(
        'checkpoint',
        help="checkpoint file, or 'none' for the config's initial weights "
        '(its pretrained backbone)')
    parser.add_argument('--out', help='also write the results to this JSON')
    parser.add_argument(
        '--ks', type=int, nargs='+', default=[10, 20],
        help='kNN neighbour counts')
    parser.add_argument(
        '--temperature', type=float, default=0.07, help='kNN temperature')
    parser.add_argument(
        '--no-linear', action='store_true', help='skip the linear probe')
    parser.add_argument(
        '--batch-size', type=int,
        help='extraction batch size (default: the test dataloader\'s)')
    parser.add_argument(
        '--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of random initialisation and the probe')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override settings in the config, key=value; keys must exist in '
        'the config, write +key=value to add a new one')
    return parser.parse_args(argv)


def check_options(args) -> None:
    """Refuse bad options before anything is built or extracted."""
    if not args.ks or min(args.ks) < 1:
        raise ValueError(f'--ks must be neighbour counts >= 1, got {args.ks}')
    if not args.temperature > 0:
        raise ValueError(
            f'--temperature must be > 0, got {args.temperature}')
    if args.batch_size is not None and args.batch_size < 1:
        raise ValueError(f'--batch-size must be >= 1, got {args.batch_size}')
    if args.device.startswith('cuda') and not torch.cuda.is_available():
        raise ValueError(
            f'--device {args.device}: this machine has no CUDA device '
            f'PyTorch can use (torch {torch.__version__}); pass --device cpu')


def check_config(cfg, config: str) -> None:
    """The config must be a classification one with a test split."""
    if config_scope(cfg) != 'mmpretrain':
        raise ValueError(f'{config} is a {config_scope(cfg)} config; '
                         'representation evaluation needs a classification '
                         "(default_scope='mmpretrain') config")
    for split in ('train', 'test'):
        loader = cfg.get(f'{split}_dataloader')
        if not loader or not loader.get('dataset'):
            raise KeyError(
                f'{config} has no {split}_dataloader.dataset: the tool '
                'extracts the features of the train and test splits, both '
                'with the test pipeline (e.g. test_dataloader = '
                'val_dataloader, or --cfg-options +test_dataloader=...)')
    if 'pipeline' not in cfg.test_dataloader.dataset:
        raise KeyError(f'{config}: test_dataloader.dataset has no pipeline')


def loader_cfg(cfg, split: str, batch_size=None) -> dict:
    """The split's dataloader in the test setting: test pipeline, fixed
    order, no sample dropped."""
    loader = cfg.get(f'{split}_dataloader')
    if not loader or 'dataset' not in loader:
        raise KeyError(f'the config has no {split}_dataloader.dataset')
    loader = loader.to_dict() if hasattr(loader, 'to_dict') else dict(loader)
    dataset = dict(loader['dataset'])
    if 'pipeline' not in dataset:
        raise KeyError(f'{split}_dataloader.dataset has no pipeline to '
                       'replace by the test pipeline')
    dataset['pipeline'] = cfg.test_dataloader.dataset.pipeline
    loader.update(
        dataset=dataset,
        sampler=dict(type='DefaultSampler', shuffle=False),
        drop_last=False,
        persistent_workers=False)
    loader.pop('batch_sampler', None)
    loader['batch_size'] = (batch_size or
                            cfg.test_dataloader.get('batch_size', 32))
    return loader


def build_model(cfg, checkpoint: str, device: str):
    """The classifier, with the config's top-level ``data_preprocessor``
    (normalisation, channel order) as MMEngine's runner gives it."""
    from mmpretrain.registry import MODELS
    model_cfg = cfg.model.copy()
    if cfg.get('data_preprocessor') is not None:
        model_cfg.setdefault('data_preprocessor', cfg.data_preprocessor)
    model = MODELS.build(model_cfg)
    if checkpoint.lower() == 'none':
        model.init_weights()  # loads the backbone's pretrained init_cfg
    else:
        check_checkpoint(checkpoint)
        check_checkpoint_file(checkpoint)
        state = _load_checkpoint(checkpoint, map_location='cpu')
        check_checkpoint_fits(model, state, checkpoint, complete=True)
        _load_checkpoint_to_model(model, state, strict=True,
                                  revise_keys=[(r'^module\.', '')])
    return model.to(device).eval()


def num_classes_of(model, dataset) -> int:
    classes = dataset.metainfo.get('classes')
    if classes:
        return len(classes)
    return int(model.head.num_classes)


def main(argv=None):
    args = parse_args(argv)
    check_options(args)
    cfg = load_config(args.config, 'none', args.cfg_options, None)
    check_config(cfg, args.config)
    check_dataset_paths(cfg, ('train', 'test'))
    check_labelled_splits(cfg, ('train', 'test'), 'eval_representation.py')
    bind_class_list(cfg, ('train', 'test'))
    init_default_scope('mmpretrain')
    set_random_seed(args.seed)
    model = build_model(cfg, args.checkpoint, args.device)

    loaders = {split: Runner.build_dataloader(
        loader_cfg(cfg, split, args.batch_size), seed=args.seed)
        for split in ('train', 'test')}
    num_train = len(loaders['train'].dataset)
    if max(args.ks) > num_train:
        raise ValueError(f'--ks {max(args.ks)} is more than the {num_train} '
                         'images of the train split')
    splits = {}
    for split, loader in loaders.items():
        print(f'extracting {split} features ({len(loader.dataset)} '
              'images)', flush=True)
        splits[split] = extract_features(model, loader)
        print(flush=True)
    num_classes = num_classes_of(model, loaders['test'].dataset)
    # kNN and the probe run where the model ran
    (train_x, train_y), (test_x, test_y) = [
        (x.to(args.device), y.to(args.device)) for x, y in
        (splits['train'], splits['test'])]
    results = evaluate_representation(
        train_x, train_y, test_x, test_y, num_classes, ks=args.ks,
        temperature=args.temperature, linear_probe=not args.no_linear,
        seed=args.seed)
    report = dict(
        config=args.config,
        checkpoint=args.checkpoint,
        num_train=len(train_x),
        num_test=len(test_x),
        num_classes=num_classes,
        feature_dim=train_x.shape[1],
        temperature=args.temperature,
        **results)
    for key, value in report.items():
        shown = f'{value:.2f}' if key.endswith('top1') else value
        print(f'{key}: {shown}')
    if args.out:
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w') as f:
            json.dump(report, f, indent=2)
    return report


if __name__ == '__main__':
    main()
