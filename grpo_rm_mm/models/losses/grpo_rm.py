"""The GRPO-RM objective (arXiv 2511.15256): the single source of its math.

Everything that computes GRPO-RM numbers lives here: input validation, the
rewards and group-normalised advantages, the clipped surrogate, a custom
:class:`torch.autograd.Function` with the closed-form gradient, and the
diagnostics. The registered MMSegmentation / MMPretrain losses are thin
wrappers around :func:`compute_grpo_rm_loss` and :func:`grpo_rm_stats`.

Memory and time: the per-class tensors of a segmentation batch are large
(176 MB each at (8, 21, 512, 512) in float32), so the work is done in chunks
of about :data:`CHUNK_NUMEL` elements (whole samples, or rows of one sample)
whose temporaries stay small; backward either uses the gradient saved in
forward (default) or recomputes it chunk by chunk from the inputs (see
:class:`GRPORMFunction` and :data:`SAVE_GRAD_MAX_NUMEL`).
"""
import contextlib
import math
import numbers
from typing import (Dict, Iterator, NamedTuple, Optional, Sequence, Tuple,
                    Union)

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable

__all__ = [
    'grpo_rm_loss', 'compute_grpo_rm_loss', 'grpo_rm_stats', 'GRPORMFunction',
    'UNIFORMITIES', 'REDUCTIONS', 'STATS_KEYS'
]

#: reward variants: Eq. (4) of the paper, the Eq. (5) interpretation, none.
UNIFORMITIES = ('prob', 'deviation', 'none')
REDUCTIONS = ('mean', 'sum', 'none')
#: keys of :func:`grpo_rm_stats`; none contains "loss" because MMEngine sums
#: every logged key that does.
STATS_KEYS = ('grpo_reward_mean', 'grpo_adv_true', 'grpo_clip_frac',
              'grpo_ratio_mean')

#: elements (N x C x spatial) processed at once; temporaries are a few
#: chunks, so peak memory hardly grows with the batch. Measured on a 2-core
#: CPU: 2**19..2**21 equally fast, 2**22 and more slower (cache). Not tuned
#: on GPU, where larger chunks may launch fewer kernels.
CHUNK_NUMEL = 2**21
#: numerical guard: log(p_i / q_i) is clamped here (ratio <= 2.4e17) so an
#: old model that diverged wildly cannot turn 0 * inf into NaN or overflow a
#: sum. Below the bound the objective is exact; the clamped value is used as
#: the ratio in the gradient too (straight-through).
MAX_LOG_RATIO = 40.0
#: Logits with at most this many elements get their gradient computed in
#: forward and saved: one tensor the size of the logits, as cross-entropy
#: keeps its log-probabilities. Larger ones save only references to the
#: inputs and recompute chunk by chunk in backward, so no new C x spatial
#: tensor lives between forward and backward. Both give the same numbers.
#: Measured at (8, 21, 512, 512) on CPU (benchmarks/bench_loss.py), saving
#: vs recomputing: on-policy ~1.0x vs ~1.2x cross-entropy's time, with old
#: logits ~1.8x vs ~2.7x; peak memory ~0.7x vs ~0.45x cross-entropy's. The
#: default saves (time matters more, memory stays far below the 1.5x
#: target); set it to 0 to always recompute.
SAVE_GRAD_MAX_NUMEL = 2**40

_PREFIX = 'grpo_rm_loss: '


# --------------------------------------------------------------- validation
class _Prepared(NamedTuple):
    """Validated, normalised inputs of the objective."""
    logits: Tensor  # (N, C, *S), any floating dtype
    old_logits: Optional[Tensor]  # same shape, detached, or None
    index: Optional[Tensor]  # (N, 1, *S) int64, ignored groups -> 0
    acc: Tensor  # hard: (N, 1, *S) c * s_y; soft: (N, C, *S) c * s * t
    target: Optional[Tensor]  # soft targets (N, C, *S) or None
    valid: Optional[Tensor]  # (N, *S) bool, or None when all are valid
    num_valid: Union[Tensor, int]
    compute_dtype: torch.dtype


def _error(msg: str) -> ValueError:
    return ValueError(_PREFIX + msg)


def _compute_dtype(logits: Tensor) -> torch.dtype:
    # float32 even for fp16/bf16 logits; float64 stays float64 (gradcheck)
    return torch.float64 if logits.dtype == torch.float64 else torch.float32


def check_options(num_classes: Optional[int], accuracy_reward,
                  uniformity: str, clip_eps, background_index,
                  background_scale, std_eps,
                  reduction: str) -> Optional[Sequence[float]]:
    """Check the scalar options; return the per-class scale list, if any.

    With ``num_classes=None`` (a loss module's constructor, before any
    logits are seen) the checks that need the class count are skipped.
    """
    if uniformity not in UNIFORMITIES:
        raise _error(f'unknown uniformity={uniformity!r}, expected one of '
                     f'{UNIFORMITIES}')
    if reduction not in REDUCTIONS:
        raise _error(f'unknown reduction={reduction!r}, expected one of '
                     f'{REDUCTIONS}')
    for name, value in (('accuracy_reward', accuracy_reward),
                        ('clip_eps', clip_eps), ('std_eps', std_eps)):
        if (not isinstance(value, numbers.Real) or isinstance(value, bool)
                or not math.isfinite(value)):
            raise _error(f'{name} must be a finite number, got {value!r}')
    if clip_eps < 0:
        raise _error(f'clip_eps must be >= 0, got {clip_eps}')
    if std_eps <= 0:
        # equal rewards in a group give 0 / (0 + std_eps): keep it defined
        raise _error(f'std_eps must be > 0, got {std_eps}')
    if isinstance(background_scale, Tensor):
        background_scale = background_scale.detach().cpu().tolist()
    if isinstance(background_scale, numbers.Real):
        if not math.isfinite(background_scale):
            raise _error('background_scale must be finite, got '
                         f'{background_scale}')
        if background_index is not None and not (
                isinstance(background_index, numbers.Integral)
                and 0 <= background_index < (num_classes or math.inf)):
            raise _error(f'background_index={background_index!r} is not a '
                         f'class index in [0, {num_classes or "C"})')
        return None
    if not isinstance(background_scale, Sequence) or isinstance(
            background_scale, str):
        raise _error('background_scale (reward scale) must be a float or a '
                     f'list of C={num_classes} floats, got '
                     f'{type(background_scale).__name__}')
    if num_classes is not None and len(background_scale) != num_classes:
        raise _error(f'the per-class reward scale (background_scale) needs '
                     f'C={num_classes} values, got {len(background_scale)}')
    if not all(
            isinstance(v, numbers.Real) and math.isfinite(v)
            for v in background_scale):
        raise _error('the per-class reward scale (background_scale) must '
                     f'hold finite numbers, got {list(background_scale)}')
    if background_index is not None:
        raise _error('give either background_index with a float '
                     'background_scale, or a per-class reward scale list '
                     'without background_index, not both')
    return [float(v) for v in background_scale]


def _check_shapes(logits, labels, old_logits) -> bool:
    """Check types and shapes; return True for class-index labels."""
    if not isinstance(logits, Tensor) or not logits.is_floating_point() \
            or logits.dim() < 2:
        raise _error('logits must be a floating tensor of shape (N, C) or '
                     '(N, C, H, W), got '
                     f'{getattr(logits, "shape", type(logits).__name__)}')
    num_classes = logits.shape[1]
    if num_classes < 2:
        raise _error('logits need C >= 2 classes along dim 1 (a group of one '
                     f'output has no advantage), got C={num_classes} in '
                     f'shape {tuple(logits.shape)}')
    if not isinstance(labels, Tensor):
        raise _error(f'labels must be a tensor, got {type(labels).__name__}')
    group_shape = logits.shape[:1] + logits.shape[2:]
    if labels.is_floating_point():
        if labels.shape != logits.shape:
            raise _error('floating labels are soft targets and need the '
                         f'shape of logits {tuple(logits.shape)}, got '
                         f'{tuple(labels.shape)}')
        hard = False
    elif labels.dtype == torch.bool or labels.is_complex():
        raise _error(f'labels must be integer class indices, got dtype '
                     f'{labels.dtype}')
    else:
        if labels.shape != group_shape:
            raise _error(f'labels of shape {tuple(labels.shape)} do not '
                         f'match logits {tuple(logits.shape)}: expected '
                         f'{tuple(group_shape)}')
        hard = True
    if old_logits is not None:
        if not isinstance(old_logits, Tensor) or \
                not old_logits.is_floating_point():
            raise _error('old_logits must be a floating tensor or None')
        if old_logits.shape != logits.shape:
            raise _error(f'old_logits of shape {tuple(old_logits.shape)} do '
                         f'not match logits {tuple(logits.shape)}')
    return hard


def _check_values(logits: Tensor, old_logits: Optional[Tensor],
                  labels: Tensor, index: Optional[Tensor],
                  ignore_index: Optional[int]) -> None:
    """Data-dependent checks with one host synchronisation.

    Min and max of each tensor (one reduction each, no boolean copy; NaN
    propagates to both) are gathered and read back together. ``index`` is
    the class-index labels with ignored groups set to 0, None for soft
    targets.
    """
    if logits.numel() == 0:
        return
    num_classes = logits.shape[1]
    parts = [torch.stack(torch.aminmax(logits)).double()]
    if old_logits is not None:
        parts.append(torch.stack(torch.aminmax(old_logits)).double())
    checked_labels = labels if index is None else index
    parts.append(torch.stack(torch.aminmax(checked_labels)).double())
    values = torch.cat(parts).tolist()
    if not all(math.isfinite(v) for v in values[:2]):
        raise _error('logits contain NaN or inf')
    if old_logits is not None and not all(
            math.isfinite(v) for v in values[2:4]):
        raise _error('old_logits contain NaN or inf')
    lo, hi = values[-2:]
    if index is None:
        if not (math.isfinite(lo) and math.isfinite(hi) and lo >= 0):
            raise _error('soft-target labels must be finite and >= 0')
        return
    if lo < 0:
        raise _error(f'labels contain {int(lo)}, which is negative and not '
                     f'ignore_index={ignore_index}')
    if hi >= num_classes:
        raise _error(f'labels contain {int(hi)}, outside [0, {num_classes}) '
                     f'and not ignore_index={ignore_index}')


def _prepare(logits, labels, old_logits, accuracy_reward, uniformity,
             clip_eps, background_index, background_scale, ignore_index,
             std_eps, reduction, check_inputs) -> _Prepared:
    hard = _check_shapes(logits, labels, old_logits)
    num_classes = logits.shape[1]
    scale_list = check_options(num_classes, accuracy_reward, uniformity,
                               clip_eps, background_index, background_scale,
                               std_eps, reduction)
    if not hard and uniformity == 'deviation':
        raise _error("uniformity='deviation' needs class-index labels, not "
                     'soft targets')
    if old_logits is not None:
        old_logits = old_logits.detach()
    cdtype = _compute_dtype(logits)
    device = logits.device
    c = float(accuracy_reward)
    if not hard:
        if check_inputs:
            _check_values(logits, old_logits, labels, None, ignore_index)
        num_valid = labels.shape[0] * int(math.prod(labels.shape[2:]))
        target = labels.detach().to(cdtype)
        shape = (1, num_classes) + (1, ) * (labels.dim() - 2)
        if scale_list is not None:
            acc = target * torch.tensor(
                scale_list, dtype=cdtype, device=device).view(shape) * c
        elif background_index is not None:
            scale = torch.ones(num_classes, dtype=cdtype, device=device)
            scale[background_index] = float(background_scale)
            acc = target * scale.view(shape) * c
        else:
            acc = target * c
        return _Prepared(logits, old_logits, None, acc, target, None,
                         num_valid, cdtype)

    labels = labels.long()
    if ignore_index is None:
        valid, num_valid, index = None, labels.numel(), labels
    else:
        valid = labels != ignore_index
        num_valid = valid.sum()
        index = torch.where(valid, labels, 0)
    if check_inputs:
        _check_values(logits, old_logits, labels, index, ignore_index)
    index = index.unsqueeze(1)
    if scale_list is not None:
        scale = torch.tensor(scale_list, dtype=cdtype, device=device)
        acc = scale[index].mul_(c)
    else:
        acc = torch.full(index.shape, c, dtype=cdtype, device=device)
        if background_index is not None:
            acc.masked_fill_(index == background_index,
                             c * float(background_scale))
    return _Prepared(logits, old_logits, index, acc, None, valid, num_valid,
                     cdtype)


# --------------------------------------------------------------- the math
def _centred_rewards(q: Tensor, index: Optional[Tensor], acc: Tensor,
                     uniformity: str, inplace: bool) -> Tuple[Tensor, Tensor]:
    """Rewards minus their group mean, and the group mean.

    Args:
        q (Tensor): old-policy probabilities (N, C, *S); overwritten when
            ``inplace``.
        index (Tensor | None): (N, 1, *S) class indices, None for soft
            targets.
        acc (Tensor): accuracy reward, (N, 1, *S) ``c * s_y`` for indices or
            (N, C, *S) ``c * s * t`` for soft targets.
        uniformity (str): 'prob', 'deviation' or 'none'.
        inplace (bool): reuse the memory of ``q``.

    Returns:
        tuple[Tensor, Tensor]: ``r - mean_j r_j`` (N, C, *S) and
        ``mean_j r_j`` (N, 1, *S).
    """
    num_classes = q.shape[1]
    acc_sum = acc if index is not None else acc.sum(1, keepdim=True)
    out = q if inplace else None
    if uniformity == 'prob':
        # r = acc - q and sum_j q_j = 1, so the mean needs no reduction
        mean = (acc_sum - 1) / num_classes
        d = torch.sub(mean.neg(), q, out=out)
    elif uniformity == 'none':
        mean = acc_sum / num_classes
        d = q.copy_(mean.neg().expand_as(q)) if inplace else \
            mean.neg().expand_as(q).contiguous()
    else:  # 'deviation': -|q_i - (1 - q_y) / (C - 1)| for i != y, 0 at y
        share = (1 - q.gather(1, index)) / (num_classes - 1)
        d = torch.sub(q, share, out=out).abs_().neg_()
        d.scatter_(1, index, acc)
        mean = d.mean(1, keepdim=True)
        return d.sub_(mean), mean
    if index is not None:
        d.scatter_add_(1, index, acc)
    else:
        d.add_(acc)
    return d, mean


def _inv_std(d: Tensor, std_eps: float) -> Tensor:
    """``1 / (std + std_eps)`` per group (N, 1, *S); unbiased std over C."""
    sum_sq = torch.linalg.vecdot(d, d, dim=1).unsqueeze(1)
    return sum_sq.div_(d.shape[1] - 1).sqrt_().add_(std_eps).reciprocal_()


def _normalise(d: Tensor, std_eps: float) -> Tensor:
    """The advantages ``d / (std + std_eps)``, in place."""
    return d.mul_(_inv_std(d, std_eps))


def _log_ratio_exp(logp: Tensor, logq: Tensor) -> Tensor:
    """``exp(log p - log q)`` with the log-ratio clamped (a new tensor)."""
    return torch.sub(logp, logq).clamp_(max=MAX_LOG_RATIO).exp_()


def _surrogate_parts(ratio: Tensor, adv: Tensor,
                     clip_eps: float) -> Tuple[Tensor, Tensor]:
    """``u = ratio * A`` (in the memory of ``ratio``) and ``v = clip(ratio,
    1 - eps, 1 + eps) * A`` (new); the surrogate term is ``min(u, v)``.

    A term is *clipped* (constant, no gradient) iff ``u > v``, i.e.
    ``A > 0, ratio > 1 + eps`` or ``A < 0, ratio < 1 - eps``. Strictly: at a
    tie (ratio exactly on the boundary, or inside the interval where
    ``u == v``) autograd of ``torch.min(u, v)`` sends half the gradient
    through each argument and ``torch.clamp`` passes it at its bounds, so
    the term keeps its full gradient there, as here. ``adv`` may be scaled
    by any positive per-group factor: the mask and ``min`` commute with it.
    """
    v = ratio.clamp(1.0 - clip_eps, 1.0 + clip_eps).mul_(adv)
    return ratio.mul_(adv), v


def _chunk_objective(
        z: Tensor, z_old: Optional[Tensor], index: Optional[Tensor],
        acc: Tensor, uniformity: str, clip_eps: float, std_eps: float,
        cdtype: torch.dtype,
        want_grad: bool) -> Tuple[Tensor, Optional[Tensor], Tensor]:
    """``C * J`` per group and, if wanted, ``C * dJ/dz`` for one chunk.

    With ``w_i = active_i * A_i * ratio_i``, ``C * dJ/dz = w - p * sum_i w_i``
    (``d ratio_i / dz_k = ratio_i * (delta_ik - p_k)``). On-policy
    (``z_old is None``) ``q = p``, ``ratio = 1`` and nothing is clipped.

    ``A = d * s`` with ``d`` the centred rewards and ``s = 1 / (std +
    std_eps)`` > 0 per group; everything is linear in ``A`` (the clip mask
    is invariant to ``s``), so the work is done on ``d`` and ``s`` is
    applied to the per-group sums, saving a pass over the chunk.

    Returns:
        tuple: ``C * J`` (N, *S); ``g`` (N, C, *S) or None; ``s`` (N, 1,
        *S), with ``C * dJ/dz = g * s``.
    """
    logp = F.log_softmax(z, 1, dtype=cdtype)
    if z_old is None:
        p = logp.exp_()
        d = _centred_rewards(p, index, acc, uniformity, inplace=False)[0]
        inv = _inv_std(d, std_eps)
        sum_d = d.sum(1, keepdim=True)
        jc = torch.mul(sum_d.squeeze(1), inv.squeeze(1))  # not a view
        if not want_grad:
            return jc, None, inv
        return jc, d.addcmul_(p, sum_d, value=-1), inv
    logq = F.log_softmax(z_old, 1, dtype=cdtype)
    ratio = _log_ratio_exp(logp, logq)
    d = _centred_rewards(logq.exp_(), index, acc, uniformity, inplace=True)[0]
    inv = _inv_std(d, std_eps)
    u, v = _surrogate_parts(ratio, d, clip_eps)
    del d
    clipped = u > v if want_grad else None
    jc = torch.minimum(u, v, out=v).sum(1).mul_(inv.squeeze(1))
    if not want_grad:
        return jc, None, inv
    w = u.masked_fill_(clipped, 0)
    return jc, w.addcmul_(logp.exp_(), w.sum(1, keepdim=True), value=-1), inv


def _chunks(shape: torch.Size,
            chunk_numel: int) -> Iterator[Tuple[tuple, tuple]]:
    """Index tuples (for logits-shaped, for group-shaped tensors).

    Chunks hold whole samples, or rows (dim 2) of one sample when a sample
    alone exceeds ``chunk_numel``. The logits index also fits (N, 1, *S).
    """
    n = shape[0]
    per_sample = math.prod(shape[1:])
    if n * per_sample <= chunk_numel or n == 0:
        yield (slice(None), ), (slice(None), )
        return
    if per_sample <= chunk_numel or len(shape) < 3:
        step = max(1, chunk_numel // max(per_sample, 1))
        for i in range(0, n, step):
            yield (slice(i, i + step), ), (slice(i, i + step), )
        return
    rows = max(1, chunk_numel // (per_sample // shape[2]))
    for i in range(n):
        for h in range(0, shape[2], rows):
            sl = slice(h, h + rows)
            yield (slice(i, i + 1), slice(None), sl), (slice(i, i + 1), sl)


def _no_autocast(device: torch.device):
    try:
        return torch.autocast(device_type=device.type, enabled=False)
    except (RuntimeError, ValueError):
        return contextlib.nullcontext()


class GRPORMFunction(torch.autograd.Function):
    """Per-group GRPO-RM loss with a closed-form, memory-lean backward.

    ``forward(logits, old_logits, index, acc, valid, uniformity, clip_eps,
    std_eps)`` returns the per-group loss ``-J`` (N, *S) in the compute
    dtype, 0 at ignored groups. Only ``logits`` receives a gradient.

    Backward uses ``dL/dz = -(g / C) * (w - p * sum_i w_i)`` with ``g`` the
    incoming per-group gradient and ``w_i = active_i * A_i * ratio_i``.
    For logits above :data:`SAVE_GRAD_MAX_NUMEL` elements it recomputes each
    chunk from the saved inputs and writes into the gradient tensor
    directly, so no per-class tensor lives between forward and backward
    besides the inputs; smaller logits save their gradient in forward.
    Double backward is not supported.
    """

    @staticmethod
    def forward(ctx, logits, old_logits, index, acc, valid, uniformity,
                clip_eps, std_eps):
        cdtype = _compute_dtype(logits)
        want_grad = ctx.needs_input_grad[0]
        save_grad = want_grad and logits.numel() <= SAVE_GRAD_MAX_NUMEL
        num_classes = logits.shape[1]
        chunks = list(_chunks(logits.shape, CHUNK_NUMEL))
        if len(chunks) == 1:  # no buffers to fill: fewer ops per call
            loss, grad, scale = _chunk_objective(logits, old_logits, index,
                                                 acc, uniformity, clip_eps,
                                                 std_eps, cdtype, save_grad)
            loss.mul_(-1.0 / num_classes)
        else:
            loss = logits.new_empty(logits.shape[:1] + logits.shape[2:],
                                    dtype=cdtype)
            grad = torch.empty(logits.shape, dtype=cdtype,
                               device=logits.device) if save_grad else None
            scale = None
            for idx, gidx in chunks:
                jc, g, inv = _chunk_objective(
                    logits[idx],
                    None if old_logits is None else old_logits[idx],
                    None if index is None else index[idx], acc[idx],
                    uniformity, clip_eps, std_eps, cdtype, save_grad)
                torch.mul(jc, -1.0 / num_classes, out=loss[gidx])
                if save_grad:
                    torch.mul(g, inv, out=grad[idx])
        if valid is not None:
            loss.masked_fill_(~valid, 0)
        ctx.options = (uniformity, clip_eps, std_eps, cdtype, save_grad,
                       logits.dtype)
        if save_grad:
            ctx.save_for_backward(grad, scale, None, None, valid)
        elif want_grad:
            ctx.save_for_backward(logits, old_logits, index, acc, valid)
        return loss

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_loss):
        uniformity, clip_eps, std_eps, cdtype, save_grad, in_dtype = \
            ctx.options
        saved, other, index, acc, valid = ctx.saved_tensors
        num_classes = saved.shape[1]
        # d loss_g / dz = -(1 / C) * (C * dJ/dz); ignored groups get nothing
        coef = grad_loss.to(cdtype) * (-1.0 / num_classes)
        if valid is not None:
            coef = coef.masked_fill(~valid, 0)
        coef = coef.unsqueeze(1)
        if save_grad:  # saved = g, other = its per-group scale (or None)
            if other is not None:
                coef = coef * other
            return (saved * coef).to(in_dtype), *([None] * 7)
        logits, old_logits = saved, other
        out = torch.empty_like(logits)
        with _no_autocast(logits.device):
            for idx, _ in _chunks(logits.shape, CHUNK_NUMEL):
                _, g, inv = _chunk_objective(
                    logits[idx],
                    None if old_logits is None else old_logits[idx],
                    None if index is None else index[idx], acc[idx],
                    uniformity, clip_eps, std_eps, cdtype, True)
                inv = inv.mul_(coef[idx])
                if out.dtype == cdtype:
                    torch.mul(g, inv, out=out[idx])
                else:
                    out[idx] = g.mul_(inv)
        return out, *([None] * 7)


# --------------------------------------------------------------- public API
def compute_grpo_rm_loss(logits: Tensor,
                         labels: Tensor,
                         old_logits: Optional[Tensor] = None,
                         *,
                         accuracy_reward: float = 1.0,
                         uniformity: str = 'prob',
                         clip_eps: float = 0.2,
                         background_index: Optional[int] = None,
                         background_scale: Union[float,
                                                 Sequence[float]] = 0.5,
                         ignore_index: Optional[int] = 255,
                         std_eps: float = 1e-4,
                         reduction: str = 'mean',
                         weight: Optional[Tensor] = None,
                         avg_factor: Optional[Union[float, Tensor]] = None,
                         check_inputs: bool = True) -> Tensor:
    """:func:`grpo_rm_loss` with a per-group weight, ``avg_factor`` and an
    option to skip the data checks (the registered losses call this).

    Args:
        weight (Tensor, optional): per-group weight (N, *S) multiplying the
            per-group loss (MMSeg's pixel-sampler weight, MMPretrain's
            sample weight).
        avg_factor (float | Tensor, optional): for ``reduction='mean'``, the
            denominator replacing the number of non-ignored groups (MMPretrain
            passes the batch size). Not allowed with ``'sum'``; ignored by
            ``'none'``.
        check_inputs (bool): run the data-dependent checks (label range,
            NaN / inf), which cost one reduction per tensor and one host
            synchronisation. Shape and option checks always run.

    See :func:`grpo_rm_loss` for the other arguments and the formula.
    """
    prep = _prepare(logits, labels, old_logits, accuracy_reward, uniformity,
                    clip_eps, background_index, background_scale,
                    ignore_index, std_eps, reduction, check_inputs)
    if weight is not None:
        group_shape = logits.shape[:1] + logits.shape[2:]
        if weight.shape != group_shape:
            raise _error(f'weight of shape {tuple(weight.shape)} does not '
                         f'match the groups {tuple(group_shape)}')
    if avg_factor is not None and reduction == 'sum':
        raise _error("avg_factor cannot be used with reduction='sum'")
    with _no_autocast(logits.device):
        loss = GRPORMFunction.apply(logits, prep.old_logits, prep.index,
                                    prep.acc, prep.valid, uniformity,
                                    float(clip_eps), float(std_eps))
    if weight is not None:
        loss = loss * weight.to(loss.dtype)
    if reduction == 'none':
        return loss
    total = loss.sum()
    if reduction == 'sum':
        return total
    if avg_factor is None:
        denom = prep.num_valid
        if isinstance(denom, Tensor):
            # an all-ignored batch gives 0 / 1 = 0, which still backpropagates
            denom = denom.clamp_min(1).to(total.dtype)
        else:
            denom = max(denom, 1)
    else:
        tiny = torch.finfo(total.dtype).tiny
        denom = avg_factor.clamp_min(tiny).to(total.dtype) if isinstance(
            avg_factor, Tensor) else max(float(avg_factor), tiny)
    return total / denom


def grpo_rm_loss(logits: Tensor,
                 labels: Tensor,
                 old_logits: Optional[Tensor] = None,
                 *,
                 accuracy_reward: float = 1.0,
                 uniformity: str = 'prob',
                 clip_eps: float = 0.2,
                 background_index: Optional[int] = None,
                 background_scale: Union[float, Sequence[float]] = 0.5,
                 ignore_index: Optional[int] = 255,
                 std_eps: float = 1e-4,
                 reduction: str = 'mean') -> Tensor:
    r"""GRPO-RM loss: the C classes are the group of one image or pixel.

    For one group (an image, or a pixel whose label is not ignored) with
    logits ``z``, old-model logits ``z_old`` (no gradient) and label ``y``::

        p_i     = softmax(z)_i,  q_i = softmax(z_old)_i
        ratio_i = exp(log p_i - log q_i)                   (float32)
        r_i     = c * s_y * [i == y] + u_i                 (rewards use q)
        u_i     = -q_i                                     'prob', Eq. (4)
                = -|q_i - (1 - q_y) / (C - 1)|, 0 at y     'deviation'
                = 0                                        'none'
        A_i     = (r_i - mean_j r_j) / (std_j r_j + std_eps)   (unbiased std)
        J       = (1 / C) * sum_i min(ratio_i * A_i,
                                      clip(ratio_i, 1 - eps, 1 + eps) * A_i)
        loss    = -J

    ``s_y`` is ``background_scale`` when ``y == background_index``, else 1,
    or ``background_scale[y]`` when a per-class list is given. With
    ``old_logits=None`` the old policy is the current one, detached
    (``ratio = 1``): the loss value is ~0 but ``dJ/dz = A / C``.

    The gradient is the closed form ``dJ/dz = w - p * sum_i w_i`` with
    ``w_i = active_i * A_i * ratio_i / C``, where a term is inactive
    (clipped) iff ``A_i > 0, ratio_i > 1 + eps`` or ``A_i < 0,
    ratio_i < 1 - eps`` (strictly; at ties it matches autograd of the
    ``torch.min`` / ``torch.clamp`` form). Everything is computed in
    float32 (float64 for float64 logits); the gradient has the dtype of
    ``logits``. ``log(ratio)`` is clamped at :data:`MAX_LOG_RATIO`.

    Generalisation (soft targets): floating ``labels`` of the shape of
    ``logits`` (mixup / cutmix scores ``t``) give the accuracy reward
    ``c * s_i * t_i``, the expectation of the index reward over ``y ~ t``
    (not with ``'deviation'``).

    Args:
        logits (Tensor): (N, C) for classification or (N, C, H, W) for
            segmentation; any floating dtype.
        labels (Tensor): (N,) or (N, H, W) class indices, or soft targets.
        old_logits (Tensor, optional): logits of the old model, the shape of
            ``logits``; never receives a gradient. None: on-policy.
        accuracy_reward (float): ``c``. Defaults to 1.0.
        uniformity (str): 'prob' (Eq. 4, default), 'deviation' (the Eq. 5
            interpretation) or 'none' (accuracy reward only).
        clip_eps (float): ``eps``. Defaults to 0.2.
        background_index (int, optional): class whose accuracy reward is
            scaled by ``background_scale`` (0 on Pascal VOC); None disables.
        background_scale (float | list[float]): the background's scale
            (0.5), or a list of C per-class scales (then no
            ``background_index``).
        ignore_index (int, optional): label of groups that take no part.
            Defaults to 255; None: every group takes part.
        std_eps (float): added to the std. Defaults to 1e-4.
        reduction (str): 'mean' over non-ignored groups, 'sum', or 'none'
            (per-group loss, 0 at ignored positions).

    Returns:
        Tensor: the loss, a scalar or (N, *spatial).

    Raises:
        ValueError: on bad options, shapes, labels or non-finite logits.
    """
    return compute_grpo_rm_loss(
        logits,
        labels,
        old_logits,
        accuracy_reward=accuracy_reward,
        uniformity=uniformity,
        clip_eps=clip_eps,
        background_index=background_index,
        background_scale=background_scale,
        ignore_index=ignore_index,
        std_eps=std_eps,
        reduction=reduction)


@torch.no_grad()
def grpo_rm_stats(logits: Tensor,
                  labels: Tensor,
                  old_logits: Optional[Tensor] = None,
                  *,
                  accuracy_reward: float = 1.0,
                  uniformity: str = 'prob',
                  clip_eps: float = 0.2,
                  background_index: Optional[int] = None,
                  background_scale: Union[float, Sequence[float]] = 0.5,
                  ignore_index: Optional[int] = 255,
                  std_eps: float = 1e-4,
                  check_inputs: bool = False) -> Dict[str, Tensor]:
    """Diagnostics of the objective over the non-ignored groups.

    Returns detached 0-d float32 tensors (keys free of "loss"):

    - ``grpo_reward_mean``: mean of ``sum_i q_i r_i``, the expected reward
      of an output drawn from the old policy (what GRPO's sampled rewards
      estimate; it grows as the model gets the label right).
    - ``grpo_adv_true``: mean advantage of the true class (``sum_i t_i A_i``
      for soft targets).
    - ``grpo_clip_frac``: fraction of the C terms per group that are
      clipped (0 on-policy).
    - ``grpo_ratio_mean``: mean ratio over the C terms per group.

    Arguments as in :func:`grpo_rm_loss`.
    """
    prep = _prepare(logits, labels, old_logits, accuracy_reward, uniformity,
                    clip_eps, background_index, background_scale,
                    ignore_index, std_eps, 'mean', check_inputs)
    cdtype = prep.compute_dtype
    num_classes = logits.shape[1]
    sums = torch.zeros(4, dtype=torch.float64, device=logits.device)
    for idx, gidx in _chunks(logits.shape, CHUNK_NUMEL):
        logq = F.log_softmax(
            (logits if old_logits is None else prep.old_logits)[idx].detach(),
            1,
            dtype=cdtype)
        index = None if prep.index is None else prep.index[idx]
        q = logq.exp()
        d, mean = _centred_rewards(q, index, prep.acc[idx], uniformity,
                                   False)
        reward = torch.linalg.vecdot(q, d, dim=1) + mean.squeeze(1)
        adv = _normalise(d, std_eps)
        if index is None:
            adv_true = torch.linalg.vecdot(prep.target[idx], adv, dim=1)
        else:
            adv_true = adv.gather(1, index).squeeze(1)
        if old_logits is None:
            ratio_sum = torch.full_like(reward, num_classes)
            clip_count = torch.zeros_like(reward)
        else:
            logp = F.log_softmax(logits[idx].detach(), 1, dtype=cdtype)
            ratio = _log_ratio_exp(logp, logq)
            ratio_sum = ratio.sum(1)
            u, v = _surrogate_parts(ratio, adv, clip_eps)
            clip_count = (u > v).sum(1)
        per_group = torch.stack([reward, adv_true, clip_count, ratio_sum])
        if prep.valid is not None:
            per_group = per_group * prep.valid[gidx]
        sums += per_group.flatten(1).sum(1, dtype=torch.float64)
    num = prep.num_valid
    num = num.clamp_min(1).double() if isinstance(num, Tensor) else max(
        num, 1)
    means = sums / num
    means[2:] /= num_classes
    values = means.float().unbind()
    return dict(zip(STATS_KEYS, values))
