"""GRPO-RM (arXiv 2511.15256): the functional form and the MMSeg loss.

Laid out like MMSeg's ``cross_entropy_loss.py``: :func:`grpo_rm_loss` is the
functional entry point, :class:`GRPORMLoss` the registered module. The
formula itself is :func:`~.grpo_rm_formula.grpo_rm_terms`, plain tensor
operations that ``torch.compile`` fuses: MMEngine's ``compile`` traces
autograd through it; the loss's own ``compile=True`` compiles it with its
closed-form gradient (:class:`GRPORMFunction`); eagerly the same numbers
come chunk by chunk from :func:`~.grpo_rm_eager.eager_terms`.
"""
import math
import warnings
from typing import Dict, Optional, Sequence, Tuple, Union

import torch
from mmseg.models.losses.utils import weight_reduce_loss
from mmseg.registry import MODELS
from torch import Tensor

from .grpo_rm_base import (STATS_KEYS, GRPORMLossBase, Objective,
                           check_options, error)
from .grpo_rm_eager import eager_terms
from .grpo_rm_formula import grpo_rm_terms, sample_outputs


class GRPORMFunction(torch.autograd.Function):
    """The loss with the gradient ``terms`` computes in closed form.

    ``terms`` is :func:`grpo_rm_terms` compiled, or
    :func:`~.grpo_rm_eager.eager_terms`. Autograd through the formula's
    ~30 operations is what made the loss slow, compiled too
    (``benchmarks/README.md``); saving the gradient keeps one tensor the
    size of the logits, as cross-entropy keeps its log-probabilities. The
    saved gradient does not record its own dependence on the logits, so a
    double backward (``create_graph=True``, ``gradgradcheck``) is refused.
    """

    @staticmethod
    def forward(ctx, terms, logits, *args):
        loss, stats, grad = terms(logits, *args, with_grad=True)
        ctx.save_for_backward(grad)
        ctx.in_dtype = logits.dtype
        if stats is not None:
            ctx.mark_non_differentiable(stats)
        return loss, stats

    @staticmethod
    def backward(ctx, grad_loss, _):
        if torch.is_grad_enabled():  # create_graph=True
            raise RuntimeError(
                'grpo_rm_loss: no double backward (create_graph=True): its '
                'saved closed-form gradient would be taken as a constant')
        grad, = ctx.saved_tensors
        grad = grad * grad_loss.unsqueeze(1).to(grad.dtype)
        return (None, grad.to(ctx.in_dtype)) + (None, ) * 7


_compiled = None  # torch.compile(grpo_rm_terms), once per process


def _terms(compile: bool, *args) -> Tuple[Tensor, Optional[Tensor]]:
    """Loss and diagnostics: autograd through the formula when a caller
    compiles (MMEngine's ``compile``), else the closed-form gradient, from
    the formula compiled here or from the eager chunked path."""
    global _compiled
    if torch.compiler.is_compiling():
        return grpo_rm_terms(*args)[:2]
    if compile and _compiled is not False:
        try:
            if _compiled is None:
                _compiled = torch.compile(grpo_rm_terms)
            return GRPORMFunction.apply(_compiled, *args)
        except torch.OutOfMemoryError:
            raise  # the memory, not the compiler: compile stays on
        except Exception as exc:  # no working compiler: eager, warn once
            reason = f'{exc!r:.200}'
        out = GRPORMFunction.apply(eager_terms, *args)  # a genuine error
        _compiled = False  # re-raises here, and compile stays on
        warnings.warn(f'GRPO-RM loss: torch.compile failed ({reason}); the '
                      'loss runs eagerly in this process')
        return out
    return GRPORMFunction.apply(eager_terms, *args)


def _check(logits, labels, old_logits, ignore_index, weight, avg_factor,
           reduction, uniformity, check_data):
    """Shapes once per call, then the data in one host synchronisation.

    Returns:
        tuple: labels for :func:`grpo_rm_terms` (ignored ones set to 0),
        the mask of valid groups (or None) and their number.
    """
    if not isinstance(logits, Tensor) or not logits.is_floating_point() \
            or logits.dim() < 2 or logits.shape[1] < 2:
        raise error('logits must be a floating tensor (N, C) or (N, C, H, '
                    'W) with C >= 2 classes (a group of one output has no '
                    'advantage), got '
                    f'{getattr(logits, "shape", type(logits).__name__)}')
    group_shape = logits.shape[:1] + logits.shape[2:]
    soft = isinstance(labels, Tensor) and labels.is_floating_point()
    if not isinstance(labels, Tensor) or labels.dtype == torch.bool or \
            labels.is_complex():
        raise error('labels must be integer class indices or floating soft '
                    f'targets, got {getattr(labels, "dtype", labels)!r}')
    if labels.shape != (logits.shape if soft else group_shape):
        raise error(f'labels of shape {tuple(labels.shape)} do not match '
                    f'logits {tuple(logits.shape)}: expected '
                    f'{tuple(logits.shape if soft else group_shape)}')
    if soft and uniformity == 'deviation':
        raise error("uniformity='deviation' needs class-index labels, not "
                    'soft targets')
    if old_logits is not None and (not isinstance(old_logits, Tensor) or
                                   old_logits.shape != logits.shape):
        raise error('old_logits of shape '
                    f'{tuple(getattr(old_logits, "shape", ()))} do not '
                    f'match logits {tuple(logits.shape)}')
    if weight is not None and weight.shape != group_shape:
        raise error(f'weight of shape {tuple(weight.shape)} does not match '
                    f'the groups {tuple(group_shape)}')
    if avg_factor is not None:
        if reduction == 'sum':
            raise error("avg_factor cannot be used with reduction='sum'")
        if not isinstance(avg_factor, Tensor) and not avg_factor > 0:
            raise error(f'avg_factor must be > 0, got {avg_factor!r}')
    valid, num_valid = None, math.prod(group_shape)
    if not soft:
        labels = labels.long()
        if ignore_index is not None:
            valid = labels != ignore_index
            num_valid = valid.sum()
            labels = labels.masked_fill(~valid, 0)
    if check_data and logits.numel() and not torch.compiler.is_compiling():
        _check_data(logits, old_logits, labels, soft, avg_factor,
                    ignore_index)
    return labels, valid, num_valid


def _check_data(logits, old_logits, labels, soft, avg_factor, ignore_index):
    checked = {'logits': logits, 'old_logits': old_logits, 'labels': labels,
               'soft-target sums': labels.sum(1) if soft else None,
               'avg_factor': avg_factor}
    checked = {k: v.detach() for k, v in checked.items()
               if isinstance(v, Tensor)}
    values = torch.cat([torch.stack(torch.aminmax(v)).double().flatten()
                        for v in checked.values()]).tolist()  # one sync
    low, high = dict(zip(checked, values[::2])), dict(
        zip(checked, values[1::2]))
    for name in ('logits', 'old_logits'):
        if name in low and not math.isfinite(low[name] + high[name]):
            raise error(f'{name} contain NaN or inf')
    if 'avg_factor' in low and not low['avg_factor'] > 0:
        raise error(f'avg_factor must be > 0, got {low["avg_factor"]}')
    lo, hi = low['labels'], high['labels']
    if soft:
        sums = (low['soft-target sums'], high['soft-target sums'])
        if not (lo >= 0 and math.isfinite(hi)):
            raise error('soft-target labels must be finite and >= 0, got '
                        f'values in [{lo}, {hi}]')
        if not all(abs(s - 1) <= 1e-3 for s in sums):
            raise error('soft-target labels must sum to 1 over the C '
                        f'classes of each group (within 1e-3), got sums in '
                        f'[{sums[0]:.6g}, {sums[1]:.6g}]')
    elif lo < 0:
        raise error(f'labels contain {int(lo)}, which is negative and not '
                    f'ignore_index={ignore_index}')
    elif hi >= logits.shape[1]:
        raise error(f'labels contain {int(hi)}, outside [0, '
                    f'{logits.shape[1]}) and not ignore_index={ignore_index}')


def grpo_rm_loss(logits: Tensor,
                 labels: Tensor,
                 old_logits: Optional[Tensor] = None,
                 *,
                 accuracy_reward: float = 1.0,
                 uniformity: str = 'prob',
                 clip_eps: float = 0.2,
                 background_index: Optional[int] = None,
                 background_scale: float = 0.5,
                 reward_scale: Optional[Sequence[float]] = None,
                 ignore_index: Optional[int] = 255,
                 std_eps: float = 1e-4,
                 reduction: str = 'mean',
                 weight: Optional[Tensor] = None,
                 avg_factor: Optional[Union[float, Tensor]] = None,
                 check_inputs: bool = True,
                 compile: bool = False,
                 return_stats: bool = False,
                 scale_rewards: str = 'group',
                 clip_eps_high: Optional[float] = None,
                 dual_clip: Optional[float] = None,
                 uniformity_weight: float = 1.0,
                 group_size: Optional[int] = None
                 ) -> Union[Tensor, Tuple[Tensor, Dict[str, Tensor]]]:
    r"""GRPO-RM loss: the C classes are the group of one image or pixel.

    For one group (an image, or a pixel whose label is not ignored) with
    logits ``z``, old-model logits ``z_old`` (no gradient) and label ``y``::

        p_i     = softmax(z)_i,  q_i = softmax(z_old)_i
        ratio_i = exp(log p_i - log q_i)                   (float32)
        r_i     = c * s_y * [i == y] + lambda * u_i        (rewards use q)
        u_i     = -q_i                                     'prob', Eq. (4)
                = -|q_i - (1 - q_y) / (C - 1)|, 0 at y     'deviation'
                = 0                                        'none'
        A_i     = (r_i - mean_j r_j) / (std_j r_j + std_eps)   (unbiased std)
        J       = (1 / C) * sum_i min(ratio_i * A_i,
                                      clip(ratio_i, 1 - eps, 1 + eps) * A_i)
        loss    = -J

    ``s_y`` is ``background_scale`` when ``y == background_index``, else 1,
    or ``reward_scale[y]`` (the per-class reward scale). With
    ``old_logits=None`` the old policy is the current one, detached
    (``ratio = 1``): the loss value is ~0 but ``dJ/dz = A / C``.
    ``log(ratio)`` is clamped at :data:`~.grpo_rm_base.MAX_LOG_RATIO`.

    The defaults are the paper's method. The options GRPO users know from
    TRL's ``GRPOConfig`` and veRL change one piece of it each
    (``shared/docs/method.md``, "What GRPO-RM is, in cross-entropy terms")::

        scale_rewards='group'  A_i = (r_i - mean_j r_j) / (std_j r_j + std_eps)
                     ='batch'  ... / (std of every reward of every valid group
                               of the call + std_eps)   TRL scale_rewards
                     ='none'   A_i = r_i - mean_j r_j   Dr. GRPO; TRL 'none',
                                                         veRL norm_adv_by_std_
                                                         in_grpo=False
        clip_eps_high          clip(ratio, 1 - eps, 1 + eps_high)  DAPO's
                               clip-higher; TRL epsilon_high, veRL
                               clip_ratio_high
        dual_clip=c            for A_i < 0: max(min(ratio A, clip(ratio) A),
                               c A)   PPO's dual clip, veRL clip_ratio_c
        uniformity_weight      lambda above (0: accuracy only; with
                               accuracy_reward=0: uniformity only)
        group_size=G           the outputs are G classes o_1..o_G drawn
                               from q with replacement, as GRPO samples
                               completions: A over the G samples and
                               J = (1 / G) sum_g min(ratio_{o_g} A_g,
                               clip(ratio_{o_g}) A_g)

    On-policy with Eq. (4), ``r - mean(r) = lambda * (t - q)`` for the
    target ``t = a onehot(y) + (1 - a) / C``, ``a = c s_y / lambda``: 'none'
    is cross-entropy towards ``t`` divided by C (``lambda = c = 1``, no
    background penalty: plain CE / C), 'group' the same with every group's
    gradient rescaled to norm ``sqrt(C - 1) / C``.

    'batch' is per process (like BN against SyncBN: each rank divides by
    the std of its own batch). The dual clip bounds the push of a ratio
    that explodes on a negative advantage (the clipped objective alone
    does not): a term held at ``c A`` has no gradient. TRL's ``delta``
    (two-sided clipping) clamps the unclipped ratio at ``delta`` instead;
    for ``delta > 1 + eps_high`` that is the same objective and gradient
    as ``dual_clip=delta`` (for ``A > 0`` both leave the term alone). The
    samples come from torch's global generator (MMEngine's
    ``randomness.seed`` makes a run repeat; ignored groups draw too).

    Soft targets (mixup / cutmix scores ``t``, floating ``labels`` of the
    shape of ``logits``, summing to 1) give the accuracy reward
    ``c * s_i * t_i``, the expectation of the index reward over ``y ~ t``
    (not with 'deviation').

    Reduction as MMSeg's ``weight_reduce_loss``: the per-group loss times
    ``weight``, then 'none', 'sum', or 'mean' = sum / ``avg_factor``,
    which defaults to the number of non-ignored groups.

    Args:
        logits (Tensor): (N, C) or (N, C, H, W); any floating dtype.
        labels (Tensor): (N,) or (N, H, W) class indices, or soft targets.
        old_logits (Tensor, optional): the old model's logits, the shape of
            ``logits``; never receives a gradient. None: on-policy.
        accuracy_reward (float): ``c``. Defaults to 1.0.
        uniformity (str): 'prob' (Eq. 4, default), 'deviation' (the Eq. 5
            interpretation) or 'none' (accuracy reward only).
        clip_eps (float): ``eps``. Defaults to 0.2.
        background_index (int, optional): class whose accuracy reward is
            scaled by ``background_scale`` (0 on Pascal VOC).
        background_scale (float): Defaults to 0.5.
        reward_scale (list[float], optional): C per-class scales ``s``
            instead of ``background_index`` / ``background_scale``.
        ignore_index (int, optional): label of groups that take no part.
            Defaults to 255; None: every group takes part.
        std_eps (float): added to the std. Defaults to 1e-4.
        reduction (str): 'mean', 'sum' or 'none' (per group, 0 if ignored).
        weight (Tensor, optional): per-group weight (N, *S).
        avg_factor (float | Tensor, optional): denominator of the mean,
            > 0; not with 'sum'.
        check_inputs (bool): the data checks (label range, NaN / inf, soft
            target sums, a tensor ``avg_factor``): one host sync.
            Defaults to True.
        compile (bool): run the formula through ``torch.compile``, once
            per process (eagerly, warning once, when no compiler
            works). Defaults to False, like MMEngine's ``compile``.
        return_stats (bool): also return the diagnostics, means over the
            valid groups of the same pass (:data:`STATS_KEYS`);
            ``grpo_true_clipped`` is the fraction of groups whose true
            class is locked out: ``A_y > 0`` and ``ratio_y > 1 + eps_high``,
            so no gradient reaches it until the old model is refreshed.
        scale_rewards (str): 'group' (default), 'batch' or 'none'.
        clip_eps_high (float, optional): upper clip; None: ``clip_eps``.
        dual_clip (float, optional): > 1 + the upper clip (veRL's default
            is 3); None: off.
        uniformity_weight (float): ``lambda`` >= 0. Defaults to 1.0.
        group_size (int, optional): G >= 2 sampled outputs per group;
            None: the C classes (the paper).

    Returns:
        Tensor | tuple[Tensor, dict]: the loss, with the diagnostics.
    """
    check_options(
        logits.shape[1] if isinstance(logits, Tensor) and logits.dim() > 1
        else None, accuracy_reward, uniformity, clip_eps, background_index,
        background_scale, reward_scale, std_eps, reduction, scale_rewards,
        clip_eps_high, dual_clip, uniformity_weight, group_size)
    labels, valid, num_valid = _check(logits, labels, old_logits,
                                      ignore_index, weight, avg_factor,
                                      reduction, uniformity, check_inputs)
    num_classes = logits.shape[1]
    scale = [1.0] * num_classes if reward_scale is None else reward_scale
    if background_index is not None:
        scale[background_index] = background_scale
    scale = torch.tensor(scale, device=logits.device) * accuracy_reward
    opts = Objective(
        uniformity, float(uniformity_weight), float(clip_eps),
        float(clip_eps if clip_eps_high is None else clip_eps_high),
        None if dual_clip is None else float(dual_clip), scale_rewards,
        float(std_eps))
    samples = None if group_size is None else sample_outputs(
        logits if old_logits is None else old_logits, group_size)
    with torch.autocast(logits.device.type, enabled=False):
        loss, stats = _terms(compile, logits, old_logits, labels, scale,
                             samples, valid, opts, return_stats)
    if valid is not None:
        loss = torch.where(valid, loss, 0)
    if reduction == 'mean' and avg_factor is None:
        avg_factor = num_valid
    loss = weight_reduce_loss(loss, weight, reduction, avg_factor)
    if not return_stats:
        return loss
    if valid is not None:
        stats = torch.where(valid, stats, 0)
    means = stats.flatten(1).sum(1) / max(num_valid, 1) if isinstance(
        num_valid, int) else stats.flatten(1).sum(1) / num_valid.clamp(1)
    return loss, dict(zip(STATS_KEYS, means.float().unbind()))


@MODELS.register_module()
class GRPORMLoss(GRPORMLossBase):
    """GRPO-RM loss for any MMSeg decode head (auxiliary heads included)::

        decode_head=dict(..., loss_decode=dict(
            type='GRPORMLoss', background_index=0, loss_weight=1.0))

    Each pixel is a group of C outputs (:func:`grpo_rm_loss`). The old
    policy's logits come from :meth:`set_old_logits` (``GRPOOldModelHook``)
    or the ``old_logits`` argument; without them the loss is on-policy.
    ``weight`` is MMSeg's pixel-sampler weight (N, H, W); the mean is over
    the non-ignored pixels (MMSeg's ``avg_non_ignore=True``).

    Args: see :class:`~.grpo_rm_base.GRPORMLossBase`.
    """

    criterion = staticmethod(grpo_rm_loss)

    def forward(self,
                cls_score: Tensor,
                label: Tensor,
                weight: Optional[Tensor] = None,
                avg_factor: Optional[Union[float, Tensor]] = None,
                reduction_override: Optional[str] = None,
                ignore_index: Optional[int] = 255,
                old_logits: Optional[Tensor] = None,
                **kwargs) -> Tensor:
        """Compute the loss of logits (N, C, H, W) and labels (N, H, W)."""
        return self._loss(cls_score, label, old_logits, weight, avg_factor,
                          reduction_override, ignore_index)
