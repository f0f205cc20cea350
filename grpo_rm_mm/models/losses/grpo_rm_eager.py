"""The eager path: :func:`~.grpo_rm.grpo_rm_terms` with its closed-form
gradient (the formula's docstring), chunk by chunk.

Run eagerly, every plain operation of the formula allocates a tensor the
size of the logits; here ~20 mostly in-place operations work on chunks that
stay in cache. ``A = d * s``, with ``d`` the centred rewards and
``s = 1 / (std + std_eps)`` per group: everything is linear in ``A`` and the
clip test does not depend on ``s``, so ``s`` is applied to per-group sums.
``tests/test_grpo_rm_loss.py`` checks this against the formula.
"""
import math
from typing import Iterator, Tuple

import torch
import torch.nn.functional as F

from .grpo_rm_base import MAX_LOG_RATIO

#: elements (N x C x spatial) per chunk: whole samples or rows of one; the
#: temporaries are a few chunks (2**19..2**21 equally fast on a 2-core CPU).
CHUNK_NUMEL = 2**21


def _chunks(shape: torch.Size) -> Iterator[Tuple[tuple, tuple]]:
    """Index tuples (logits-shaped, group-shaped): samples or rows."""
    n, per_sample = shape[0], math.prod(shape[1:])
    if len(shape) < 3 or per_sample <= CHUNK_NUMEL:
        step = max(1, CHUNK_NUMEL // max(per_sample, 1))
        for i in range(0, n, step):
            yield (slice(i, i + step), ), (slice(i, i + step), )
        return
    rows = max(1, CHUNK_NUMEL * shape[2] // per_sample)
    for i in range(n):
        for h in range(0, shape[2], rows):
            yield ((slice(i, i + 1), slice(None), slice(h, h + rows)),
                   (slice(i, i + 1), slice(h, h + rows)))


def _centred_rewards(q, index, acc, uniformity):
    """``d = r - mean_j r_j`` (N, C, *S) and ``mean_j r_j`` (N, 1, *S);
    ``acc`` is ``c * s_y`` (N, 1, *S) for indices, ``c * s * t`` (N, C, *S)
    for soft targets (``index`` None)."""
    num_classes = q.shape[1]
    acc_sum = acc if index is not None else acc.sum(1, keepdim=True)
    if uniformity == 'deviation':  # -|q_i - (1 - q_y) / (C - 1)|, 0 at y
        share = (1 - q.gather(1, index)) / (num_classes - 1)
        d = torch.sub(q, share).abs_().neg_().scatter_(1, index, acc)
        mean = d.mean(1, keepdim=True)
        return d.sub_(mean), mean
    if uniformity == 'prob':  # sum_j q_j = 1: the mean needs no reduction
        mean = (acc_sum - 1) / num_classes
        d = torch.sub(mean.neg(), q)
    else:
        mean = acc_sum / num_classes
        d = mean.neg().expand_as(q).contiguous()
    d = d.scatter_add_(1, index, acc) if index is not None else d.add_(acc)
    return d, mean


def _chunk(z, z_old, index, acc, target, uniformity, clip_eps, std_eps,
           with_stats, grad):
    """Per-group loss and diagnostics (4, N, *S) or None of one chunk;
    ``d loss / dz`` is written into ``grad``."""
    num_classes, dtype = z.shape[1], grad.dtype
    logp = F.log_softmax(z, 1, dtype=dtype)
    if z_old is not None:
        logq = F.log_softmax(z_old, 1, dtype=dtype)
        ratio = torch.sub(logp, logq).clamp_(max=MAX_LOG_RATIO).exp_()
    p = logp.exp_()
    q = p if z_old is None else logq.exp_()
    d, mean = _centred_rewards(q, index, acc, uniformity)
    inv = torch.linalg.vecdot(d, d, dim=1).unsqueeze(1).div_(
        num_classes - 1).sqrt_().add_(std_eps).reciprocal_()
    stats = None
    if with_stats:
        adv_true = d.gather(1, index).squeeze(1) if target is None else \
            torch.linalg.vecdot(target, d, dim=1)
        stats = [torch.linalg.vecdot(q, d, dim=1) + mean.squeeze(1),
                 adv_true * inv.squeeze(1)]
    if z_old is None:  # ratio 1, nothing clipped: w = A
        w, loss = d, d.sum(1)
        if with_stats:
            stats += [torch.zeros_like(loss), torch.ones_like(loss)]
    else:
        w = torch.mul(ratio, d)  # u = ratio * d
        if with_stats:
            ratio_mean = ratio.sum(1) / num_classes
        v = ratio.clamp_(1.0 - clip_eps, 1.0 + clip_eps).mul_(d)
        # term i is clipped iff v_i < u_i; sign() stands in for a
        # comparison and masked_fill, several times slower on CPU (q's
        # buffer is free again)
        kept = torch.sub(v, w, out=q).sign_().clamp_(max=0).add_(1)
        loss = torch.minimum(w, v, out=v).sum(1)
        w = w.mul_(kept)
        if with_stats:
            stats += [1 - kept.sum(1) / num_classes, ratio_mean]
    grad_scale = inv * (-1.0 / num_classes)
    torch.mul(w.addcmul_(p, w.sum(1, keepdim=True), value=-1), grad_scale,
              out=grad)
    loss = loss.mul_(grad_scale.squeeze(1))
    return loss, None if stats is None else torch.stack(stats)


def eager_terms(logits, old_logits, labels, scale, uniformity, clip_eps,
                std_eps, with_stats=True, with_grad=True):
    """:func:`~.grpo_rm.grpo_rm_terms` with the gradient, chunk by chunk,
    mostly in place, without a graph (``with_grad`` is there for the same
    signature: the gradient is always computed)."""
    dtype = torch.float64 if logits.dtype == torch.float64 \
        else torch.float32
    group_shape = logits.shape[:1] + logits.shape[2:]
    loss = logits.new_empty(group_shape, dtype=dtype)
    stats = logits.new_empty((4, ) + group_shape, dtype=dtype) \
        if with_stats else None
    grad = torch.empty_like(logits, dtype=dtype)
    scale = scale.to(dtype)
    soft = labels.is_floating_point()
    shape = (1, -1) + (1, ) * (logits.dim() - 2)
    for idx, gidx in _chunks(logits.shape):
        if soft:
            index, target = None, labels[idx].to(dtype)
            acc = scale.view(shape) * target
        else:
            index, target = labels[gidx].unsqueeze(1), None
            acc = scale[index]
        old = None if old_logits is None else old_logits[idx]
        loss[gidx], chunk_stats = _chunk(
            logits[idx], old, index, acc, target, uniformity,
            clip_eps, std_eps, with_stats, grad[idx])
        if with_stats:
            stats[(slice(None), ) + gidx] = chunk_stats
    return loss, stats, grad
