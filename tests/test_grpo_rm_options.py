"""The GRPO-family options of the loss: values and gradients against the
float64 reference, the cross-entropy identities, sampled groups, the
lock-out diagnostic and the options' checks."""
import grpo_rm_mm  # noqa: F401,I001  (compat shims before the stack)

import pytest
import torch
import torch.nn.functional as F
from test_grpo_rm_loss import (IGNORE, SHAPES, _has_cxx, close, grad_of,
                               make_inputs, reference_loss)

from grpo_rm_mm.models.losses import (GRPORMClsLoss, GRPORMLoss,
                                      grpo_rm_loss)
from grpo_rm_mm.models.losses import grpo_rm as core
from grpo_rm_mm.models.losses import grpo_rm_eager as eager

#: loss options -> the reference's names for them
_REFERENCE_NAMES = dict(accuracy_reward='c', clip_eps_high='eps_high',
                        uniformity_weight='weight', uniformity='uniformity',
                        scale_rewards='scale_rewards', dual_clip='dual_clip')

OPTIONS = {
    'batch': dict(scale_rewards='batch'),
    'none': dict(scale_rewards='none'),
    'clip-higher': dict(clip_eps_high=0.28),
    'dual clip': dict(dual_clip=1.5),
    'uniformity 0.5': dict(uniformity_weight=0.5),
    'batch + clip-higher + dual': dict(scale_rewards='batch',
                                       clip_eps_high=0.28, dual_clip=1.5),
    'uniformity only': dict(accuracy_reward=0.0),
    'background penalty + none': dict(background_index=0,
                                      scale_rewards='none'),
    'sampled G=3': dict(group_size=3),
    'sampled G=7 + batch + dual': dict(group_size=7, scale_rewards='batch',
                                       dual_clip=1.5),
}


def _reference_kwargs(options, num_classes, samples):
    kw = {_REFERENCE_NAMES[k]: v for k, v in options.items()
          if k in _REFERENCE_NAMES}
    if options.get('background_index') is not None:
        kw['scale'] = [0.5] + [1.0] * (num_classes - 1)
    return dict(kw, samples=samples)


def _loss_and_reference(logits, labels, old, options, targets=None,
                        seed=5):
    """Loss and gradient of ``grpo_rm_loss`` and of the reference, with the
    same draws for sampled groups (the same seed)."""
    torch.manual_seed(seed)
    loss, grad = grad_of(lambda x: grpo_rm_loss(
        x, labels if targets is None else targets, old, **options), logits)
    samples = None
    if 'group_size' in options:
        torch.manual_seed(seed)
        samples = core.sample_outputs(logits if old is None else old,
                                      options['group_size'])
    ref_kw = _reference_kwargs(options, logits.shape[1], samples)
    ref, ref_grad = grad_of(lambda x: reference_loss(
        x.double(), labels, old, targets=targets, **ref_kw), logits)
    return loss, grad, ref, ref_grad


@pytest.mark.parametrize('options', list(OPTIONS))
@pytest.mark.parametrize('shape', SHAPES)
@pytest.mark.parametrize('off_policy', [False, True])
@pytest.mark.parametrize('chunked', [False, True])
def test_options_match_float64_reference(options, shape, off_policy, chunked,
                                         monkeypatch):
    # classification (N, C) and per-pixel (N, C, H, W) groups, 20 % of
    # them ignored; the eager path whole and in several chunks
    if chunked:
        monkeypatch.setattr(eager, 'CHUNK_NUMEL', 12)
    logits, old, labels = make_inputs(shape, seed=len(shape) + 20,
                                      old_scale=1.0)
    loss, grad, ref, ref_grad = _loss_and_reference(
        logits, labels, old if off_policy else None, OPTIONS[options])
    torch.testing.assert_close(loss.double(), ref, atol=2e-6, rtol=1e-5)
    close(grad, ref_grad, atol=2e-7, rtol=1e-4)
    assert ref_grad.abs().max() > 1e-3  # the comparison is not vacuous


@pytest.mark.parametrize('options', ['batch + clip-higher + dual',
                                     'uniformity only', 'sampled G=3'])
@pytest.mark.parametrize('off_policy', [False, True])
def test_options_with_soft_targets_match_reference(options, off_policy):
    logits, old, _ = make_inputs((6, 5), seed=31, old_scale=1.0)
    targets = torch.softmax(torch.randn(6, 5, generator=torch.Generator(
    ).manual_seed(3)) * 2, 1)
    loss, grad, ref, ref_grad = _loss_and_reference(
        logits, torch.zeros(6, dtype=torch.long),
        old if off_policy else None, OPTIONS[options], targets=targets)
    torch.testing.assert_close(loss.double(), ref, atol=2e-6, rtol=1e-5)
    close(grad, ref_grad, atol=2e-7, rtol=1e-4)


def test_defaults_are_the_paper_method():
    # the defaults spelt out give today's loss exactly (the same numbers)
    logits, old, labels = make_inputs((2, 5, 3, 4), seed=41, old_scale=1.0)
    paper = dict(scale_rewards='group', clip_eps_high=None, dual_clip=None,
                 uniformity_weight=1.0, group_size=None)
    for off in (None, old):
        a, ga = grad_of(lambda x: grpo_rm_loss(x, labels, off), logits)
        b, gb = grad_of(lambda x: grpo_rm_loss(x, labels, off, **paper),
                        logits)
        assert torch.equal(a, b) and torch.equal(ga, gb)  # same computation
        c, gc = grad_of(lambda x: grpo_rm_loss(x, labels, off,
                                               clip_eps_high=0.2), logits)
        assert torch.equal(a, c) and torch.equal(ga, gc)


# ------------------------------------------------------------- identities
@pytest.mark.parametrize('shape', SHAPES)
def test_none_scaling_on_policy_is_cross_entropy_over_c(shape):
    # scale_rewards='none', c = 1, on-policy: r - mean(r) = onehot - q, so
    # d loss / dz = (q - onehot) / C = F.cross_entropy's gradient / C
    logits, _, labels = make_inputs(shape, seed=43, dtype=torch.float64)
    _, grad = grad_of(lambda x: grpo_rm_loss(x, labels,
                                             scale_rewards='none'), logits)
    _, ce = grad_of(lambda x: F.cross_entropy(x, labels,
                                              ignore_index=IGNORE), logits)
    torch.testing.assert_close(grad, ce / shape[1], atol=1e-12, rtol=1e-10)
    assert ce.abs().max() > 1e-3


def test_background_penalty_is_label_smoothing():
    # with background_index, 'none' is CE towards t = a onehot(y) +
    # (1 - a) / C, a = 0.5 on background pixels and 1 elsewhere
    shape = (2, 6, 4, 5)
    logits, _, labels = make_inputs(shape, seed=45, ignore_frac=0,
                                    dtype=torch.float64)
    labels[:, :2] = 0  # plenty of background
    _, grad = grad_of(lambda x: grpo_rm_loss(
        x, labels, scale_rewards='none', background_index=0), logits)
    a = torch.where(labels == 0, 0.5, 1.0).unsqueeze(1).double()
    target = a * F.one_hot(labels, 6).movedim(-1, 1) + (1 - a) / 6
    _, ce = grad_of(lambda x: F.cross_entropy(x, target), logits)
    torch.testing.assert_close(grad, ce / 6, atol=1e-12, rtol=1e-10)


@pytest.mark.parametrize('shape', SHAPES)
def test_group_scaling_gives_every_group_the_same_gradient_norm(shape):
    # 'group' on-policy: (q - t) / (C std(r)), std(r) = ||q - t|| /
    # sqrt(C - 1): every valid group's gradient has norm sqrt(C - 1) / C
    logits, _, labels = make_inputs(shape, seed=47, dtype=torch.float64)
    _, grad = grad_of(lambda x: grpo_rm_loss(x, labels, std_eps=1e-12,
                                             reduction='sum'), logits)
    num_classes = shape[1]
    norms = grad.norm(dim=1)
    valid = labels != IGNORE
    expected = torch.full_like(norms[valid], (num_classes - 1)**0.5 /
                               num_classes)
    torch.testing.assert_close(norms[valid], expected, atol=1e-10,
                               rtol=1e-9)
    assert (norms[~valid] == 0).all()


# ------------------------------------------------------------- sampling
def test_sampled_groups_are_finite_and_repeat_with_the_seed():
    logits, old, labels = make_inputs((4, 6, 5, 5), seed=49, old_scale=1.0)
    for scale_rewards in ('group', 'batch', 'none'):
        kw = dict(group_size=2, scale_rewards=scale_rewards,
                  return_stats=True)
        torch.manual_seed(0)
        (loss, stats), grad = grad_of_pair(lambda x: grpo_rm_loss(
            x, labels, old, **kw), logits)
        assert torch.isfinite(loss) and torch.isfinite(grad).all()
        assert all(torch.isfinite(v) for v in stats.values())
        torch.manual_seed(0)  # the same seed, the same draws
        (again, _), grad_again = grad_of_pair(lambda x: grpo_rm_loss(
            x, labels, old, **kw), logits)
        assert torch.equal(loss, again) and torch.equal(grad, grad_again)
        torch.manual_seed(1)
        (other, _), _ = grad_of_pair(lambda x: grpo_rm_loss(
            x, labels, old, **kw), logits)
        assert other != loss


def grad_of_pair(fn, logits):
    x = logits.detach().clone().requires_grad_()
    loss, stats = fn(x)
    loss.backward()
    return (loss.detach(), stats), x.grad


def test_sampled_gradient_approaches_its_limit_for_large_groups():
    # on-policy, G -> infinity: dJ/dz_k = q_k (r_k - mu) / sigma with
    # mu = sum_i q_i r_i and sigma^2 = sum_i q_i (r_i - mu)^2
    logits, _, labels = make_inputs((4, 5), seed=51, ignore_frac=0,
                                    dtype=torch.float64)
    torch.manual_seed(3)
    _, grad = grad_of(lambda x: grpo_rm_loss(
        x, labels, group_size=20000, reduction='sum'), logits)
    q = torch.softmax(logits, 1)
    r = F.one_hot(labels, 5).double() - q
    mu = (q * r).sum(1, keepdim=True)
    sigma = ((q * (r - mu)**2).sum(1, keepdim=True)).sqrt()
    limit = -q * (r - mu) / sigma
    error = (grad - limit).norm(dim=1) / limit.norm(dim=1)
    assert error.max() < 0.05, error  # Monte Carlo: ~1 / sqrt(G) per group


# ------------------------------------------------------------- lock-out
def test_lock_out_diagnostic_counts_groups_whose_true_class_is_clipped():
    # the old model gives the true class ~0 probability (a re-used head):
    # its advantage is positive, the ratio is far above 1 + eps from the
    # first step on, and no gradient reaches it
    logits, _, labels = make_inputs((8, 5), seed=53, ignore_frac=0)
    old = logits.clone()
    locked = torch.arange(8) < 6
    old[locked, labels[locked]] = -30.0
    _, stats = grpo_rm_loss(logits, labels, old, return_stats=True)
    torch.testing.assert_close(stats['grpo_true_clipped'],
                               torch.tensor(6 / 8))
    # no gradient through the true class's own term: an old probability
    # e^5 times smaller (a ratio e^5 times larger) changes nothing
    _, grad = grad_of(lambda x: grpo_rm_loss(x, labels, old), logits)
    old[locked, labels[locked]] = -35.0
    _, grad_smaller = grad_of(lambda x: grpo_rm_loss(x, labels, old), logits)
    torch.testing.assert_close(grad_smaller, grad, atol=1e-9, rtol=1e-6)
    # clip-higher alone does not unlock such a ratio (~e^25)
    _, stats = grpo_rm_loss(logits, labels, old, clip_eps_high=10.0,
                            return_stats=True)
    assert stats['grpo_true_clipped'] == 6 / 8


# ------------------------------------------------------------- checks
@pytest.mark.parametrize('match,kwargs', [
    ("unknown scale_rewards='std'", dict(scale_rewards='std')),
    ('clip_eps_high must be >= 0', dict(clip_eps_high=-0.1)),
    (r'dual_clip must be > 1 \+ the upper clip \(1.28\), got 1.2',
     dict(clip_eps_high=0.28, dual_clip=1.2)),
    ('dual_clip must be a finite number', dict(dual_clip=float('inf'))),
    ('uniformity_weight must be >= 0', dict(uniformity_weight=-1.0)),
    ('uniformity_weight must be a finite number',
     dict(uniformity_weight='1')),
    ('accuracy_reward=0 without a uniformity reward',
     dict(accuracy_reward=0.0, uniformity='none')),
    ('accuracy_reward=0 without a uniformity reward',
     dict(accuracy_reward=0.0, uniformity_weight=0.0)),
    ('group_size must be an int >= 2', dict(group_size=1)),
    ('group_size must be an int >= 2', dict(group_size=2.0)),
])
def test_bad_options_are_refused_when_built_and_called(match, kwargs):
    x, _, y = make_inputs((2, 4, 3, 3), seed=55)
    for build in (GRPORMLoss, GRPORMClsLoss):
        with pytest.raises(ValueError, match=match):
            build(**kwargs)
    with pytest.raises(ValueError, match=match):
        grpo_rm_loss(x, y, **kwargs)


def test_modules_pass_every_option():
    logits, old, labels = make_inputs((6, 5), seed=57, old_scale=1.0,
                                      ignore_frac=0)
    kw = dict(scale_rewards='batch', clip_eps_high=0.28, dual_clip=2.0,
              uniformity_weight=0.5, group_size=4)
    for module in (GRPORMLoss(**kw), GRPORMClsLoss(**kw)):
        torch.manual_seed(2)
        got = module(logits, labels, old_logits=old)
        torch.manual_seed(2)
        torch.testing.assert_close(got, grpo_rm_loss(logits, labels, old,
                                                     **kw))
        assert 'group_size=4' in repr(module)


@pytest.mark.skipif(not _has_cxx(), reason='torch.compile (inductor) needs '
                    'a C++ compiler on CPU; none found')
def test_compiled_options_match_eager(monkeypatch):
    # one small shape, one compile: every option at once, sampled groups
    monkeypatch.setattr(core, '_compiled', None)
    logits, old, labels = make_inputs((2, 5, 3, 4), seed=59, old_scale=1.0)
    kw = dict(scale_rewards='batch', clip_eps_high=0.28, dual_clip=1.5,
              uniformity_weight=0.5, group_size=6, background_index=0,
              return_stats=True)
    torch.manual_seed(4)
    (eager_loss, stats), grad = grad_of_pair(
        lambda x: grpo_rm_loss(x, labels, old, **kw), logits)
    torch.manual_seed(4)
    (compiled, cstats), cgrad = grad_of_pair(
        lambda x: grpo_rm_loss(x, labels, old, compile=True, **kw), logits)
    assert core._compiled not in (None, False)  # it did compile
    torch.testing.assert_close(compiled, eager_loss, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(cgrad, grad, atol=1e-8, rtol=1e-5)
    for key in stats:
        torch.testing.assert_close(cstats[key], stats[key], atol=1e-6,
                                   rtol=1e-5)
    assert 0 < stats['grpo_clip_frac'] < 1
