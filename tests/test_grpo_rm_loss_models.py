"""GRPO-RM losses built from configs inside MMSeg and MMPretrain models."""
import grpo_rm_mm  # noqa: F401,I001  (compat shims before the stack)

import pytest
import torch
from mmengine.optim import OptimWrapper
from mmengine.registry import DefaultScope
from mmengine.structures import PixelData

from grpo_rm_mm.models.losses import GRPORMClsLoss, GRPORMLoss, grpo_rm_loss

NUM_CLASSES = 5


def build_segmentor(loss_decode=None, dropout_ratio=0.1):
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    norm = dict(type='BN', requires_grad=True)
    head = dict(type='FCNHead', in_channels=64, in_index=3, channels=16,
                num_convs=1, concat_input=False, num_classes=NUM_CLASSES,
                norm_cfg=norm, align_corners=False,
                dropout_ratio=dropout_ratio,
                loss_decode=loss_decode or dict(type='GRPORMLoss',
                                                background_index=0))
    aux = dict(head, in_channels=32, in_index=2, loss_decode=[
        dict(type='GRPORMLoss', loss_weight=0.4),
        dict(type='CrossEntropyLoss', loss_weight=0.4)])
    cfg = dict(
        type='EncoderDecoder',
        data_preprocessor=dict(type='SegDataPreProcessor',
                               mean=[123.675, 116.28, 103.53],
                               std=[58.395, 57.12, 57.375], bgr_to_rgb=True,
                               pad_val=0, seg_pad_val=255, size=(64, 64)),
        backbone=dict(type='ResNetV1c', depth=18, base_channels=8,
                      stem_channels=8, num_stages=4, out_indices=(0, 1, 2, 3),
                      norm_cfg=norm),
        decode_head=head,
        auxiliary_head=aux,
        train_cfg=dict(),
        test_cfg=dict(mode='whole'))
    torch.manual_seed(0)
    # nested components (data preprocessor) are looked up in the scope
    with DefaultScope.overwrite_default_scope('mmseg'):
        model = MODELS.build(cfg)
    model.init_weights()
    return model.train()


def seg_batch(n=2, size=64, seed=0):
    from mmseg.structures import SegDataSample
    g = torch.Generator().manual_seed(seed)
    samples = []
    for _ in range(n):
        label = torch.randint(0, NUM_CLASSES, (1, size, size), generator=g)
        label[:, :4] = 255  # some ignored pixels
        sample = SegDataSample(gt_sem_seg=PixelData(data=label))
        sample.set_metainfo(dict(img_shape=(size, size),
                                 ori_shape=(size, size),
                                 pad_shape=(size, size)))
        samples.append(sample)
    inputs = [torch.randint(0, 256, (3, size, size), generator=g,
                            dtype=torch.uint8) for _ in range(n)]
    return dict(inputs=inputs, data_samples=samples)


def snapshot(module):
    return {k: v.detach().clone() for k, v in module.named_parameters()}


def moved(before, module):
    return [k for k, v in module.named_parameters()
            if not torch.equal(before[k], v.detach())]


def test_segmentor_train_step_with_decode_and_aux_losses():
    model = build_segmentor()
    assert isinstance(model.decode_head.loss_decode, GRPORMLoss)
    aux_losses = list(model.auxiliary_head.loss_decode)
    assert isinstance(aux_losses[0], GRPORMLoss)
    before = snapshot(model)
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.5))
    log_vars = model.train_step(seg_batch(), optim)
    for key in ('decode.loss_grpo', 'aux.loss_grpo', 'aux.loss_ce', 'loss'):
        assert key in log_vars and torch.isfinite(torch.as_tensor(
            log_vars[key])), key
    changed = moved(before, model)
    assert any(k.startswith('decode_head.conv_seg') for k in changed)
    assert any(k.startswith('auxiliary_head.conv_seg') for k in changed)
    assert any(k.startswith('backbone.') for k in changed)


def test_decode_head_old_logits_equal_current_give_ratio_one():
    """The hand-off: old logits before the head's resize, same weights."""
    # no dropout: two forwards of the head must give the same logits
    model = build_segmentor(dict(type='GRPORMLoss', log_stats=True),
                            dropout_ratio=0.0)
    head = model.decode_head
    batch = model.data_preprocessor(seg_batch(seed=1), True)
    feats = [f.detach() for f in model.extract_feat(batch['inputs'])]
    logits = head.forward(feats)
    assert logits.shape[2:] != (64, 64)  # the head resizes before the loss
    head.loss_decode.set_old_logits(logits.detach(),
                                    align_corners=head.align_corners)
    losses = head.loss_by_feat(logits, batch['data_samples'])
    stats = head.loss_decode.last_stats
    assert stats['grpo_ratio_mean'].item() == 1.0
    assert stats['grpo_clip_frac'].item() == 0.0
    losses['loss_grpo'].backward()
    with_old = head.conv_seg.weight.grad.clone()
    head.conv_seg.weight.grad = None
    on_policy = head.loss_by_feat(head.forward(feats),
                                  batch['data_samples'])['loss_grpo']
    on_policy.backward()
    torch.testing.assert_close(head.conv_seg.weight.grad, with_old)


def test_segmentor_loss_equals_function_on_the_resized_logits():
    from mmseg.models.utils import resize
    model = build_segmentor(dict(type='GRPORMLoss', background_index=0,
                                 loss_weight=2.0))
    head = model.decode_head
    batch = model.data_preprocessor(seg_batch(seed=2), True)
    logits = head.forward(model.extract_feat(batch['inputs']))
    losses = head.loss_by_feat(logits, batch['data_samples'])
    labels = torch.stack([s.gt_sem_seg.data[0]
                          for s in batch['data_samples']])
    resized = resize(logits, size=labels.shape[1:], mode='bilinear',
                     align_corners=False)
    torch.testing.assert_close(
        losses['loss_grpo'],
        2.0 * grpo_rm_loss(resized, labels, background_index=0))


def build_classifier(loss=None, batch_augments=None):
    from mmpretrain.registry import MODELS
    from mmpretrain.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    preprocessor = dict(type='ClsDataPreprocessor', mean=[127.5] * 3,
                        std=[127.5] * 3, num_classes=NUM_CLASSES)
    if batch_augments:
        preprocessor['batch_augments'] = batch_augments
    cfg = dict(
        type='ImageClassifier',
        data_preprocessor=preprocessor,
        backbone=dict(type='ResNet', depth=18, base_channels=8,
                      out_indices=(3, )),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=NUM_CLASSES,
                  in_channels=64, cal_acc=False,
                  loss=loss or dict(type='GRPORMLoss')))
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(cfg)
    model.init_weights()
    return model.train()


def cls_batch(n=6, seed=0):
    from mmpretrain.structures import DataSample
    g = torch.Generator().manual_seed(seed)
    inputs = [torch.randint(0, 256, (3, 32, 32), generator=g,
                            dtype=torch.uint8) for _ in range(n)]
    labels = torch.randint(0, NUM_CLASSES, (n, ), generator=g).tolist()
    return dict(inputs=inputs,
                data_samples=[DataSample().set_gt_label(y) for y in labels])


@pytest.mark.parametrize('mixup', [False, True])
def test_classifier_train_step(mixup):
    augments = dict(augments=[dict(type='Mixup', alpha=0.8)]) \
        if mixup else None
    model = build_classifier(batch_augments=augments)
    assert isinstance(model.head.loss_module, GRPORMClsLoss)
    before = snapshot(model)
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.5))
    log_vars = model.train_step(cls_batch(), optim)
    assert 'loss' in log_vars and torch.isfinite(torch.as_tensor(
        log_vars['loss']))
    changed = moved(before, model)
    assert any(k.startswith('head.fc') for k in changed)
    assert any(k.startswith('backbone.') for k in changed)


def test_classifier_loss_with_old_logits_matches_function():
    model = build_classifier(dict(type='GRPORMLoss', loss_weight=0.5,
                                  log_stats=True))
    batch = model.data_preprocessor(cls_batch(seed=3), True)
    feats = model.extract_feat(batch['inputs'])
    logits = model.head(feats)
    old = logits.detach() + torch.randn_like(logits)
    model.head.loss_module.set_old_logits(old)
    losses = model.head.loss(feats, batch['data_samples'])
    target = torch.cat([s.gt_label for s in batch['data_samples']])
    torch.testing.assert_close(
        losses['loss'], 0.5 * grpo_rm_loss(logits, target, old,
                                           ignore_index=None))
    assert model.head.loss_module.last_stats['grpo_ratio_mean'] != 1.0


def test_ohem_sampler_ranking_call_does_not_use_up_old_logits():
    # MMSeg's OHEMPixelSampler first calls the loss under no_grad with
    # reduction_override='none'; the training call must still see them.
    import torch

    from grpo_rm_mm.models.losses import GRPORMLoss
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(2, 4, 5, 5, generator=g, requires_grad=True)
    old = torch.randn(2, 4, 5, 5, generator=g)
    labels = torch.randint(0, 4, (2, 5, 5), generator=g)
    loss = GRPORMLoss()
    loss.set_old_logits(old)
    with torch.no_grad():
        ranking = loss(logits, labels, reduction_override='none')
    assert ranking.shape == (2, 5, 5)
    handed = loss(logits, labels)
    explicit = GRPORMLoss()(logits, labels, old_logits=old)
    on_policy = GRPORMLoss()(logits, labels)
    assert torch.equal(handed, explicit)
    assert not torch.allclose(handed, on_policy)
    assert loss._old_logits is None  # consumed by the training call
