"""GRPO-RM objective: values, gradients, derived facts, bad input, stats."""
import grpo_rm_mm  # noqa: F401,I001  (compat shims before the stack)

import math

import pytest
import torch
from mmengine.logging import MessageHub

from grpo_rm_mm.models.losses import (GRPORMClsLoss, GRPORMLoss,
                                      GRPORMLossBase, grpo_rm_loss)
from grpo_rm_mm.models.losses import grpo_rm as core
from grpo_rm_mm.models.losses.grpo_rm_base import MAX_LOG_RATIO, Objective
from grpo_rm_mm.models.losses import grpo_rm_eager as eager

IGNORE = 255


# ------------------------------------------------------------- reference
def reference_per_group(logits, labels, old_logits=None, c=1.0,
                        uniformity='prob', eps=0.2, scale=None,
                        ignore_index=IGNORE, std_eps=1e-4, clipped_out=None,
                        targets=None, scale_rewards='group', eps_high=None,
                        dual_clip=None, weight=1.0, samples=None):
    """Plain float64 loops over groups, autograd through torch.min / clamp.

    Returns the per-group loss (the shape of ``labels``), 0 where ignored.
    ``clipped_out``: a list that receives, per group, the mask of terms
    where ``clamp(ratio) * A < ratio * A`` (the clipped ones). ``targets``:
    soft targets (N, C) instead of indices. ``samples``: the sampled
    outputs (N, G, *S) of every group instead of its C classes.
    """
    num_classes = logits.shape[1]
    z = logits.movedim(1, -1).reshape(-1, num_classes)
    z_old = None if old_logits is None else \
        old_logits.double().movedim(1, -1).reshape(-1, num_classes)
    outs = None if samples is None else \
        samples.movedim(1, -1).reshape(z.shape[0], -1)
    flat = labels.reshape(-1).tolist() if targets is None else \
        [None] * z.shape[0]
    s = torch.ones(num_classes, dtype=torch.float64) if scale is None \
        else torch.tensor(scale, dtype=torch.float64)
    groups = []  # (group, log p, log q, rewards of its outputs, outputs)
    for g, y in enumerate(flat):
        if y == ignore_index:
            continue
        logp = torch.log_softmax(z[g], 0)
        logq = logp.detach() if z_old is None else torch.log_softmax(
            z_old[g], 0)
        q = logq.exp()
        if targets is None:
            r = torch.zeros(num_classes, dtype=torch.float64)
            r[y] = c * s[y]
        else:
            r = c * s * targets[g].double()
        if uniformity == 'prob':
            r = r - weight * q
        elif uniformity == 'deviation':
            u = -(q - (1 - q[y]) / (num_classes - 1)).abs()
            u[y] = 0
            r = r + weight * u
        o = torch.arange(num_classes) if outs is None else outs[g]
        groups.append((g, logp, logq, r[o], o))
    batch_std = torch.cat([r for *_, r, _ in groups]).std() if groups \
        else None
    out = [z[g].sum() * 0 for g in range(z.shape[0])]
    for g, logp, logq, r, o in groups:
        if scale_rewards == 'group':
            adv = (r - r.mean()) / (r.std() + std_eps)
        elif scale_rewards == 'batch':
            adv = (r - r.mean()) / (batch_std + std_eps)
        else:
            adv = r - r.mean()
        ratio = torch.exp(logp[o] - logq[o])
        surr = ratio * adv
        clip = torch.clamp(ratio, 1 - eps,
                           1 + (eps if eps_high is None else eps_high)) * adv
        term = torch.min(surr, clip)
        if dual_clip is not None:
            term = torch.where(adv < 0, torch.max(term, dual_clip * adv),
                               term)
        if clipped_out is not None:
            clipped_out.append((clip < surr).detach())
        out[g] = -term.mean()
    return torch.stack(out).reshape(labels.shape[:1] + logits.shape[2:])


def reference_loss(logits, labels, old_logits=None, reduction='mean', **kw):
    per = reference_per_group(logits, labels, old_logits, **kw)
    if reduction == 'none':
        return per
    if reduction == 'sum':
        return per.sum()
    ignore = kw.get('ignore_index', IGNORE)
    if kw.get('targets') is not None or ignore is None:
        n = per.numel()
    else:
        n = int((labels != ignore).sum())
    return per.sum() / max(n, 1)


def make_inputs(shape, seed=0, old_scale=0.6, ignore_frac=0.2,
                dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(shape, generator=g, dtype=torch.float64) * 2
    old = logits + torch.randn(shape, generator=g,
                               dtype=torch.float64) * old_scale
    labels = torch.randint(0, shape[1], shape[:1] + shape[2:], generator=g)
    drop = torch.rand(labels.shape, generator=g) < ignore_frac
    labels[drop] = IGNORE
    return logits.to(dtype), old.to(dtype), labels


def grpo_rm_stats(*args, **kwargs):
    """The diagnostics of the loss's own pass."""
    return grpo_rm_loss(*args, return_stats=True, **kwargs)[1]


def close(actual, expected, **kw):
    """assert_close in float64 (the reference runs in float64)."""
    torch.testing.assert_close(actual.double(), expected.double(), **kw)


def grad_of(fn, logits):
    x = logits.detach().clone().requires_grad_()
    loss = fn(x)
    loss.backward()
    return loss.detach(), x.grad


SHAPES = [(6, 5), (2, 4, 3, 5)]


# ------------------------------------------------------------- values/grads
@pytest.mark.parametrize('shape', SHAPES)
@pytest.mark.parametrize('uniformity', ['prob', 'deviation', 'none'])
@pytest.mark.parametrize('off_policy', [False, True])
@pytest.mark.parametrize('chunked', [True, False])
def test_matches_float64_reference(shape, uniformity, off_policy, chunked,
                                   monkeypatch):
    if chunked:  # the eager path in several chunks
        monkeypatch.setattr(eager, 'CHUNK_NUMEL', 12)
    logits, old, labels = make_inputs(shape, seed=len(shape))
    old = old if off_policy else None
    kw = dict(uniformity=uniformity, accuracy_reward=1.5)
    loss, grad = grad_of(lambda x: grpo_rm_loss(x, labels, old, **kw),
                         logits)
    ref, ref_grad = grad_of(
        lambda x: reference_loss(x.double(), labels, old, c=1.5,
                                 uniformity=uniformity), logits)
    assert loss.dtype == torch.float32 and grad.dtype == torch.float32
    torch.testing.assert_close(loss.double(), ref, atol=2e-6, rtol=1e-5)
    close(grad, ref_grad, atol=2e-7, rtol=1e-4)
    assert ref_grad.abs().max() > 1e-3  # the comparison is not vacuous


#: option sets of the formula (Objective fields), each one or in combination
OPTION_SETS = {
    'paper': {},
    'deviation': dict(uniformity='deviation'),
    'accuracy only': dict(uniformity='none'),
    'batch': dict(scale_rewards='batch'),
    'none': dict(scale_rewards='none'),
    'clip-higher': dict(clip_high=0.28),
    'dual clip': dict(dual_clip=1.5),
    'uniformity x2': dict(uniformity_weight=2.0),
    'batch + clip-higher + dual': dict(scale_rewards='batch', clip_high=0.28,
                                       dual_clip=1.5),
    'deviation + none + dual': dict(uniformity='deviation',
                                    scale_rewards='none', dual_clip=1.5),
}


@pytest.mark.parametrize('options', list(OPTION_SETS))
@pytest.mark.parametrize('sampled', [False, True])
@pytest.mark.parametrize('off_policy', [False, True])
@pytest.mark.parametrize('soft', [False, True])
def test_eager_closed_form_agrees_with_the_formula(options, sampled,
                                                   off_policy, soft,
                                                   monkeypatch):
    # autograd through the plain formula, in float64, against both
    # closed-form gradients: the formula's own (what the compiled path
    # saves) and the eager path's (chunked, in place; the formula per
    # chunk for sampled groups)
    opts = Objective(**OPTION_SETS[options])
    if soft and opts.uniformity == 'deviation':
        return
    monkeypatch.setattr(eager, 'CHUNK_NUMEL', 30)  # several chunks
    logits, old, labels = make_inputs((3, 5, 4, 3), seed=7, old_scale=1.0,
                                      ignore_frac=0.25 * (not soft),
                                      dtype=torch.float64)
    valid = None if soft else labels != IGNORE
    labels = labels.masked_fill(labels == IGNORE, 0)
    if soft:
        labels = torch.softmax(torch.randn(logits.shape,
                                           dtype=torch.float64), 1)
    torch.manual_seed(11)
    samples = core.sample_outputs(old, 4) if sampled else None
    args = (old if off_policy else None, labels,
            torch.tensor([0.5, 1.0, 2.0, 1.0, 1.5]), samples, valid, opts)
    upstream = torch.arange(36, dtype=torch.float64).view(3, 4, 3)
    x = logits.clone().requires_grad_()
    loss, stats, _ = core.grpo_rm_terms(x, *args)
    (loss * upstream).sum().backward()
    for terms in (core.grpo_rm_terms, eager.eager_terms):
        y = logits.clone().requires_grad_()
        closed_loss, closed_stats = core.GRPORMFunction.apply(terms, y, *args,
                                                              True)
        (closed_loss * upstream).sum().backward()
        tol = dict(atol=1e-12, rtol=1e-10)
        torch.testing.assert_close(closed_loss, loss.detach(), **tol)
        torch.testing.assert_close(closed_stats, stats, **tol)
        torch.testing.assert_close(y.grad, x.grad, **tol)
    assert x.grad.abs().max() > 1e-3  # not vacuous
    if off_policy and not sampled:
        assert 0 < stats[2].mean() < 1  # clipping is exercised


def test_clipping_active_on_both_sides_matches_reference():
    logits, old, labels = make_inputs((40, 6), seed=3, old_scale=1.0,
                                      ignore_frac=0.0)
    clipped = []
    x = logits.double().requires_grad_()
    reference_per_group(x, labels, old, clipped_out=clipped)
    ratio = torch.exp(torch.log_softmax(logits.double(), 1) -
                      torch.log_softmax(old.double(), 1))
    mask = torch.stack(clipped)
    assert (mask & (ratio > 1.2)).any() and (mask & (ratio < 0.8)).any()
    for reduction in ('mean', 'sum', 'none'):
        _, grad = grad_of(
            lambda x: grpo_rm_loss(x, labels, old, reduction=reduction).sum(),
            logits)
        _, ref_grad = grad_of(
            lambda x: reference_loss(x.double(), labels, old,
                                     reduction=reduction).sum(), logits)
        close(grad, ref_grad, atol=1e-7, rtol=1e-4)


@pytest.mark.parametrize('old_logits', [False, True])
@pytest.mark.parametrize('uniformity', ['prob', 'deviation', 'none'])
def test_gradcheck_float64(old_logits, uniformity):
    logits, old, labels = make_inputs((2, 4, 2, 3), seed=5,
                                      dtype=torch.float64)
    # on-policy means "old = current, detached": a constant equal to the
    # logits at the point (finite differences must not move it)
    old = old if old_logits else logits.clone()
    x = logits.clone().requires_grad_()
    assert torch.autograd.gradcheck(
        lambda t: grpo_rm_loss(t, labels, old, uniformity=uniformity,
                               background_index=0, reduction='none'),
        (x, ), eps=1e-6, atol=1e-6)


def test_reductions_weight_and_avg_factor():
    logits, old, labels = make_inputs((3, 4, 2, 2), seed=7)
    per = grpo_rm_loss(logits, labels, old, reduction='none')
    ref = reference_loss(logits.double(), labels, old, reduction='none')
    torch.testing.assert_close(per.double(), ref, atol=1e-6, rtol=1e-5)
    assert (per[labels == IGNORE] == 0).all()
    torch.testing.assert_close(
        grpo_rm_loss(logits, labels, old, reduction='sum'), per.sum())
    n = (labels != IGNORE).sum()
    torch.testing.assert_close(grpo_rm_loss(logits, labels, old),
                               per.sum() / n)
    w = torch.rand(labels.shape)
    torch.testing.assert_close(
        grpo_rm_loss(logits, labels, old, weight=w, avg_factor=7.0),
        (per * w).sum() / 7.0)
    with pytest.raises(ValueError, match='avg_factor'):
        grpo_rm_loss(logits, labels, old, avg_factor=2.0, reduction='sum')
    # MMSeg adds losses of equal names in place: outputs must allow it
    x = logits.clone().requires_grad_()
    for old_logits in (None, old):
        out = grpo_rm_loss(x, labels, old_logits, reduction='none')
        out += 1
        out.sum().backward()


# ------------------------------------------------------------- derived facts
def test_on_policy_gradient_is_advantage_over_c_n():
    logits, _, labels = make_inputs((3, 5, 4, 4), seed=11)
    num_classes = logits.shape[1]
    valid = labels != IGNORE
    _, grad = grad_of(lambda x: grpo_rm_loss(x, labels), logits)
    # advantages written out directly from the formula, in float64
    q = torch.softmax(logits.double(), 1)
    onehot = torch.zeros_like(q).scatter_(
        1, labels.masked_fill(~valid, 0).unsqueeze(1), 1.0)
    r = onehot - q
    adv = (r - r.mean(1, keepdim=True)) / (r.std(1, keepdim=True) + 1e-4)
    expected = -adv / (num_classes * valid.sum()) * valid.unsqueeze(1)
    close(grad, expected, atol=1e-8, rtol=1e-4)
    # the loss value itself is ~0 on-policy (advantages sum to zero)
    assert abs(grpo_rm_loss(logits, labels).item()) < 1e-6


def test_clipped_terms_carry_no_gradient():
    logits, old, labels = make_inputs((30, 5), seed=13, old_scale=1.0,
                                      ignore_frac=0.0)
    clipped = []
    x = logits.double().requires_grad_()
    reference_per_group(x, labels, old, clipped_out=clipped)
    mask = torch.stack(clipped)
    ratio = torch.exp(torch.log_softmax(logits.double(), 1) -
                      torch.log_softmax(old.double(), 1))
    assert (mask & (ratio > 1.2)).any() and (mask & (ratio < 0.8)).any()

    # the objective restricted to the unclipped terms (clipped ones are
    # constants) must have the same gradient as the full loss
    def unclipped_only(z):
        logp = torch.log_softmax(z.double(), 1)
        logq = torch.log_softmax(old.double(), 1)
        q = logq.exp()
        r = torch.zeros_like(q).scatter_(1, labels.unsqueeze(1), 1.0) - q
        adv = (r - r.mean(1, keepdim=True)) / (r.std(1, keepdim=True) + 1e-4)
        terms = torch.exp(logp - logq) * adv
        return -(terms * ~mask).sum() / (5 * len(labels))

    _, grad = grad_of(lambda z: grpo_rm_loss(z, labels, old), logits)
    _, expected = grad_of(unclipped_only, logits)
    close(grad, expected, atol=1e-8, rtol=1e-4)


def test_accuracy_only_advantages_do_not_depend_on_c():
    logits, old, labels = make_inputs((2, 6, 3, 3), seed=17)
    grads = [
        grad_of(
            lambda x: grpo_rm_loss(x, labels, old, uniformity='none',
                                   accuracy_reward=c), logits)[1]
        for c in (0.3, 1.0, 7.0)
    ]
    for g in grads[1:]:
        torch.testing.assert_close(g, grads[0], atol=1e-7, rtol=2e-3)
    stats = [
        grpo_rm_stats(logits, labels, old, uniformity='none',
                      accuracy_reward=c)['grpo_adv_true'] for c in (0.3, 7.0)
    ]
    torch.testing.assert_close(stats[0], stats[1], rtol=2e-3, atol=0)
    # with the uniformity reward the advantages do depend on c
    g1 = grad_of(lambda x: grpo_rm_loss(x, labels, old, accuracy_reward=0.3),
                 logits)[1]
    assert not torch.allclose(g1, grads[0], rtol=1e-2)


def test_background_scale_and_per_class_scale():
    logits, old, labels = make_inputs((2, 4, 3, 3), seed=19, ignore_frac=0.1)
    assert (labels == 0).any()
    scale = [0.5, 1.0, 1.0, 1.0]
    bg = grpo_rm_loss(logits, labels, old, background_index=0,
                      reduction='none')
    listed = grpo_rm_loss(logits, labels, old, reward_scale=scale,
                          reduction='none')
    ref = reference_loss(logits.double(), labels, old, scale=scale,
                         reduction='none')
    torch.testing.assert_close(bg, listed)
    torch.testing.assert_close(bg.double(), ref, atol=1e-6, rtol=1e-5)
    plain = grpo_rm_loss(logits, labels, old, reduction='none')
    assert not torch.allclose(plain[labels == 0], bg[labels == 0])
    torch.testing.assert_close(plain[labels > 0], bg[labels > 0])
    # a general per-class list with gradients
    scale = [0.0, 2.0, 0.7, 1.3]
    _, grad = grad_of(
        lambda x: grpo_rm_loss(x, labels, old, reward_scale=scale),
        logits)
    _, ref_grad = grad_of(
        lambda x: reference_loss(x.double(), labels, old, scale=scale),
        logits)
    close(grad, ref_grad, atol=1e-7, rtol=1e-4)


def test_ignored_pixels_take_no_part():
    logits, old, labels = make_inputs((2, 3, 4, 4), seed=23, ignore_frac=0.4)
    ignored = labels == IGNORE
    assert ignored.any() and (~ignored).any()
    _, grad = grad_of(lambda x: grpo_rm_loss(x, labels, old), logits)
    assert (grad.movedim(1, -1)[ignored] == 0).all()
    # changing ignored logits changes nothing
    changed = logits.clone()
    changed.movedim(1, -1)[ignored] = 50.0
    torch.testing.assert_close(grpo_rm_loss(changed, labels, old),
                               grpo_rm_loss(logits, labels, old))


@pytest.mark.parametrize('old_logits', [False, True])
def test_all_ignored_batch_is_zero_and_backpropagates(old_logits):
    logits, old, _ = make_inputs((2, 3, 2, 2), seed=29)
    labels = torch.full((2, 2, 2), IGNORE)
    x = logits.clone().requires_grad_()
    loss = grpo_rm_loss(x, labels, old if old_logits else None)
    loss.backward()
    assert loss.item() == 0.0
    assert torch.isfinite(x.grad).all() and (x.grad == 0).all()
    stats = grpo_rm_stats(logits, labels, old if old_logits else None)
    assert all(torch.isfinite(v) for v in stats.values())


def test_ignore_index_none_and_large_class_ids():
    logits = torch.randn(3, 300)
    labels = torch.tensor([0, 255, 299])
    loss = grpo_rm_loss(logits, labels, ignore_index=None, reduction='none')
    assert loss.shape == (3, ) and torch.isfinite(loss).all()
    x = logits.clone().requires_grad_()
    grpo_rm_loss(x, labels, ignore_index=None).backward()
    assert (x.grad[1] != 0).any()  # class 255 is a class here


# ------------------------------------------------------------- robustness
@pytest.mark.parametrize('off_policy', ['none', 'near', 'far'])
def test_huge_logits_are_finite(off_policy):
    g = torch.Generator().manual_seed(31)
    logits = torch.randn(2, 5, 3, 3, generator=g) * 1e4
    labels = torch.randint(0, 5, (2, 3, 3), generator=g)
    old = {'none': None, 'near': logits + torch.randn(
        logits.shape, generator=g), 'far': torch.randn(
            logits.shape, generator=g) * 1e4}[off_policy]
    for bg in (None, 0):
        x = logits.clone().requires_grad_()
        loss = grpo_rm_loss(x, labels, old, background_index=bg)
        loss.backward()
        assert torch.isfinite(loss) and torch.isfinite(x.grad).all()


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
@pytest.mark.parametrize('off_policy', [False, True])
def test_half_precision_logits(dtype, off_policy):
    logits, old, labels = make_inputs((2, 5, 4, 4), seed=37)
    half, old_half = logits.to(dtype), old.to(dtype)
    old_half = old_half if off_policy else None
    x = half.clone().requires_grad_()
    loss = grpo_rm_loss(x, labels, old_half)
    (loss * 1024).backward()  # like a loss scaler
    assert loss.dtype == torch.float32 and x.grad.dtype == dtype
    assert torch.isfinite(loss) and torch.isfinite(x.grad).all()
    # the same numbers as float32 on the half-rounded inputs
    _, ref_grad = grad_of(
        lambda t: grpo_rm_loss(
            t, labels, None if old_half is None else old_half.float()) *
        1024, half.float())
    torch.testing.assert_close(x.grad.float(), ref_grad, atol=1e-3,
                               rtol=1e-2)
    assert torch.isfinite(grpo_rm_loss(half * 1000, labels, old_half))


def test_chunked_equals_unchunked(monkeypatch):
    logits, old, labels = make_inputs((3, 4, 5, 6), seed=41)
    full = grad_of(lambda x: grpo_rm_loss(x, labels, old), logits)
    for chunk in (4 * 5 * 6 * 2, 4 * 6 * 2, 7):  # samples, rows, one row
        monkeypatch.setattr(eager, 'CHUNK_NUMEL', chunk)
        loss, grad = grad_of(lambda x: grpo_rm_loss(x, labels, old), logits)
        # the same formula on other chunk shapes: a few float32 ulps
        torch.testing.assert_close(loss, full[0], atol=1e-7, rtol=1e-6)
        torch.testing.assert_close(grad, full[1], atol=1e-9, rtol=1e-6)


def test_soft_targets_generalise_index_labels():
    logits, old, labels = make_inputs((6, 5), seed=43, ignore_frac=0)
    onehot = torch.nn.functional.one_hot(labels, 5).float()
    for uniformity in ('prob', 'none'):
        torch.testing.assert_close(
            grpo_rm_loss(logits, onehot, old, uniformity=uniformity),
            grpo_rm_loss(logits, labels, old, uniformity=uniformity))
    soft = torch.softmax(torch.randn(6, 5), 1)
    _, grad = grad_of(lambda x: grpo_rm_loss(x, soft, old), logits)
    _, ref_grad = grad_of(
        lambda x: reference_loss(x.double(), labels, old, targets=soft),
        logits)
    close(grad, ref_grad, atol=1e-7, rtol=1e-4)
    with pytest.raises(ValueError, match='deviation'):
        grpo_rm_loss(logits, soft, uniformity='deviation')


def test_soft_targets_never_get_a_gradient():
    # the closed-form paths return none for them; autograd through the
    # formula (MMEngine's compile) must agree
    logits, old, _ = make_inputs((4, 5), seed=47, ignore_frac=0)
    soft = torch.softmax(torch.randn(4, 5), 1).requires_grad_()
    scale = torch.ones(5)
    for terms in (core.grpo_rm_terms, lambda *a: core.GRPORMFunction.apply(
            eager.eager_terms, *a)):
        loss = terms(logits.requires_grad_(), old, soft, scale, None, None,
                     Objective())[0]
        loss.sum().backward()
        assert soft.grad is None and logits.grad.abs().sum() > 0
        logits.grad = None


# ------------------------------------------------------------- bad input
def _bad_cases():
    x = torch.randn(2, 4, 3, 3)
    y = torch.randint(0, 4, (2, 3, 3))
    nan = x.clone()
    nan[0, 1, 2, 2] = float('nan')
    inf = x.clone()
    inf[1, 0, 0, 0] = -float('inf')
    high = y.clone()
    high[0, 0, 0] = 23
    neg = y.clone()
    neg[1, 2, 1] = -3
    soft = torch.softmax(torch.randn(2, 4, 3, 3), 1)
    soft_bad = soft.clone()
    soft_bad[0, :, 0, 0] *= 0.5
    soft_bad[1, :, 2, 2] *= 2
    return [
        ('C >= 2', (torch.randn(2, 1, 3, 3), torch.zeros(2, 3, 3).long()), {}),
        (r'labels contain 23, outside \[0, 4\) and not ignore_index=255',
         (x, high), {}),
        ('labels contain -3, which is negative', (x, neg), {}),
        ('labels of shape', (x, y[:, :2]), {}),
        ('labels of shape', (x[:, :, 0, 0], y), {}),
        ('old_logits of shape', (x, y, x[:1]), {}),
        ('logits contain NaN or inf', (nan, y), {}),
        ('logits contain NaN or inf', (inf, y), {}),
        ('old_logits contain NaN or inf', (x, y, nan), {}),
        ("unknown uniformity='eq5'", (x, y), dict(uniformity='eq5')),
        ("unknown reduction='avg'", (x, y), dict(reduction='avg')),
        ('reward_scale needs C=4 values, got 3', (x, y),
         dict(reward_scale=[1.] * 3)),
        ('not both', (x, y), dict(reward_scale=[1.] * 4,
                                  background_index=0)),
        ('avg_factor must be > 0, got 0', (x, y), dict(avg_factor=0)),
        ('avg_factor must be > 0, got -2', (x, y), dict(avg_factor=-2.0)),
        (r'avg_factor must be > 0, got 0\.0', (x, y),
         dict(avg_factor=torch.tensor(0.0))),
        (r'soft-target labels must sum to 1 .* got sums in \[0\.5, 2\]',
         (x, soft_bad), {}),
        ('soft-target labels must be finite and >= 0', (x, -soft), {}),
        ('background_index=7', (x, y), dict(background_index=7)),
        ('clip_eps must be >= 0', (x, y), dict(clip_eps=-0.1)),
        ('std_eps must be > 0', (x, y), dict(std_eps=0.0)),
        ('integer class indices', (x, y.bool()), {}),
        ('logits must be a floating tensor', (x.long(), y), {}),
    ]


@pytest.mark.parametrize('match,args,kwargs', _bad_cases())
def test_bad_input_raises_value_error(match, args, kwargs):
    with pytest.raises(ValueError, match=match) as info:
        grpo_rm_loss(*args, **kwargs)
    assert str(info.value).startswith('grpo_rm_loss: ')


def test_checks_can_be_skipped_and_sync_once(monkeypatch):
    x, _, y = make_inputs((2, 4, 3, 3), seed=47)
    calls = []
    original = torch.Tensor.tolist

    def spy(self):
        calls.append(1)
        return original(self)

    monkeypatch.setattr(torch.Tensor, 'tolist', spy)
    grpo_rm_loss(x, y, x + 1, check_inputs=True)
    assert len(calls) == 1  # one host synchronisation for all data checks
    high = y.clone()
    high[0, 0, 0] = 9
    calls.clear()
    grpo_rm_loss(x, y, check_inputs=False)
    assert not calls
    with pytest.raises(ValueError, match='uniformity'):
        grpo_rm_loss(x, y, uniformity='x', check_inputs=False)


# ------------------------------------------------------------- diagnostics
def test_stats_values_against_reference():
    logits, old, labels = make_inputs((3, 5, 4, 4), seed=53, old_scale=1.0)
    stats = grpo_rm_stats(logits, labels, old)
    assert set(stats) == {'grpo_reward_mean', 'grpo_adv_true',
                          'grpo_clip_frac', 'grpo_ratio_mean',
                          'grpo_true_clipped'}
    assert not any('loss' in k for k in stats)
    assert all(v.dim() == 0 and not v.requires_grad for v in stats.values())
    valid = labels != IGNORE
    clipped = []
    reference_per_group(logits.double(), labels, old, clipped_out=clipped)
    frac = torch.stack(clipped).float().sum() / (valid.sum() * 5)
    assert 0 < frac < 1
    torch.testing.assert_close(stats['grpo_clip_frac'], frac.float())
    # ratio, reward and true-class advantage, written out in float64
    q = torch.softmax(old.double(), 1)
    ratio = torch.softmax(logits.double(), 1) / q
    idx = labels.masked_fill(~valid, 0).unsqueeze(1)
    r = torch.zeros_like(q).scatter_(1, idx, 1.0) - q
    adv = (r - r.mean(1, keepdim=True)) / (r.std(1, keepdim=True) + 1e-4)
    mean_over = (lambda t: t[valid].sum() / valid.sum())
    torch.testing.assert_close(stats['grpo_ratio_mean'],
                               mean_over(ratio.mean(1)).float())
    torch.testing.assert_close(stats['grpo_reward_mean'],
                               mean_over((q * r).sum(1)).float())
    torch.testing.assert_close(stats['grpo_adv_true'],
                               mean_over(adv.gather(1, idx)[:, 0]).float())
    # the lock-out: the true class has A > 0 but a ratio above 1 + eps
    locked = (adv.gather(1, idx) > 0) & (ratio.gather(1, idx) > 1.2)
    assert 0 < mean_over(locked[:, 0].double()) < 1
    torch.testing.assert_close(stats['grpo_true_clipped'],
                               mean_over(locked[:, 0].double()).float())
    on = grpo_rm_stats(logits, labels)
    assert on['grpo_clip_frac'] == 0 and on['grpo_ratio_mean'] == 1
    assert on['grpo_true_clipped'] == 0


def test_log_stats_off_keeps_and_pushes_nothing():
    hub = MessageHub.get_instance('grpo_rm_loss_test_quiet')
    logits, _, labels = make_inputs((2, 3, 2, 2), seed=59)
    loss = GRPORMLoss().train()
    loss(logits, labels)
    assert loss.last_stats == {}
    assert not any('grpo' in k for k in hub.log_scalars)


def test_log_stats_reach_message_hub_and_log_processor():
    from types import SimpleNamespace

    from mmengine.runner import LogProcessor
    logits, old, labels = make_inputs((2, 3, 4, 4), seed=61, old_scale=1.0)
    hub = MessageHub.get_instance('grpo_rm_loss_test_hub')
    loss = GRPORMLoss(log_stats=True, stats_prefix='aux.')
    loss.eval()
    loss(logits, labels, old_logits=old)
    assert set(loss.last_stats) == set(core.STATS_KEYS)
    assert not any(k.startswith('train/') for k in hub.log_scalars)
    loss.train()
    loss(logits, labels, old_logits=old)
    key = 'train/aux.grpo_clip_frac'
    assert hub.get_scalar(key).current() == pytest.approx(
        loss.last_stats['grpo_clip_frac'].item())
    # MMEngine's LogProcessor prints every train/ scalar of the hub
    tag = LogProcessor()._collect_scalars([], SimpleNamespace(message_hub=hub),
                                          'train')
    assert 'aux.grpo_clip_frac' in tag and 'aux.grpo_ratio_mean' in tag


# ------------------------------------------------------------- modules
def test_module_matches_function_and_weight():
    logits, old, labels = make_inputs((2, 3, 4, 4), seed=67)
    loss = GRPORMLoss(loss_weight=0.4, background_index=0)
    assert loss.loss_name == 'loss_grpo'
    assert isinstance(loss, GRPORMLossBase)
    expected = 0.4 * grpo_rm_loss(logits, labels, old, background_index=0)
    torch.testing.assert_close(loss(logits, labels, old_logits=old), expected)
    w = torch.rand(labels.shape)
    per = grpo_rm_loss(logits, labels, reduction='none', background_index=0)
    torch.testing.assert_close(
        loss(logits, labels, weight=w, reduction_override='sum'),
        0.4 * (per * w).sum())
    assert GRPORMLoss(loss_name='loss_x').loss_name == 'loss_x'
    with pytest.raises(ValueError, match='uniformity'):
        GRPORMLoss(uniformity='eq4')
    with pytest.raises(ValueError, match='not both'):
        GRPORMLoss(reward_scale=[1.0, 1.0], background_index=0)
    scaled = GRPORMLoss(reward_scale=[0.5, 1.0, 1.0])
    torch.testing.assert_close(
        scaled(logits, labels, old_logits=old),
        grpo_rm_loss(logits, labels, old, background_index=0))


def test_set_old_logits_is_one_shot_and_explicit_wins():
    logits, old, labels = make_inputs((2, 3, 4, 4), seed=71, old_scale=1.0)
    loss = GRPORMLoss()
    on = grpo_rm_loss(logits, labels)
    off = grpo_rm_loss(logits, labels, old)
    loss.set_old_logits(old)
    torch.testing.assert_close(loss(logits, labels), off)
    torch.testing.assert_close(loss(logits, labels), on)  # consumed
    loss.set_old_logits(old * 3)
    torch.testing.assert_close(loss(logits, labels, old_logits=old), off)
    torch.testing.assert_close(loss(logits, labels), on)  # cleared anyway
    with pytest.raises(ValueError, match='old_logits of shape'):
        loss.set_old_logits(old[:1])
        loss(logits, labels)
    with pytest.raises(ValueError, match='old_logits of shape'):
        loss.set_old_logits(old[:, :2])
        loss(logits, labels)
    with pytest.raises(ValueError, match='set_old_logits'):
        loss.set_old_logits(torch.randn(3))


@pytest.mark.parametrize('align_corners', [False, True])
def test_set_old_logits_resizes_like_the_decode_head(align_corners):
    from mmseg.models.utils import resize
    g = torch.Generator().manual_seed(73)
    raw = torch.randn(2, 4, 5, 6, generator=g)
    labels = torch.randint(0, 4, (2, 20, 24), generator=g)
    current = resize(raw, size=labels.shape[1:], mode='bilinear',
                     align_corners=align_corners)
    loss = GRPORMLoss(log_stats=True)
    loss.set_old_logits(raw, align_corners=align_corners)
    x = current.clone().requires_grad_()
    loss(x, labels).backward()
    assert loss.last_stats['grpo_ratio_mean'].item() == 1.0
    assert loss.last_stats['grpo_clip_frac'].item() == 0.0
    _, on_grad = grad_of(lambda t: grpo_rm_loss(t, labels), current)
    torch.testing.assert_close(x.grad, on_grad, atol=1e-9, rtol=1e-6)
    with pytest.raises(ValueError, match='cannot be resized'):
        loss.set_old_logits(raw[:, :, 0])
        loss(current, labels)


def test_cls_loss_index_and_soft_targets():
    g = torch.Generator().manual_seed(79)
    logits = torch.randn(4, 300, generator=g)
    old = logits + torch.randn(4, 300, generator=g)
    target = torch.tensor([0, 255, 7, 299])
    loss = GRPORMClsLoss(loss_weight=2.0)
    assert isinstance(loss, GRPORMLossBase)
    out = loss(logits, target, avg_factor=4, old_logits=old)
    ref = reference_loss(logits.double(), target, old, ignore_index=None)
    torch.testing.assert_close(out.double(), 2.0 * ref, atol=1e-6, rtol=1e-5)
    soft = torch.softmax(torch.randn(4, 300, generator=g), 1)
    loss.set_old_logits(old)
    out = loss(logits, soft, avg_factor=4)
    torch.testing.assert_close(
        out, 2.0 * grpo_rm_loss(logits, soft, old, ignore_index=None))
    w = torch.tensor([1.0, 0.0, 2.0, 1.0])
    per = grpo_rm_loss(logits, target, ignore_index=None, reduction='none')
    torch.testing.assert_close(loss(logits, target, weight=w, avg_factor=4),
                               2.0 * (per * w).sum() / 4)


def test_formula_is_in_the_docstring():
    doc = grpo_rm_loss.__doc__
    for piece in ('ratio_i = exp(log p_i - log q_i)', 'std_eps',
                  'clip(ratio_i, 1 - eps, 1 + eps)', "'deviation'"):
        assert piece in doc
    assert math.isclose(MAX_LOG_RATIO, 40.0)


# ------------------------------------------------------------- compile
def _has_cxx() -> bool:
    import os
    import shutil
    return bool(shutil.which(os.environ.get('CXX', 'c++')) or
                shutil.which('g++') or shutil.which('clang++'))


@pytest.mark.skipif(not _has_cxx(), reason='torch.compile (inductor) needs '
                    'a C++ compiler on CPU; none found')
def test_compiled_formula_matches_eager(monkeypatch):
    # one small shape, compiled once: the fused kernels against the eager
    # chunked path with its closed-form gradient (different kernels)
    monkeypatch.setattr(core, '_compiled', None)
    logits, old, labels = make_inputs((2, 5, 3, 4), seed=83, old_scale=1.0)
    kw = dict(background_index=0, return_stats=True)
    (eager, stats), grad = grad_of_pair(
        lambda x: grpo_rm_loss(x, labels, old, **kw), logits)
    (compiled, cstats), cgrad = grad_of_pair(
        lambda x: grpo_rm_loss(x, labels, old, compile=True, **kw), logits)
    assert core._compiled not in (None, False)  # it did compile
    torch.testing.assert_close(compiled, eager, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(cgrad, grad, atol=1e-8, rtol=1e-5)
    for key in stats:
        torch.testing.assert_close(cstats[key], stats[key], atol=1e-6,
                                   rtol=1e-5)
    assert 0 < stats['grpo_clip_frac'] < 1  # clipping is exercised


def grad_of_pair(fn, logits):
    x = logits.detach().clone().requires_grad_()
    loss, stats = fn(x)
    loss.backward()
    return (loss.detach(), stats), x.grad


def _fails_when_called(fn):
    def fail(*args, **kwargs):
        raise RuntimeError('no C++ compiler (simulated)')
    return fail


def _fails_when_built(fn):
    raise RuntimeError('torch.compile is not supported here (simulated)')


@pytest.mark.parametrize('no_compiler', [_fails_when_called,
                                         _fails_when_built])
def test_compile_falls_back_to_eager_with_one_warning(monkeypatch,
                                                      no_compiler):
    monkeypatch.setattr(core, '_compiled', None)
    monkeypatch.setattr(torch, 'compile', no_compiler)
    logits, old, labels = make_inputs((2, 3, 2, 2), seed=89)
    with pytest.warns(UserWarning, match='simulated.*runs eagerly'):
        out = grpo_rm_loss(logits, labels, old, compile=True)
    torch.testing.assert_close(out, grpo_rm_loss(logits, labels, old))
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # once per process, not per call
        grpo_rm_loss(logits, labels, old, compile=True)
    assert core._compiled is False


def test_out_of_memory_in_the_compiled_path_is_not_a_compiler_failure(
        monkeypatch):
    def out_of_memory(*args, **kwargs):
        raise torch.OutOfMemoryError('out of memory (simulated)')

    monkeypatch.setattr(core, '_compiled', out_of_memory)
    logits, old, labels = make_inputs((2, 3, 2, 2), seed=91)
    with pytest.raises(torch.OutOfMemoryError, match='simulated'):
        grpo_rm_loss(logits, labels, old, compile=True)
    assert core._compiled is out_of_memory  # compile stays on


def test_double_backward_is_refused():
    # the saved closed-form gradient does not know it depends on the
    # logits: a second derivative would be silently wrong
    logits, old, labels = make_inputs((2, 3, 2, 2), seed=93,
                                      dtype=torch.float64)
    x = logits.requires_grad_()
    for upstream in (1.0, x.sum()):  # constant, or depending on the logits
        with pytest.raises(RuntimeError, match='no double backward'):
            torch.autograd.grad(grpo_rm_loss(x, labels, old) * upstream, x,
                                create_graph=True)


def test_loss_module_compiles_as_one_graph():
    # MMEngine's compile=True traces the loss inside train_step: the data
    # checks (a host sync) step aside and nothing breaks the graph
    logits, old, labels = make_inputs((2, 4, 3, 3), seed=97)
    loss = GRPORMLoss(background_index=0)

    def step(x, old_logits):
        loss.set_old_logits(old_logits)
        return loss(x, labels)

    compiled = torch.compile(step, fullgraph=True, backend='eager')
    torch.testing.assert_close(compiled(logits, old),
                               grpo_rm_loss(logits, labels, old,
                                            background_index=0))
