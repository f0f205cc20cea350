"""The GRPO-RM formula: plain tensor operations that ``torch.compile`` fuses.

:func:`grpo_rm_terms` is the objective of every group with its options
(:class:`~.grpo_rm_base.Objective`); :func:`grpo_rm_loss` documents them.
The eager path (:mod:`.grpo_rm_eager`) computes the same numbers chunk by
chunk and takes the pieces here it shares: the rewards, the batch reward
statistics and the sampled groups.
"""
from typing import Optional, Tuple

import torch
from torch import Tensor

from .grpo_rm_base import MAX_LOG_RATIO, Objective


def group_rewards(q: Tensor, target: Tensor, scale: Tensor, uniformity: str,
                  uniformity_weight: float) -> Tensor:
    """``r_i = c * s_i * t_i + lambda * u_i`` from the old probabilities.

    Args:
        q (Tensor): old-policy probabilities (N, C, *S).
        target (Tensor): one-hot labels or soft targets (N, C, *S).
        scale (Tensor): (C,) accuracy reward ``c * s_i`` of each class.
        uniformity (str), uniformity_weight (float): ``u`` and ``lambda``.
    """
    shape = (1, -1) + (1, ) * (q.dim() - 2)
    reward = scale.view(shape) * target
    if uniformity == 'prob':
        reward = reward - uniformity_weight * q
    elif uniformity == 'deviation':
        share = (1 - (target * q).sum(1, keepdim=True)) / (q.shape[1] - 1)
        reward = reward - uniformity_weight * (q - share).abs() * (1 - target)
    return reward


def reward_moments(reward: Tensor, valid: Optional[Tensor]) -> Tensor:
    """Count, mean and sum of squared deviations of the rewards of the
    valid groups (3,); chunks combine with :func:`combine_moments`."""
    keep = torch.ones_like(reward[:, :1]) if valid is None else \
        valid.unsqueeze(1).to(reward.dtype)
    count = keep.sum() * reward.shape[1]
    mean = (reward * keep).sum() / count.clamp(min=1)
    return torch.stack([count, mean, ((reward - mean) * keep).square().sum()])


def combine_moments(a: Tensor, b: Tensor) -> Tensor:
    """The moments of two disjoint sets (Chan et al.'s pairwise update)."""
    count = a[0] + b[0]
    delta = b[1] - a[1]
    share = b[0] / count.clamp(min=1)
    return torch.stack([count, a[1] + delta * share,
                        a[2] + b[2] + delta.square() * a[0] * share])


def moments_std(moments: Tensor) -> Tensor:
    """Unbiased std (as ``Tensor.std``) from :func:`reward_moments`."""
    return (moments[2] / (moments[0] - 1).clamp(min=1)).sqrt()


def sample_outputs(logits: Tensor, group_size: int) -> Tensor:
    """``group_size`` outputs of every group drawn from ``softmax(logits)``
    with replacement, from torch's global generator (N, G, *S)."""
    dtype = torch.float64 if logits.dtype == torch.float64 else torch.float32
    probs = logits.detach().to(dtype).softmax(1).movedim(1, -1)
    draws = torch.multinomial(probs.reshape(-1, probs.shape[-1]),
                              group_size, replacement=True)
    return draws.view(probs.shape[:-1] + (group_size, )).movedim(-1, 1)


def grpo_rm_terms(logits: Tensor,
                  old_logits: Optional[Tensor],
                  labels: Tensor,
                  scale: Tensor,
                  samples: Optional[Tensor],
                  valid: Optional[Tensor],
                  opts: Objective,
                  with_stats: bool = True,
                  with_grad: bool = False,
                  reward_std: Optional[Tensor] = None
                  ) -> Tuple[Tensor, Optional[Tensor], Optional[Tensor]]:
    """The objective of every group, in one pass (see :func:`grpo_rm_loss`).

    The outputs ``o`` of a group are its C classes, or the G classes
    ``samples`` drawn from ``q``; ``n`` is their number. With ``with_grad``
    it also gives ``d loss / d logits`` in closed form, from the same
    tensors (what :class:`~.grpo_rm.GRPORMFunction` saves)::

        d ratio_o / d z_k = ratio_o ([o == k] - p_k),   so
        d loss / d z_k    = -(sum_{o = k} w_o - p_k sum_o w_o) / n,
        w_o               = ratio_o A_o if term o has a gradient, else 0

    (a term clipped, or held at ``dual_clip * A``, has none; ``min`` passes
    the gradient of its smaller argument, and at ties both are equal and
    autograd keeps the full one, as here). It does not include the
    ``log(ratio)`` clamp at :data:`MAX_LOG_RATIO`, which autograd would
    zero: the two differ only where the old model is e^40 times less likely
    than the current one.

    Args:
        logits, old_logits: as in :func:`grpo_rm_loss`; computed in float32
            (float64 stays float64).
        labels (Tensor): class indices (N, *S) with none ignored (set to 0),
            or soft targets (N, C, *S).
        scale (Tensor): (C,) accuracy reward ``c * s_i`` of each class.
        samples (Tensor, optional): the sampled outputs (N, G, *S)
            (:func:`sample_outputs`); None: all C classes.
        valid (Tensor, optional): groups that take part (N, *S), for the
            'batch' reward std; None: all.
        opts (Objective): the options.
        with_stats (bool): also the diagnostics (off: None, less work).
        with_grad (bool): also the gradient (off: None).
        reward_std (Tensor, optional): the 'batch' reward std when the
            caller has it (the eager path sees the batch chunk by chunk);
            None: computed here.

    Returns:
        tuple: per-group loss ``-J`` (N, *S); diagnostics (5, N, *S): the
        expected reward ``sum_i q_i r_i``, the true-class advantage, the
        fraction of terms without gradient, the mean ratio, and whether the
        true class is locked out (``A > 0``, ``ratio > 1 + clip_high``),
        weighted by the targets (over the samples of the true class when
        sampled); the gradient (N, C, *S) of the summed loss.
    """
    num_classes = logits.shape[1]
    dtype = torch.float64 if logits.dtype == torch.float64 else torch.float32
    logp = logits.to(dtype).log_softmax(1)
    logq = logp.detach() if old_logits is None else \
        old_logits.detach().to(dtype).log_softmax(1)
    q = logq.exp()
    if labels.is_floating_point():  # targets never get a gradient
        target = labels.detach().to(dtype)
    else:  # one-hot by comparison: fusable, no host synchronisation
        classes = torch.arange(num_classes, device=logits.device)
        target = (classes.view((1, -1) + (1, ) * (logits.dim() - 2))
                  == labels.unsqueeze(1)).to(dtype)
    reward = group_rewards(q, target, scale.to(dtype), opts.uniformity,
                           opts.uniformity_weight)
    expected = (q * reward).sum(1) if with_stats else None
    log_ratio = logp - logq
    rel = reward
    if samples is not None:  # the outputs are the G draws
        reward, log_ratio, target = (t.gather(1, samples)
                                     for t in (reward, log_ratio, target))
        # draws of one class often fill a small group: relative to the
        # first draw equal rewards are exactly 0, so their A is (not a
        # rounding error / std_eps)
        rel = reward - reward[:, :1]
    centred = rel - rel.mean(1, keepdim=True)
    if opts.scale_rewards == 'group':
        adv = centred / (rel.std(1, keepdim=True) + opts.std_eps)
    elif opts.scale_rewards == 'batch':
        if reward_std is None:
            reward_std = moments_std(reward_moments(reward, valid))
        adv = centred / (reward_std + opts.std_eps)
    else:
        adv = centred
    ratio = log_ratio.clamp(max=MAX_LOG_RATIO).exp()
    surrogate = ratio * adv
    clipped = ratio.clamp(1 - opts.clip_low, 1 + opts.clip_high) * adv
    term = torch.minimum(surrogate, clipped)
    held = clipped < surrogate  # terms without gradient
    if opts.dual_clip is not None:
        bound = opts.dual_clip * adv
        dual = (adv < 0) & (bound > term)
        term = torch.where(dual, bound, term)
        held = held | dual
    loss = -term.mean(1)
    stats = grad = None
    if with_stats:
        on_true = target
        if samples is not None:  # the samples of the true class, if any
            hits = target.sum(1, keepdim=True)
            on_true = torch.where(hits > 0, target / hits.clamp(min=1e-30),
                                  0)
        locked = (adv > 0) & (ratio > 1 + opts.clip_high)
        stats = torch.stack([expected, (on_true * adv).sum(1),
                             held.to(dtype).mean(1), ratio.mean(1),
                             (on_true * locked).sum(1)]).detach()
    if with_grad:
        w = torch.where(held, 0, surrogate).detach()
        per_class = w if samples is None else \
            torch.zeros_like(logp).scatter_add_(1, samples, w)
        grad = (per_class - logp.detach().exp() * w.sum(1, keepdim=True)) / (
            -w.shape[1])
    return loss, stats, grad
