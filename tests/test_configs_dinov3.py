"""The DINOv3 configs: the VOC linear protocol and CIFAR-10 fine-tuning with
ViT-S/16 and ViT-B/16, each GRPO-RM and its cross-entropy twin. Each is its
DINOv2 counterpart with another backbone and patch-16 sizes; each GRPO-RM
config differs from its twin only in the loss and the old-model hook; both
families train 2 iterations on synthetic data (random weights)."""
import os.path as osp
import re

import pytest
from cls_fixtures import write_cifar10
from conftest import REPO_ROOT
from mmengine.config import Config
from mmengine.registry import DefaultScope
from test_configs import flatten

VOC = osp.join(REPO_ROOT, 'configs', 'grpo_rm')
CLS = osp.join(REPO_ROOT, 'configs', 'cls')
VOC_STEMS = {
    f'dinov3-{s}-linear_8xb32-2500_voc12-512x512': (
        s, 'dinov2-s-linear_8xb32-2500_voc12-518x518')
    for s in 'sb'
}
CLS_STEMS = {
    f'dinov3-{s}_8xb128-100e_cifar10-224': (
        s, 'dinov2-s_8xb128-100e_cifar10-224')
    for s in 'sb'
}
ARCHS = {
    's': ('small', 384, 'dinov3_vits16_pretrain_lvd1689m-08c60483.pth'),
    'b': ('base', 768, 'dinov3_vitb16_pretrain_lvd1689m-73cec8be.pth'),
}
PAIRS = [(folder, stem, algo) for folder, stems in ((VOC, VOC_STEMS),
                                                    (CLS, CLS_STEMS))
         for stem in stems for algo in ('ce', 'grpo-rm')]


@pytest.fixture(autouse=True)
def restore_default_scope():
    """Runners change the process's default scope: put it back."""
    with DefaultScope.overwrite_default_scope('mmseg'):
        yield


def load(folder, algo, stem):
    return Config.fromfile(osp.join(folder, f'{algo}_{stem}.py'))


def test_readmes_list_the_configs_and_the_license():
    for folder, stems in ((VOC, VOC_STEMS), (CLS, CLS_STEMS)):
        with open(osp.join(folder, 'README.md')) as f:
            readme = ' '.join(f.read().split())  # across line breaks
        assert 'DINOv3 License' in readme
        for stem in stems:
            for algo in ('ce', 'grpo-rm'):
                assert osp.isfile(osp.join(folder, f'{algo}_{stem}.py'))
                assert f'{algo}_{stem}.py' in readme, (folder, algo, stem)


@pytest.mark.parametrize('folder,stem,algo', PAIRS,
                         ids=lambda v: osp.basename(str(v)))
def test_dinov2_recipe_with_the_dinov3_backbone(folder, stem, algo):
    """Against the DINOv2 ViT-S/14 config of the same protocol: only the
    backbone, its weights, the head's width and the sizes (multiples of 16
    now) may differ."""
    size, dinov2_stem = (VOC_STEMS if folder == VOC else CLS_STEMS)[stem]
    arch, dims, weights = ARCHS[size]
    cfg = load(folder, algo, stem)
    ours = flatten(cfg.to_dict())
    theirs = flatten(load(folder, algo, dinov2_stem).to_dict())
    backbone = cfg.model.backbone
    assert backbone.type in ('DINOv3', 'mmseg.DINOv3')
    assert backbone.arch == arch
    assert backbone.init_cfg == dict(type='Pretrained',
                                     checkpoint=f'checkpoints/{weights}')
    assert backbone.get('freeze', False) == (folder == VOC)
    for key in ours.keys() | theirs.keys():
        if ours.get(key) == theirs.get(key) or key.startswith(
                ('model.backbone.', 'dinov2_checkpoint',
                 'dinov3_checkpoint')):
            continue
        if key.startswith(('model.decode_head.in_channels',
                           'model.head.in_channels')):
            assert ours[key] == dims
        elif re.search(r'(crop_size|size|scale|stride)\.\d$', key):
            if re.search(r'(crop_size|size)\.\d$', key):
                assert ours[key] % 16 == 0, key
        else:
            raise AssertionError(f'{key} differs: {theirs.get(key)!r} '
                                 f'(DINOv2) vs {ours.get(key)!r}')


ALLOWED = ('model.decode_head.loss_decode.', 'model.head.loss.',
           'custom_hooks.', 'grpo_rm_loss.', 'grpo_rm_aux_loss.',
           'grpo_rm_old_model.')


@pytest.mark.parametrize('folder,stem', [(f, s) for f, s, a in PAIRS
                                         if a == 'ce'],
                         ids=lambda v: osp.basename(str(v)))
def test_grpo_rm_differs_from_its_baseline_only_in_loss_and_hook(
        folder, stem):
    a = flatten(load(folder, 'ce', stem).to_dict())
    b = flatten(load(folder, 'grpo-rm', stem).to_dict())
    changed = {k for k in a.keys() | b.keys() if a.get(k) != b.get(k)}
    stray = sorted(k for k in changed if not k.startswith(ALLOWED))
    assert changed and not stray, stray
    assert b['custom_hooks.0.type'] == 'GRPOOldModelHook'
    loss = 'model.decode_head.loss_decode' if folder == VOC else \
        'model.head.loss'
    assert (a[f'{loss}.type'], b[f'{loss}.type']) == ('CrossEntropyLoss',
                                                      'GRPORMLoss')


TINY_DIMS = 32


def shrink(cfg, work_dir, data_root, size):
    """A 2-block DINOv3 of width 32 (the archs are tested in
    test_dinov3.py), random weights, batch 2, ``size`` crops, no workers."""
    cfg.work_dir = str(work_dir)
    cfg.model.backbone.update(
        arch=dict(embed_dims=TINY_DIMS, num_layers=2, num_heads=2,
                  feedforward_channels=2 * TINY_DIMS),
        out_indices=(1, ), init_cfg=None)
    cfg.default_hooks.logger.interval = 1
    for split in ('train', 'val', 'test'):
        loader = cfg[f'{split}_dataloader']
        loader.update(batch_size=2, num_workers=0, persistent_workers=False)
        loader.dataset.data_root = data_root
        for t in loader.dataset.pipeline:
            for key in ('scale', 'crop_size'):
                if key in t:
                    t[key] = size if t['type'] == 'RandomResizedCrop' \
                        else (size, size)
    return cfg


def test_voc_linear_protocol_trains_with_the_shared_frozen_backbone(
        synthetic_voc, tmp_path):
    from mmengine.runner import Runner
    stem = next(iter(VOC_STEMS))
    cfg = shrink(load(VOC, 'grpo-rm', stem), tmp_path, synthetic_voc, 64)
    cfg.model.decode_head.in_channels = [TINY_DIMS] * 2
    cfg.model.data_preprocessor.size = (64, 64)
    cfg.model.test_cfg = dict(mode='whole')
    cfg.train_cfg.update(max_iters=2, val_interval=2)
    cfg.default_hooks.checkpoint.interval = 2
    runner = Runner.from_cfg(cfg)
    runner.train()
    hook = [h for h in runner.hooks
            if type(h).__name__ == 'GRPOOldModelHook'][0]
    assert hook.shares_backbone and runner.model.backbone.is_frozen
    metrics = runner.val_loop.run()
    assert 0.0 <= metrics['mIoU'] <= 100.0


def test_cifar10_config_trains_and_evaluates(tmp_path):
    from mmengine.runner import Runner
    archives = str(tmp_path / 'archives')
    write_cifar10(archives)
    stem = next(iter(CLS_STEMS))
    cfg = shrink(load(CLS, 'grpo-rm', stem), tmp_path / 'work', archives, 32)
    cfg.model.head.in_channels = TINY_DIMS
    cfg.train_cfg.update(max_epochs=1, val_interval=1)
    for split in ('train', 'val', 'test'):
        cfg[f'{split}_dataloader'].dataset.indices = 4
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.iter == 2
    metrics = runner.val_loop.run()
    assert 0.0 <= metrics['accuracy/top1'] <= metrics['accuracy/top5'] <= 100
