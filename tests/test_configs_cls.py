"""The classification configs (configs/cls): the paper's recipe, GRPO-RM
twins that differ from cross-entropy only in the loss and the old-model
hook, and every config trains 2 iterations and evaluates on fixture copies
of the original archives (a tiny ViT stands in for ViT-S/14)."""
import glob
import os
import os.path as osp
import subprocess
import sys

import pytest
from cls_fixtures import write_all
from conftest import REPO_ROOT, load_tool
from mmengine.config import Config
from mmengine.registry import DefaultScope
from test_configs import flatten

CLS = osp.join(REPO_ROOT, 'configs', 'cls')
# the DINOv3 configs: tests/test_configs_dinov3.py
CONFIGS = sorted(glob.glob(osp.join(CLS, '*_dinov2-*.py')))
#: variants of the paper's method the study found level with CE, named
#: grpo-rm-<variant>_<stem>.py; each changes one loss option
VARIANTS = {'batch': {'model.head.loss.scale_rewards': 'batch'}}
PAPER_CONFIGS = [p for p in CONFIGS
                 if osp.basename(p).split('_')[0] in ('ce', 'grpo-rm')]
DATASETS = {'cifar10': ('CIFAR10Dataset', 10),
            'cifar100': ('CIFAR100Dataset', 100),
            'stl10': ('STL10Dataset', 10),
            'tiny-imagenet': ('TinyImageNetDataset', 200)}
STEMS = [f'dinov2-s{linear}_8xb128-100e_{name}-224'
         for name in DATASETS for linear in ('', '-linear')]
TINY_DIMS = 24


@pytest.fixture(autouse=True)
def restore_default_scope():
    """Runners make 'mmpretrain' the process's default scope; later tests
    build MMSeg models by their bare names, so the scope is put back."""
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        yield


def name(path):
    return osp.basename(path)


def test_every_dataset_has_all_four_configs():
    expected = {f'{algo}_{stem}.py' for stem in STEMS
                for algo in ('ce', 'grpo-rm')}
    # the variants: full fine-tuning, every dataset
    expected |= {f'grpo-rm-{variant}_dinov2-s_8xb128-100e_{dataset}-224.py'
                 for variant in VARIANTS for dataset in DATASETS}
    assert {name(p) for p in CONFIGS} == expected


@pytest.mark.parametrize('variant', VARIANTS)
@pytest.mark.parametrize('dataset', DATASETS)
def test_variant_changes_one_loss_option(variant, dataset):
    stem = f'dinov2-s_8xb128-100e_{dataset}-224.py'
    paper = flatten(Config.fromfile(osp.join(CLS, f'grpo-rm_{stem}'))
                    .to_dict())
    cfg = flatten(Config.fromfile(osp.join(CLS, f'grpo-rm-{variant}_{stem}'))
                  .to_dict())
    diff = {k: cfg.get(k) for k in cfg.keys() | paper.keys()
            if cfg.get(k) != paper.get(k)}
    assert diff == VARIANTS[variant]


@pytest.mark.parametrize('path', CONFIGS, ids=name)
def test_config_follows_the_paper_recipe(path):
    cfg = Config.fromfile(path)
    dataset = name(path).split('_')[-1][:-len('-224.py')]
    ds_type, num_classes = DATASETS[dataset]
    assert cfg.default_scope == 'mmpretrain'
    assert cfg.model.type == 'ImageClassifier'
    backbone = cfg.model.backbone
    assert backbone.type == 'mmseg.DINOv2' and backbone.arch == 'small'
    assert backbone.init_cfg == dict(
        type='Pretrained', checkpoint='checkpoints/dinov2_vits14_pretrain.pth')
    linear = '-linear' in name(path)
    assert backbone.get('freeze', False) == linear
    assert cfg.model.neck.use_avgpool == linear
    assert cfg.model.head.in_channels == 384 * (2 if linear else 1)
    assert cfg.model.head.num_classes == num_classes
    assert cfg.data_preprocessor.num_classes == num_classes
    for split in ('train', 'val', 'test'):
        ds = cfg[f'{split}_dataloader'].dataset
        assert ds.type == ds_type
        sizes = [t.get('scale') for t in ds.pipeline
                 if 'Resize' in t['type']]
        assert sizes in ([224], [(224, 224)]), sizes
        side = sizes[0] if isinstance(sizes[0], int) else sizes[0][0]
        assert side % backbone.get('patch_size', 14) == 0
    assert cfg.val_evaluator == dict(type='Accuracy', topk=(1, 5))
    # 8 GPUs x 128 = the paper's 1024; lr 1e-3 per 256 images, to 1e-5
    assert 8 * cfg.train_dataloader.batch_size == 1024
    assert cfg.auto_scale_lr == dict(enable=True, base_batch_size=1024)
    assert cfg.optim_wrapper.optimizer.type == 'Adam'
    assert cfg.optim_wrapper.optimizer.lr == pytest.approx(1e-3 * 4)
    assert cfg.param_scheduler[-1].eta_min_ratio == 0.01


PAIRS = [(osp.join(CLS, f'ce_{stem}.py'), osp.join(CLS, f'grpo-rm_{stem}.py'))
         for stem in STEMS]
ALLOWED = ('model.head.loss.', 'custom_hooks.', 'grpo_rm_loss.',
           'grpo_rm_old_model.')


@pytest.mark.parametrize('ce, grpo', PAIRS, ids=lambda p: name(p))
def test_grpo_rm_differs_from_its_baseline_only_in_loss_and_hook(ce, grpo):
    a = flatten(Config.fromfile(ce).to_dict())
    b = flatten(Config.fromfile(grpo).to_dict())
    changed = {k for k in a.keys() | b.keys() if a.get(k) != b.get(k)}
    stray = sorted(k for k in changed if not k.startswith(ALLOWED))
    assert not stray, f'{name(grpo)} also changes {stray}'
    assert a['model.head.loss.type'] == 'CrossEntropyLoss'
    assert b['model.head.loss.type'] == 'GRPORMLoss'
    assert {k[len('model.head.loss.'):] for k in b
            if k.startswith('model.head.loss.')} == {
                'type', 'accuracy_reward', 'uniformity', 'clip_eps',
                'log_stats', 'loss_weight'}
    assert b['custom_hooks.0.type'] == 'GRPOOldModelHook'
    assert 'custom_hooks.0.type' not in a


@pytest.fixture(scope='module')
def archives(tmp_path_factory):
    """All four fixture archives under one data_root."""
    return write_all(str(tmp_path_factory.mktemp('cls_archives')))


def shrink(cfg, data_root, work_dir):
    """A 2-layer ViT/14 at 28 x 28, batch 2, 4 images a split, 2 iterations,
    random weights, the fixture archives."""
    cfg.work_dir = str(work_dir)
    backbone = cfg.model.backbone
    backbone.update(
        arch=dict(embed_dims=TINY_DIMS, num_layers=2, num_heads=2,
                  feedforward_channels=2 * TINY_DIMS),
        out_indices=(1, ), img_size=28, init_cfg=None)
    pieces = 2 if cfg.model.neck.use_avgpool else 1
    cfg.model.head.in_channels = TINY_DIMS * pieces
    cfg.train_cfg.update(max_epochs=1, val_interval=1)
    cfg.default_hooks.logger.interval = 1
    for split in ('train', 'val', 'test'):
        loader = cfg[f'{split}_dataloader']
        loader.update(batch_size=2, num_workers=0, persistent_workers=False)
        loader.dataset.update(data_root=data_root, indices=4)
        for t in loader.dataset.pipeline:
            if t['type'] == 'RandomResizedCrop':
                t['scale'] = 28
            elif t['type'] == 'Resize':
                t['scale'] = (28, 28)
    return cfg


@pytest.mark.parametrize('path', PAPER_CONFIGS, ids=name)
def test_config_trains_and_evaluates(path, archives, tmp_path):
    from mmengine.runner import Runner
    cfg = shrink(Config.fromfile(path), archives, tmp_path)
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.iter == 2
    metrics = runner.val_loop.run()
    assert 0.0 <= metrics['accuracy/top1'] <= metrics['accuracy/top5'] <= 100
    assert osp.isfile(osp.join(tmp_path, 'epoch_1.pth'))
    if '/grpo-rm_' in path:
        hook = [h for h in runner.hooks
                if type(h).__name__ == 'GRPOOldModelHook'][0]
        assert hook.shares_backbone == ('-linear' in path)


TOOL_CONFIG = 'grpo-rm_dinov2-s_8xb128-100e_cifar10-224.py'


@pytest.fixture(scope='module')
def tiny_config(archives, tmp_path_factory):
    """The CIFAR-10 GRPO-RM config, shrunk, written out for the tools."""
    folder = tmp_path_factory.mktemp('tiny_cfg')
    cfg = shrink(Config.fromfile(osp.join(CLS, TOOL_CONFIG)), archives,
                 folder)
    path = str(folder / TOOL_CONFIG)
    cfg.dump(path)
    return path


def test_tools_train_test_and_eval_representation(tiny_config, tmp_path):
    """The tools' own main() on the config (the subprocess route is
    tests/test_tools_cls.py's)."""
    work = tmp_path / 'work'
    load_tool('train').main([tiny_config, '--work-dir', str(work)])
    ckpt = str(work / 'epoch_1.pth')
    metrics = load_tool('test').main(
        [tiny_config, ckpt, '--work-dir', str(tmp_path / 'test')])
    assert 0.0 <= metrics['accuracy/top1'] <= metrics['accuracy/top5']
    report = load_tool('eval_representation').main(
        [tiny_config, ckpt, '--out', str(tmp_path / 'repr.json'), '--ks',
         '1', '3'])
    assert report['num_train'] == report['num_test'] == 4
    assert report['feature_dim'] == TINY_DIMS
    assert 'knn_k3_top1' in (tmp_path / 'repr.json').read_text()


def test_dist_train_two_processes(tiny_config, tmp_path):
    proc = subprocess.run(
        ['bash', 'tools/dist_train.sh', tiny_config, '2', '--work-dir',
         str(tmp_path)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=600,
        env=dict(os.environ, PYTHON=sys.executable, OMP_NUM_THREADS='1',
                 PORT=str(29700 + os.getpid() % 1000)))
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert osp.isfile(osp.join(tmp_path, 'epoch_1.pth'))


def test_missing_dinov2_checkpoint_is_named(archives):
    """`none` evaluates the pretrained backbone: its file must exist."""
    with pytest.raises(FileNotFoundError,
                       match="checkpoint='/no/dinov2_vits14.pth' does not"):
        load_tool('eval_representation').main([
            osp.join(CLS, TOOL_CONFIG), 'none', '--cfg-options',
            f'train_dataloader.dataset.data_root={archives}',
            f'test_dataloader.dataset.data_root={archives}',
            'model.backbone.init_cfg.checkpoint=/no/dinov2_vits14.pth'
        ])
