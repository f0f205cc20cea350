"""The eager path of the GRPO-RM formula: chunked, closed-form gradient.

Why it exists: run eagerly, autograd through the plain operations of
:func:`~.grpo_rm.grpo_rm_terms` (the formula, and the compiled path) costs
11-30x cross-entropy's time on CPU (``benchmarks/bench_loss.py``): every one
of its ~40 operations allocates a tensor of the logits' size. Here the same
numbers come from ~15 mostly in-place operations on chunks that stay in
cache, and the gradient is saved in closed form::

    w_i     = [term i not clipped] * A_i * ratio_i
    dJ/dz_k = (w_k - p_k * sum_i w_i) / C      (d ratio_i / dz_k
                                                = ratio_i ([i == k] - p_k))

a term being clipped iff ``clip(ratio_i) * A_i < ratio_i * A_i`` (at ties
autograd of ``min`` / ``clamp`` keeps the full gradient, as here).
``A = d * s`` with ``d`` the centred rewards and ``s = 1 / (std + std_eps)``
per group; everything is linear in ``A`` and the clip mask does not depend
on ``s``, so ``s`` is applied to per-group sums. ``tests/test_grpo_rm_loss.py``
checks that this agrees with autograd through the formula.
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
           dtype):
    """Per-group loss, diagnostics (4, N, *S) and ``d loss / dz``."""
    num_classes = z.shape[1]
    logp = F.log_softmax(z, 1, dtype=dtype)
    if z_old is None:
        logq = logp
    else:
        logq = F.log_softmax(z_old, 1, dtype=dtype)
        ratio = torch.sub(logp, logq).clamp_(max=MAX_LOG_RATIO).exp_()
    p = logp.exp()
    q = p if z_old is None else logq.exp_()
    d, mean = _centred_rewards(q, index, acc, uniformity)
    reward = torch.linalg.vecdot(q, d, dim=1) + mean.squeeze(1)
    inv = torch.linalg.vecdot(d, d, dim=1).unsqueeze(1).div_(
        num_classes - 1).sqrt_().add_(std_eps).reciprocal_()
    adv_true = (d.gather(1, index).squeeze(1) if target is None else
                torch.linalg.vecdot(target, d, dim=1)) * inv.squeeze(1)
    if z_old is None:  # ratio 1, nothing clipped: w = A
        sum_w = d.sum(1, keepdim=True)
        loss = sum_w.squeeze(1) * inv.squeeze(1)
        ratio_mean, clip_frac = torch.ones_like(loss), torch.zeros_like(loss)
        w = d
    else:
        ratio_mean = ratio.sum(1) / num_classes
        v = ratio.clamp(1.0 - clip_eps, 1.0 + clip_eps).mul_(d)
        u = ratio.mul_(d)
        clipped = u > v
        clip_frac = clipped.sum(1, dtype=dtype) / num_classes
        loss = torch.minimum(u, v, out=v).sum(1).mul_(inv.squeeze(1))
        w = u.masked_fill_(clipped, 0)
        sum_w = w.sum(1, keepdim=True)
    grad = w.addcmul_(p, sum_w, value=-1).mul_(inv * (-1.0 / num_classes))
    stats = torch.stack([reward, adv_true, clip_frac, ratio_mean])
    return loss.mul_(-1.0 / num_classes), stats, grad


class EagerGRPORM(torch.autograd.Function):
    """:func:`~.grpo_rm.grpo_rm_terms` (its arguments, its outputs but the
    gradient), chunk by chunk; saves one tensor the size of the logits, as
    cross-entropy keeps its log-probabilities. No double backward."""

    @staticmethod
    def forward(ctx, logits, old_logits, labels, scale, uniformity, clip_eps,
                std_eps):
        dtype = torch.float64 if logits.dtype == torch.float64 \
            else torch.float32
        group_shape = logits.shape[:1] + logits.shape[2:]
        loss = logits.new_empty(group_shape, dtype=dtype)
        stats = logits.new_empty((4, ) + group_shape, dtype=dtype)
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
            loss[gidx], stats[(slice(None), ) + gidx], grad[idx] = _chunk(
                logits[idx], old, index, acc, target, uniformity, clip_eps,
                std_eps, dtype)
        ctx.save_for_backward(grad)
        ctx.in_dtype = logits.dtype
        ctx.mark_non_differentiable(stats)
        return loss, stats

    @staticmethod
    def backward(ctx, grad_loss, _):
        grad, = ctx.saved_tensors
        grad = grad * grad_loss.unsqueeze(1).to(grad.dtype)
        return grad.to(ctx.in_dtype), None, None, None, None, None, None
