"""GRPOOldModelHook: old logits reach every GRPO-RM loss, refresh, resume."""
import copy
import re
from types import SimpleNamespace

import pytest
import torch
from mmengine.logging import MessageHub
from mmengine.optim import OptimWrapper
from mmengine.registry import DefaultScope
from mmengine.structures import PixelData

from conftest import assert_ulps

from grpo_rm_mm.engine.hooks import GRPOOldModelHook
from grpo_rm_mm.models.losses import GRPORMLossBase

NUM_CLASSES = 4


def seg_model(aux=True, seed=0, aux_list=False):
    from mmseg.registry import MODELS
    torch.manual_seed(seed)
    head = dict(type='FCNHead', in_channels=32, channels=16, num_convs=1,
                concat_input=False, num_classes=NUM_CLASSES,
                dropout_ratio=0.,  # no stochastic layer: exact ratio 1
                norm_cfg=dict(type='BN', requires_grad=True),
                align_corners=False,
                loss_decode=dict(type='GRPORMLoss', log_stats=True))
    cfg = dict(
        type='EncoderDecoder',
        data_preprocessor=dict(type='SegDataPreProcessor', mean=[0.] * 3,
                               std=[255.] * 3, size=(32, 32)),
        backbone=dict(type='VisionTransformer', img_size=(32, 32),
                      patch_size=8, embed_dims=32, num_layers=2, num_heads=2,
                      out_indices=(1, ), final_norm=True),
        decode_head=head,
        auxiliary_head=aux_heads(head, aux_list) if aux else None,
        train_cfg=dict(), test_cfg=dict(mode='whole'))
    with DefaultScope.overwrite_default_scope('mmseg'):
        model = MODELS.build(cfg)
    model.init_weights()
    return model.train()


def aux_heads(head, as_list):
    aux = dict(head, loss_decode=[
        dict(type='GRPORMLoss', loss_weight=0.4),
        dict(type='CrossEntropyLoss', loss_weight=0.4)])
    if not as_list:
        return aux
    return [dict(aux, loss_decode=dict(type='GRPORMLoss', log_stats=True)),
            dict(aux, channels=8, loss_decode=dict(type='GRPORMLoss',
                                                   log_stats=True))]


def seg_batch(seed=0, n=2):
    from mmseg.structures import SegDataSample
    g = torch.Generator().manual_seed(seed)
    samples = []
    for _ in range(n):
        s = SegDataSample()
        label = torch.randint(0, NUM_CLASSES, (1, 32, 32), generator=g)
        label[:, :2] = 255
        s.gt_sem_seg = PixelData(data=label)
        s.set_metainfo(dict(img_shape=(32, 32), ori_shape=(32, 32),
                            pad_shape=(32, 32)))
        samples.append(s)
    inputs = [torch.randint(0, 256, (3, 32, 32), generator=g,
                            dtype=torch.uint8) for _ in range(n)]
    return dict(inputs=inputs, data_samples=samples)


def fake_runner(model, resume=False):
    return SimpleNamespace(model=model, iter=0, epoch=0, _resume=resume,
                           message_hub=MessageHub.get_instance('hook_test'))


class Recorder:
    """Records the old logits each loss receives and each head's output."""

    def __init__(self, model, head_names):
        self.old, self.current = {}, {}
        for name in head_names:
            head = getattr(model, name)
            # heads' loss() calls self.forward(), so wrap it (no module hook)
            head.forward = self._keep_current(name, head.forward)
            for loss in head.modules():
                if isinstance(loss, GRPORMLossBase):
                    self._spy(loss, name)

    def _keep_current(self, name, forward):
        def wrapped(*args, **kwargs):
            output = forward(*args, **kwargs)
            self.current[name] = output.detach().clone()
            return output
        return wrapped

    def _spy(self, loss, name):
        original = loss.set_old_logits

        def spy(logits, *args, **kwargs):
            self.old[name] = logits.detach().clone()
            return original(logits, *args, **kwargs)
        loss.set_old_logits = spy


def start(hook, runner):
    hook.before_run(runner)
    hook.before_train(runner)  # where the hook sets itself up


def step(hook, runner, model, optim, batch):
    hook.before_train_iter(runner, runner.iter)
    losses = model.train_step(batch, optim)
    runner.iter += 1
    return losses


def test_old_logits_reach_each_head_and_lag_between_refreshes():
    model = seg_model()
    hook, runner = GRPOOldModelHook(interval=2), fake_runner(model)
    start(hook, runner)
    rec = Recorder(model, ['decode_head', 'auxiliary_head'])
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.5))
    batch = seg_batch()
    losses = step(hook, runner, model, optim, batch)  # iter 0: fresh copy
    assert 'decode.loss_grpo' in losses and 'aux.loss_grpo' in losses
    for name in ('decode_head', 'auxiliary_head'):
        assert_ulps(rec.old[name], rec.current[name])  # copy vs model
    assert not torch.equal(rec.old['decode_head'], rec.old['auxiliary_head'])
    decode_loss = model.decode_head.loss_decode
    assert_ulps(decode_loss.last_stats['grpo_ratio_mean'], 1.0)
    assert decode_loss.last_stats['grpo_clip_frac'].item() == 0.0

    step(hook, runner, model, optim, batch)  # iter 1: old lags one step
    assert not torch.allclose(rec.old['decode_head'],
                              rec.current['decode_head'])
    assert decode_loss.last_stats['grpo_ratio_mean'].item() != 1.0
    assert hook.refreshed_at == 0

    step(hook, runner, model, optim, batch)  # iter 2: refreshed again
    assert hook.refreshed_at == 2
    assert_ulps(rec.old['decode_head'], rec.current['decode_head'])


def train_params(model, hook=None, steps=3):
    runner = fake_runner(model)
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.5))
    if hook:
        start(hook, runner)
    for i in range(steps):
        if hook:
            step(hook, runner, model, optim, seg_batch(i))
        else:
            model.train_step(seg_batch(i), optim)
    return [p.detach().clone() for p in model.parameters()]


def test_interval_one_is_on_policy_and_free():
    hook = GRPOOldModelHook(interval=1)
    with_hook = train_params(seg_model(), hook)
    without = train_params(seg_model())
    assert all(torch.equal(a, b) for a, b in zip(with_hook, without))
    assert hook.old is None and not hook._handles


def test_frozen_backbone_is_shared_not_copied():
    model = seg_model()
    model.backbone.requires_grad_(False)
    calls = []
    model.backbone.register_forward_hook(lambda *a: calls.append(1))
    hook, runner = GRPOOldModelHook(interval=3), fake_runner(model)
    start(hook, runner)
    assert hook.shares_backbone
    assert not list(hook.old.module.backbone.parameters())  # not copied
    assert {n.split('.')[0] for n, _ in hook.old.named_parameters()} == {
        'module'} and {n.split('.')[1] for n, _ in
                       hook.old.named_parameters()} == {
                           'decode_head', 'auxiliary_head'}
    rec = Recorder(model, ['decode_head'])
    optim = OptimWrapper(torch.optim.SGD(
        [p for p in model.parameters() if p.requires_grad], lr=0.5))
    step(hook, runner, model, optim, seg_batch())
    assert len(calls) == 1  # the backbone ran once for both policies
    assert_ulps(rec.old['decode_head'], rec.current['decode_head'])
    step(hook, runner, model, optim, seg_batch())
    assert len(calls) == 2
    assert not torch.allclose(rec.old['decode_head'],
                              rec.current['decode_head'])


def test_old_batchnorm_keeps_its_statistics_and_follows_modes():
    model = seg_model(aux=False)
    hook, runner = GRPOOldModelHook(interval=5), fake_runner(model)
    start(hook, runner)
    old_bn = hook.old.module.decode_head.convs[0].bn
    before = old_bn.running_mean.clone()
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
    step(hook, runner, model, optim, seg_batch())
    assert old_bn.training  # batch statistics, like the current model
    assert torch.equal(old_bn.running_mean, before)
    model.decode_head.eval()
    step(hook, runner, model, optim, seg_batch())
    assert not old_bn.training


def test_unservable_grpo_loss_is_refused_by_name():
    from grpo_rm_mm.models.losses import GRPORMLoss
    model = seg_model(aux=False)
    model.extra_branch = GRPORMLoss()
    with pytest.raises(RuntimeError, match='extra_branch'):
        GRPOOldModelHook(interval=2).before_train(fake_runner(model))


def test_bad_interval():
    with pytest.raises(ValueError, match='interval'):
        GRPOOldModelHook(interval=0)


def test_checkpoint_round_trip_restores_old_model_on_resume_only():
    model = seg_model(aux=False)
    hook, runner = GRPOOldModelHook(interval=4), fake_runner(model)
    start(hook, runner)
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.5))
    for _ in range(2):
        step(hook, runner, model, optim, seg_batch())
    ckpt = {}
    hook.before_save_checkpoint(runner, ckpt)
    saved = copy.deepcopy(ckpt['grpo_old_model'])
    assert saved['refreshed_at'] == 0

    # --resume: MMEngine calls after_load_checkpoint, then before_train
    resumed, runner2 = GRPOOldModelHook(interval=4), fake_runner(
        model, resume=True)
    runner2.iter = 2
    resumed.after_load_checkpoint(runner2, ckpt)
    resumed.before_train(runner2)
    assert resumed.refreshed_at == 0
    for key, value in saved['state_dict'].items():
        assert torch.equal(resumed.old.state_dict()[key], value), key

    # load_from (no resume): the old model starts as the loaded weights
    fine_tune, runner3 = GRPOOldModelHook(interval=4), fake_runner(model)
    fine_tune.after_load_checkpoint(runner3, ckpt)
    fine_tune.before_train(runner3)
    assert fine_tune.refreshed_at == 0
    current = model.decode_head.state_dict()
    for key, value in fine_tune.old.module.decode_head.state_dict().items():
        assert torch.equal(value, current[key]), key


def test_hook_does_nothing_in_test_runs():
    # the hook points MMEngine calls in tools/test.py (no before_train)
    model = seg_model(aux=False)
    hook, runner = GRPOOldModelHook(interval=4), fake_runner(model)
    hook.before_run(runner)
    hook.after_load_checkpoint(runner, {'state_dict': {}})
    hook.before_test(runner)
    hook.before_test_epoch(runner)
    hook.before_test_iter(runner, 0)
    hook.after_test_iter(runner, 0)
    hook.after_test_epoch(runner)
    hook.after_test(runner)
    assert hook.old is None and not hook._handles
    assert not model._forward_pre_hooks and not model._forward_hooks


def test_interval_one_still_separates_head_diagnostics():
    model = seg_model()
    GRPOOldModelHook(interval=1).before_train(fake_runner(model))
    assert model.decode_head.loss_decode.stats_prefix == 'decode.'
    assert model.auxiliary_head.loss_decode[0].stats_prefix == 'aux.'


@pytest.mark.parametrize('interval', [1, 2])
def test_list_of_auxiliary_heads_logs_each_as_mmseg_names_them(interval):
    # MMSeg prefixes the losses of a list of auxiliary heads 'aux_{idx}.'
    model = seg_model(aux_list=True)
    hook, runner = GRPOOldModelHook(interval=interval), fake_runner(model)
    start(hook, runner)
    rec = Recorder(model, ['decode_head'])
    if interval > 1:
        for i in range(2):
            rec._spy(model.auxiliary_head[i].loss_decode, f'aux_{i}')
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.5))
    hub = MessageHub.get_instance(f'aux_list_hub_{interval}')
    losses = step(hook, runner, model, optim, seg_batch())
    assert {'aux_0.loss_grpo', 'aux_1.loss_grpo'} <= set(losses)
    stats = [model.auxiliary_head[i].loss_decode.last_stats for i in (0, 1)]
    for i in (0, 1):
        key = f'train/aux_{i}.grpo_adv_true'
        assert hub.get_scalar(key).current() == pytest.approx(
            stats[i]['grpo_adv_true'].item())
    assert stats[0]['grpo_adv_true'] != stats[1]['grpo_adv_true']
    if interval > 1:  # each auxiliary head gets its own old logits
        assert not torch.equal(rec.old['aux_0'], rec.old['aux_1'])


def test_interval_one_serves_any_loss_on_policy():
    from grpo_rm_mm.models.losses import GRPORMLoss
    model = seg_model(aux=False)
    model.extra_branch = GRPORMLoss()  # refused when lagged, see above
    GRPOOldModelHook(interval=1).before_train(fake_runner(model))


def test_by_epoch_with_an_iteration_loop_is_refused():
    from mmengine.runner import IterBasedTrainLoop
    runner = fake_runner(seg_model(aux=False))
    runner.train_loop = IterBasedTrainLoop.__new__(IterBasedTrainLoop)
    with pytest.raises(ValueError, match='never refresh'):
        GRPOOldModelHook(interval=2, by_epoch=True).before_train(runner)


def test_one_epoch_interval_lags_within_the_epoch():
    # interval=1 counted in epochs is a real lag, not on-policy
    model = seg_model(aux=False)
    hook, runner = GRPOOldModelHook(interval=1, by_epoch=True), \
        fake_runner(model)
    start(hook, runner)
    assert hook.old is not None
    rec = Recorder(model, ['decode_head'])
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.5))
    for epoch in range(2):
        runner.epoch = epoch
        hook.before_train_epoch(runner)
        assert hook.refreshed_at == epoch
        step(hook, runner, model, optim, seg_batch())  # fresh copy
        assert_ulps(rec.old['decode_head'], rec.current['decode_head'])
        step(hook, runner, model, optim, seg_batch())  # lags one step
        assert not torch.allclose(rec.old['decode_head'],
                                  rec.current['decode_head'])


def test_old_copy_has_no_attention_dropout_and_counts_age_in_iters():
    model = seg_model(aux=False)
    for m in model.modules():  # MMPretrain-style functional attn dropout
        if type(m).__name__ == 'FCNHead':
            m.attn_drop = 0.3
    hook, runner = GRPOOldModelHook(interval=3), fake_runner(model)
    start(hook, runner)
    assert hook.old.module.decode_head.attn_drop == 0.0
    assert model.decode_head.attn_drop == 0.3
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
    for _ in range(2):
        step(hook, runner, model, optim, seg_batch())
    assert runner.message_hub.get_scalar('train/grpo_old_age').current() == 1


def test_mmpretrain_classifier_gets_old_logits():
    from mmpretrain.registry import MODELS
    from mmpretrain.structures import DataSample
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(dict(
            type='ImageClassifier',
            backbone=dict(type='ResNet', depth=18, base_channels=8,
                          out_indices=(3, )),
            neck=dict(type='GlobalAveragePooling'),
            head=dict(type='LinearClsHead', num_classes=5, in_channels=64,
                      loss=dict(type='GRPORMLoss', log_stats=True))))
    model.train()
    hook, runner = GRPOOldModelHook(interval=2), fake_runner(model)
    start(hook, runner)
    rec = Recorder(model, ['head'])
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.5))
    batch = dict(inputs=torch.randn(4, 3, 32, 32),
                 data_samples=[DataSample().set_gt_label(i) for i in range(4)])
    step(hook, runner, model, optim, batch)
    assert_ulps(rec.old['head'], rec.current['head'])
    step(hook, runner, model, optim, batch)
    assert not torch.allclose(rec.old['head'], rec.current['head'])


def test_lagged_hook_under_autocast():
    # AmpOptimWrapper runs the forward inside autocast; on CPU that is
    # bfloat16 (MMEngine refuses AmpOptimWrapper itself without a GPU)
    model = seg_model()
    hook, runner = GRPOOldModelHook(interval=2), fake_runner(model)
    start(hook, runner)
    rec = Recorder(model, ['decode_head'])
    hook.before_train_iter(runner, 0)
    data = model.data_preprocessor(seg_batch(), training=True)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        losses = model(**data, mode='loss')
    assert rec.old['decode_head'].dtype == torch.bfloat16
    assert_ulps(rec.old['decode_head'], rec.current['decode_head'])
    loss = losses['decode.loss_grpo']
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    loss.backward()
    grads = [p.grad for p in model.decode_head.parameters()
             if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


def test_old_copy_has_no_multihead_attention_dropout():
    # PyTorch's (and so MMCV's) MultiheadAttention keeps its dropout in a
    # float attribute that it reads in training mode
    model = seg_model(aux=False)
    attns = [m for m in model.modules()
             if isinstance(m, torch.nn.MultiheadAttention)]
    assert attns
    for m in attns:
        m.dropout = 0.5
    hook, runner = GRPOOldModelHook(interval=5), fake_runner(model)
    start(hook, runner)
    assert all(m.dropout == 0.5 for m in attns)  # the model keeps its own
    rec = Recorder(model, ['decode_head'])
    data = model.data_preprocessor(seg_batch(), training=True)
    olds = []
    for _ in range(2):  # the same batch: the old policy is deterministic
        hook._before_forward(model, (), dict(data, mode='loss'))
        olds.append(rec.old['decode_head'])
    assert torch.equal(*olds)


def test_old_copy_freezes_every_momentum_updated_buffer():
    from grpo_rm_mm.engine.hooks.old_model_hook import OldPolicyModel

    class EMABases(torch.nn.Module):  # updates like MMSeg's EMAHead
        def __init__(self):
            super().__init__()
            self.momentum = 0.1
            self.register_buffer('bases', torch.zeros(3))

        def forward(self, x):
            if self.training:
                self.bases.lerp_(x.mean(0), self.momentum)
            return x + self.bases

    model = torch.nn.Sequential(EMABases(), torch.nn.BatchNorm1d(
        3, momentum=None)).train()  # None: BN's cumulative average
    old = OldPolicyModel(model, interval=2)
    before = copy.deepcopy(old.module.state_dict())
    old.module(torch.randn(8, 3) + 2)
    model(torch.randn(8, 3) + 2)
    assert model[0].bases.abs().sum() > 0  # the model's own do move
    for key, value in old.module.state_dict().items():
        if 'num_batches_tracked' not in key:
            assert torch.equal(value, before[key]), key


def test_resume_in_the_middle_of_an_epoch_keeps_the_epoch_schedule():
    # MMEngine replays a resumed epoch from its start: refreshes must
    # still land on epochs 0, 2, 4 with interval=2
    model = seg_model(aux=False)

    def run(hook, runner, epochs, save_at=None):
        seen, ckpt = [], {}
        for epoch in epochs:
            runner.epoch = epoch
            hook.before_train_epoch(runner)
            seen.append(hook.refreshed_at)
            if epoch == save_at:  # an iteration checkpoint inside it
                hook.before_save_checkpoint(runner, ckpt)
        return seen, ckpt

    hook, runner = GRPOOldModelHook(interval=2, by_epoch=True), \
        fake_runner(model)
    start(hook, runner)
    seen, ckpt = run(hook, runner, range(2), save_at=1)
    resumed, runner2 = GRPOOldModelHook(interval=2, by_epoch=True), \
        fake_runner(model, resume=True)
    runner2.epoch = 1  # the checkpoint's meta epoch
    resumed.after_load_checkpoint(runner2, ckpt)
    resumed.before_train(runner2)
    seen += run(resumed, runner2, range(1, 5))[0]
    assert seen == [0, 0, 0, 2, 2, 4]


def test_a_second_train_call_does_not_stack_hooks():
    model = seg_model(aux=False)
    hook, runner = GRPOOldModelHook(interval=3), fake_runner(model)
    start(hook, runner)
    hook.before_train(runner)  # e.g. runner.train() called again
    assert len(model._forward_pre_hooks) == 1
    assert not hook.old.module._forward_pre_hooks  # the copy has none
    hook.after_train(runner)
    assert not model._forward_pre_hooks and not hook._handles


def test_head_returning_a_tuple_is_refused_by_name():
    # e.g. MMSeg's DDRHead / PIDHead return several outputs in training
    model = seg_model(aux=False)
    hook, runner = GRPOOldModelHook(interval=3), fake_runner(model)
    start(hook, runner)
    head = hook.old.module.decode_head
    forward = head.forward
    head.forward = lambda feats: (forward(feats), forward(feats))
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
    with pytest.raises(TypeError, match='decode_head .*FCNHead.* tuple'):
        step(hook, runner, model, optim, seg_batch())


def _train_and_collect_warnings(model, monkeypatch, iters, label=None,
                                lr=0.05):
    import logging

    import grpo_rm_mm.engine.hooks.old_model_hook as module
    warnings = []

    def keep(msg, logger=None, level=logging.INFO):
        if level == logging.WARNING:
            warnings.append(msg)

    monkeypatch.setattr(module, 'print_log', keep)
    hook, runner = GRPOOldModelHook(interval=10), fake_runner(model)
    start(hook, runner)
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=lr))
    batch = seg_batch(seed=3)
    for sample in batch['data_samples'] if label is not None else ():
        sample.gt_sem_seg.data[sample.gt_sem_seg.data != 255] = label
    for i in range(iters):  # as MMEngine's loops call the hooks
        hook.before_train_iter(runner, i)
        model.train_step(batch, optim)
        hook.after_train_iter(runner, i)
        runner.iter += 1
    hook.after_train(runner)
    return hook, warnings


def test_lock_out_of_the_true_class_is_warned_once_naming_the_head(
        monkeypatch):
    # an old head that gives the labelled class ~0 probability (a re-used
    # classifier): after the first step its ratio is far above 1 + eps,
    # its advantage positive, and no gradient reaches it
    model = seg_model(aux=False)
    with torch.no_grad():
        model.decode_head.conv_seg.bias[3] = -30.0
    loss = model.decode_head.loss_decode
    hook, warnings = _train_and_collect_warnings(model, monkeypatch, 4,
                                                 label=3)
    assert len(warnings) == 1, warnings  # once, not every iteration
    assert re.search('at iteration [23], ', warnings[0])
    assert 'decode_head (FCNHead)' in warnings[0]
    assert 'locked out' in warnings[0] and 'interval=1' in warnings[0]
    assert re.search(r'labelled classes \S+e-\d+ x chance', warnings[0])
    assert loss.last_stats['grpo_true_clipped'] > 0.5
    assert not loss.watch_stats  # off again after training


def test_no_lock_out_warning_when_a_learning_head_binds_the_clip(
        monkeypatch):
    # one easy label learnt fast: most groups pass 1 + eps within the lag,
    # as the trust region intends; the old model gives the class about
    # chance, so nothing is locked out for long
    model = seg_model(aux=False)
    loss = model.decode_head.loss_decode
    hook, warnings = _train_and_collect_warnings(model, monkeypatch, 4,
                                                 label=3, lr=0.2)
    assert loss.last_stats['grpo_true_clipped'] > 0.5
    assert float(loss.old_true_prob) > 0.5
    assert warnings == []


def test_no_lock_out_warning_for_an_ordinary_head(monkeypatch):
    import grpo_rm_mm.engine.hooks.old_model_hook as module
    monkeypatch.setattr(module, 'LOCKOUT_WINDOW', 3)
    model = seg_model(aux=False)
    loss = model.decode_head.loss_decode
    loss.log_stats = False  # the hook still sees the diagnostic
    watching = []
    loss.register_forward_hook(lambda *_: watching.append(loss.watch_stats))
    hook, warnings = _train_and_collect_warnings(model, monkeypatch, 4)
    assert warnings == []
    assert 'grpo_true_clipped' in loss.last_stats
    assert loss.last_stats['grpo_true_clipped'] < 0.5
    assert watching == [True] * 3 + [False]  # the first 3 iterations only
