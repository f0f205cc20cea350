"""The eager path: :func:`~.grpo_rm_formula.grpo_rm_terms` with its
closed-form gradient (the formula's docstring), chunk by chunk.

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
from .grpo_rm_formula import (combine_moments, group_rewards, grpo_rm_terms,
                              moments_std, reward_moments)

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


def _centred_rewards(q, index, acc, uniformity, weight):
    """``d = r - mean_j r_j`` (N, C, *S) and ``mean_j r_j`` (N, 1, *S);
    ``acc`` is ``c * s_y`` (N, 1, *S) for indices, ``c * s * t`` (N, C, *S)
    for soft targets (``index`` None); ``weight`` is lambda."""
    num_classes = q.shape[1]
    acc_sum = acc if index is not None else acc.sum(1, keepdim=True)
    if uniformity == 'deviation':  # -|q_i - (1 - q_y) / (C - 1)|, 0 at y
        share = (1 - q.gather(1, index)) / (num_classes - 1)
        d = torch.sub(q, share).abs_().mul_(-weight).scatter_(1, index, acc)
        mean = d.mean(1, keepdim=True)
        return d.sub_(mean), mean
    if uniformity == 'prob':  # sum_j q_j = 1: the mean needs no reduction
        mean = (acc_sum - weight) / num_classes
        d = torch.add(mean.neg(), q, alpha=-weight)
    else:
        mean = acc_sum / num_classes
        d = mean.neg().expand_as(q).contiguous()
    d = d.scatter_add_(1, index, acc) if index is not None else d.add_(acc)
    return d, mean


def _chunk(z, z_old, index, acc, target, opts, reward_std, with_stats,
           grad):
    """Per-group loss and diagnostics (5, N, *S) or None of one chunk;
    ``d loss / dz`` is written into ``grad``."""
    num_classes, dtype = z.shape[1], grad.dtype
    logp = F.log_softmax(z, 1, dtype=dtype)
    if z_old is not None:
        logq = F.log_softmax(z_old, 1, dtype=dtype)
        ratio = torch.sub(logp, logq).clamp_(max=MAX_LOG_RATIO).exp_()
    p = logp.exp_()
    q = p if z_old is None else logq.exp_()
    d, mean = _centred_rewards(q, index, acc, opts.uniformity,
                               opts.uniformity_weight)
    if opts.scale_rewards == 'group':
        inv = torch.linalg.vecdot(d, d, dim=1).unsqueeze(1).div_(
            num_classes - 1).sqrt_().add_(opts.std_eps).reciprocal_()
    elif opts.scale_rewards == 'batch':
        inv = (reward_std + opts.std_eps).reciprocal().expand_as(mean)
    else:
        inv = torch.ones_like(mean)
    stats = None
    if with_stats:
        adv_true = d.gather(1, index).squeeze(1) if target is None else \
            torch.linalg.vecdot(target, d, dim=1)
        stats = [torch.linalg.vecdot(q, d, dim=1) + mean.squeeze(1),
                 adv_true * inv.squeeze(1)]
    if z_old is None:  # ratio 1, nothing clipped: w = A
        w, loss = d, d.sum(1)
        if with_stats:
            stats += [torch.zeros_like(loss), torch.ones_like(loss),
                      torch.zeros_like(loss)]
    else:
        w = torch.mul(ratio, d)  # u = ratio * d
        if with_stats:
            ratio_mean = ratio.sum(1) / num_classes
            locked = (ratio > 1 + opts.clip_high).logical_and_(d > 0).to(
                dtype)
            locked = locked.gather(1, index).squeeze(1) if target is None \
                else torch.linalg.vecdot(target, locked, dim=1)
        v = ratio.clamp_(1.0 - opts.clip_low, 1.0 + opts.clip_high).mul_(d)
        # term i is clipped iff v_i < u_i; sign() stands in for a
        # comparison and masked_fill, several times slower on CPU (q's
        # buffer is free again)
        kept = torch.sub(v, w, out=q).sign_().clamp_(max=0).add_(1)
        low = torch.minimum(w, v, out=v)
        if opts.dual_clip is not None:  # for A < 0: max(low, dual_clip A)
            bound = d * opts.dual_clip
            dual = (bound > low).logical_and_(d < 0)
            low = torch.where(dual, bound, low)
            kept.masked_fill_(dual, 0)
        loss = low.sum(1)
        w = w.mul_(kept)
        if with_stats:
            stats += [1 - kept.sum(1) / num_classes, ratio_mean, locked]
    grad_scale = inv * (-1.0 / num_classes)
    torch.mul(w.addcmul_(p, w.sum(1, keepdim=True), value=-1), grad_scale,
              out=grad)
    loss = loss.mul_(grad_scale.squeeze(1))
    return loss, None if stats is None else torch.stack(stats)


def _one_hot_or_soft(labels, gidx, idx, num_classes, dtype, shape):
    """The chunk's targets (N, C, *S) for :func:`group_rewards`."""
    if labels.is_floating_point():
        return labels[idx].to(dtype)
    classes = torch.arange(num_classes, device=labels.device).view(shape)
    return (classes == labels[gidx].unsqueeze(1)).to(dtype)


def _batch_reward_std(logits, old_logits, labels, scale, samples, valid,
                      opts, dtype):
    """The 'batch' std of every reward of every valid group, chunk by
    chunk (a pre-pass: the chunks need it before they start)."""
    shape = (1, -1) + (1, ) * (logits.dim() - 2)
    moments = None
    for idx, gidx in _chunks(logits.shape):
        source = logits if old_logits is None else old_logits
        q = F.softmax(source[idx].detach(), 1, dtype=dtype)
        target = _one_hot_or_soft(labels, gidx, idx, logits.shape[1], dtype,
                                  shape)
        reward = group_rewards(q, target, scale, opts.uniformity,
                               opts.uniformity_weight)
        if samples is not None:
            reward = reward.gather(1, samples[idx])
        part = reward_moments(reward, None if valid is None else valid[gidx])
        moments = part if moments is None else combine_moments(moments, part)
    return moments_std(moments)


def eager_terms(logits, old_logits, labels, scale, samples, valid, opts,
                with_stats=True, with_grad=True, reward_std=None):
    """:func:`~.grpo_rm_formula.grpo_rm_terms` with the gradient, chunk by
    chunk, mostly in place, without a graph (``with_grad`` is there for the
    same signature: the gradient is always computed). Sampled groups run
    the formula itself on each chunk."""
    dtype = torch.float64 if logits.dtype == torch.float64 \
        else torch.float32
    group_shape = logits.shape[:1] + logits.shape[2:]
    loss = logits.new_empty(group_shape, dtype=dtype)
    stats = logits.new_empty((5, ) + group_shape, dtype=dtype) \
        if with_stats else None
    grad = torch.empty_like(logits, dtype=dtype)
    scale = scale.to(dtype)
    if opts.scale_rewards == 'batch' and reward_std is None:
        with torch.no_grad():
            reward_std = _batch_reward_std(logits, old_logits, labels, scale,
                                           samples, valid, opts, dtype)
    soft = labels.is_floating_point()
    shape = (1, -1) + (1, ) * (logits.dim() - 2)
    for idx, gidx in _chunks(logits.shape):
        old = None if old_logits is None else old_logits[idx]
        if samples is not None:
            with torch.no_grad():
                loss[gidx], chunk_stats, grad[idx] = grpo_rm_terms(
                    logits[idx], old, labels[idx if soft else gidx], scale,
                    samples[idx], None, opts, with_stats, True, reward_std)
        else:
            if soft:
                index, target = None, labels[idx].to(dtype)
                acc = scale.view(shape) * target
            else:
                index, target = labels[gidx].unsqueeze(1), None
                acc = scale[index]
            loss[gidx], chunk_stats = _chunk(
                logits[idx], old, index, acc, target, opts, reward_std,
                with_stats, grad[idx])
        if with_stats:
            stats[(slice(None), ) + gidx] = chunk_stats
    return loss, stats, grad
