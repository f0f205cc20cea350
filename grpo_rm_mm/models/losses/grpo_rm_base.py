"""Module logic shared by the MMSeg and MMPretrain GRPO-RM losses.

The options check (:func:`check_options`) lives here too, so that both the
functional form and the modules' constructors use the same one.
"""
import math
import numbers
from typing import Dict, NamedTuple, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.logging import MessageHub
from torch import Tensor

#: reward variants: Eq. (4) of the paper, the Eq. (5) interpretation, none.
UNIFORMITIES = ('prob', 'deviation', 'none')
#: advantage scaling: the paper's per group, TRL's per batch, Dr. GRPO's none.
SCALE_REWARDS = ('group', 'batch', 'none')
REDUCTIONS = ('mean', 'sum', 'none')
#: diagnostics; no key contains "loss" (MMEngine sums every key that does).
STATS_KEYS = ('grpo_reward_mean', 'grpo_adv_true', 'grpo_clip_frac',
              'grpo_ratio_mean', 'grpo_true_clipped')
#: log(p_i / q_i) is clamped here (ratio <= 2.4e17), so an old model that
#: diverged wildly cannot overflow a sum; below it the objective is exact.
MAX_LOG_RATIO = 40.0
_PREFIX = 'grpo_rm_loss: '


class Objective(NamedTuple):
    """The options of the formula, as :func:`~.grpo_rm.grpo_rm_terms`
    takes them (hashable: ``torch.compile`` specialises on them).

    ``clip_low`` / ``clip_high``: the ratio is clipped to
    ``[1 - clip_low, 1 + clip_high]``; the rest as in
    :func:`~.grpo_rm.grpo_rm_loss`.
    """
    uniformity: str = 'prob'
    uniformity_weight: float = 1.0
    clip_low: float = 0.2
    clip_high: float = 0.2
    dual_clip: Optional[float] = None
    scale_rewards: str = 'group'
    std_eps: float = 1e-4


def error(msg: str) -> ValueError:
    return ValueError(_PREFIX + msg)


def _finite(name: str, value) -> None:
    if (not isinstance(value, numbers.Real) or isinstance(value, bool)
            or not math.isfinite(value)):
        raise error(f'{name} must be a finite number, got {value!r}')


def check_options(num_classes: Optional[int], accuracy_reward: float,
                  uniformity: str, clip_eps: float,
                  background_index: Optional[int], background_scale: float,
                  reward_scale: Optional[Sequence[float]], std_eps: float,
                  reduction: str, scale_rewards: str = 'group',
                  clip_eps_high: Optional[float] = None,
                  dual_clip: Optional[float] = None,
                  uniformity_weight: float = 1.0,
                  group_size: Optional[int] = None) -> None:
    """Refuse bad options with a message naming the key and value.

    ``num_classes=None`` (a constructor, before any logits are seen) skips
    the checks that need the class count.
    """
    if uniformity not in UNIFORMITIES:
        raise error(f'unknown uniformity={uniformity!r}, expected one of '
                    f'{UNIFORMITIES}')
    if scale_rewards not in SCALE_REWARDS:
        raise error(f'unknown scale_rewards={scale_rewards!r}, expected one '
                    f'of {SCALE_REWARDS}')
    if reduction not in REDUCTIONS:
        raise error(f'unknown reduction={reduction!r}, expected one of '
                    f'{REDUCTIONS}')
    for name, value in (('accuracy_reward', accuracy_reward),
                        ('clip_eps', clip_eps), ('std_eps', std_eps),
                        ('background_scale', background_scale),
                        ('uniformity_weight', uniformity_weight)):
        _finite(name, value)
    if clip_eps < 0:
        raise error(f'clip_eps must be >= 0, got {clip_eps}')
    if clip_eps_high is not None:
        _finite('clip_eps_high', clip_eps_high)
        if clip_eps_high < 0:
            raise error(f'clip_eps_high must be >= 0, got {clip_eps_high}')
    if dual_clip is not None:
        _finite('dual_clip', dual_clip)
        upper = 1 + (clip_eps if clip_eps_high is None else clip_eps_high)
        if not dual_clip > upper:
            raise error(f'dual_clip must be > 1 + the upper clip ({upper:g})'
                        f', got {dual_clip}')
    if uniformity_weight < 0:
        raise error(f'uniformity_weight must be >= 0, got '
                    f'{uniformity_weight}')
    if accuracy_reward == 0 and (uniformity == 'none'
                                 or uniformity_weight == 0):
        raise error('accuracy_reward=0 without a uniformity reward gives '
                    'every output the same reward (no advantage)')
    if group_size is not None and (
            not isinstance(group_size, numbers.Integral)
            or isinstance(group_size, bool) or group_size < 2):
        raise error(f'group_size must be an int >= 2 (sampled outputs per '
                    f'group) or None (all C classes), got {group_size!r}')
    if std_eps <= 0:  # equal rewards in a group: 0 / (0 + std_eps)
        raise error(f'std_eps must be > 0, got {std_eps}')
    if reward_scale is None:
        if background_index is not None and not (
                isinstance(background_index, numbers.Integral)
                and 0 <= background_index < (num_classes or math.inf)):
            raise error(f'background_index={background_index!r} is not a '
                        f'class index in [0, {num_classes or "C"})')
        return
    if background_index is not None:
        raise error('give either background_index (with background_scale) '
                    'or a per-class reward_scale list, not both')
    if isinstance(reward_scale, (str, numbers.Number)) or not isinstance(
            reward_scale, Sequence):
        raise error(f'reward_scale must be a list of C floats, got '
                    f'{reward_scale!r}')
    if num_classes is not None and len(reward_scale) != num_classes:
        raise error(f'reward_scale needs C={num_classes} values, got '
                    f'{len(reward_scale)}')
    for value in reward_scale:
        _finite('reward_scale', value)


class GRPORMLossBase(nn.Module):
    """Options, the old-logits channel and the diagnostics of both losses.

    Args:
        accuracy_reward, uniformity, clip_eps, background_index,
        background_scale, reward_scale, std_eps, reduction, check_inputs,
        compile, scale_rewards, clip_eps_high, dual_clip, uniformity_weight,
        group_size: as in :func:`~.grpo_rm.grpo_rm_loss` (the same
            defaults: the paper's method); checked here, when the model is
            built.
        loss_weight (float): Defaults to 1.0.
        loss_name (str): key of the loss in the log. Defaults to 'loss_grpo'.
        log_stats (bool): keep the diagnostics (:data:`STATS_KEYS`, computed
            in the loss's own pass) in :attr:`last_stats` and, in training,
            push them to the current ``MessageHub`` as
            ``train/{stats_prefix}{key}`` scalars, which MMEngine's
            ``LogProcessor`` prints with the losses. Defaults to False.
        stats_prefix (str): e.g. 'aux_0.'; the old-model hook sets it per
            head like MMSeg prefixes the heads' losses. Defaults to ''.
    """

    criterion = None  # the functional form, set by the subclasses

    def __init__(self,
                 accuracy_reward: float = 1.0,
                 uniformity: str = 'prob',
                 clip_eps: float = 0.2,
                 background_index: Optional[int] = None,
                 background_scale: float = 0.5,
                 reward_scale: Optional[Sequence[float]] = None,
                 std_eps: float = 1e-4,
                 reduction: str = 'mean',
                 loss_weight: float = 1.0,
                 loss_name: str = 'loss_grpo',
                 check_inputs: bool = True,
                 log_stats: bool = False,
                 stats_prefix: str = '',
                 compile: bool = False,
                 scale_rewards: str = 'group',
                 clip_eps_high: Optional[float] = None,
                 dual_clip: Optional[float] = None,
                 uniformity_weight: float = 1.0,
                 group_size: Optional[int] = None) -> None:
        super().__init__()
        # a config typo fails when the model is built, not at the first step
        check_options(None, accuracy_reward, uniformity, clip_eps,
                      background_index, background_scale, reward_scale,
                      std_eps, reduction, scale_rewards, clip_eps_high,
                      dual_clip, uniformity_weight, group_size)
        self.options = dict(
            accuracy_reward=accuracy_reward, uniformity=uniformity,
            clip_eps=clip_eps, background_index=background_index,
            background_scale=background_scale, std_eps=std_eps,
            reward_scale=None if reward_scale is None else
            [float(v) for v in reward_scale], scale_rewards=scale_rewards,
            clip_eps_high=clip_eps_high, dual_clip=dual_clip,
            uniformity_weight=uniformity_weight, group_size=group_size)
        self.reduction = reduction
        self.loss_weight = loss_weight
        self._loss_name = loss_name
        self.check_inputs = check_inputs
        self.log_stats = log_stats
        self.stats_prefix = stats_prefix
        self.compile = compile
        self.last_stats: Dict[str, Tensor] = {}
        #: compute the diagnostics even without ``log_stats`` (kept in
        #: :attr:`last_stats`, not logged), and the old model's mean
        #: probability of the labelled class in units of chance, 1 / C
        #: (:attr:`old_true_prob`): the old-model hook's lock-out check in
        #: the first iterations
        self.watch_stats = False
        self.old_true_prob: Optional[Tensor] = None
        self._old_logits: Optional[Tensor] = None
        self._old_align_corners = False

    @property
    def loss_name(self) -> str:
        """Key of the loss in the log dict (MMSeg convention)."""
        return self._loss_name

    def extra_repr(self) -> str:
        options = dict(self.options, loss_weight=self.loss_weight)
        return ', '.join(f'{k}={v!r}' for k, v in options.items()
                         if v is not None)

    # ------------------------------------------------------ old logits
    def set_old_logits(self,
                       old_logits: Tensor,
                       align_corners: bool = False) -> None:
        """The one channel for pi_theta_old's logits (the old-model hook).

        One-shot: the next forward that records gradients consumes them
        (MMSeg's OHEM sampler first calls the loss under ``no_grad``; that
        call reads them without using them up). When their spatial size
        differs from the logits the loss receives (``loss_by_feat`` resizes
        the head's output to the label size first) they are resized by the
        same op (bilinear, the head's ``align_corners``), once, so identical
        old and current weights give a ratio of 1.

        Args:
            old_logits (Tensor): (N, C) or (N, C, h, w); detached here.
            align_corners (bool): the head's ``align_corners``.
        """
        if not isinstance(old_logits, Tensor) or old_logits.dim() < 2:
            raise ValueError(f'{type(self).__name__}.set_old_logits: expected '
                             'a tensor (N, C, ...), got '
                             f'{getattr(old_logits, "shape", old_logits)}')
        self._old_logits = old_logits.detach()
        self._old_align_corners = bool(align_corners)

    def _take_old_logits(self, cls_score: Tensor,
                         explicit: Optional[Tensor]) -> Optional[Tensor]:
        """The old logits of this call: explicit > handed over > None."""
        stored = self._old_logits
        if torch.is_grad_enabled():
            self._old_logits = None
        if explicit is not None:
            return explicit
        if stored is None or stored.shape[2:] == cls_score.shape[2:]:
            return stored
        if stored.dim() != 4 or cls_score.dim() != 4 or \
                stored.shape[:2] != cls_score.shape[:2]:
            raise ValueError(f'{type(self).__name__}: old logits of shape '
                             f'{tuple(stored.shape)} do not match the logits '
                             f'{tuple(cls_score.shape)} and cannot be resized')
        # the op of mmseg.models.utils.resize in BaseDecodeHead.loss_by_feat
        return F.interpolate(stored, size=cls_score.shape[2:],
                             mode='bilinear',
                             align_corners=self._old_align_corners)

    # ------------------------------------------------------ computation
    def _loss(self, cls_score: Tensor, label: Tensor,
              old_logits: Optional[Tensor], weight: Optional[Tensor],
              avg_factor, reduction_override: Optional[str],
              ignore_index: Optional[int]) -> Tensor:
        old = self._take_old_logits(cls_score, old_logits)
        out = self.criterion(
            cls_score, label, old, **self.options,
            ignore_index=ignore_index,
            reduction=reduction_override or self.reduction, weight=weight,
            avg_factor=avg_factor, check_inputs=self.check_inputs,
            compile=self.compile,
            return_stats=self.log_stats or self.watch_stats)
        if self.log_stats or self.watch_stats:
            out, self.last_stats = out
        if self.log_stats:
            self._push(self.last_stats)
        if self.watch_stats:
            self.old_true_prob = _true_class_prob(
                cls_score if old is None else old, label,
                ignore_index) * cls_score.shape[1]
        return self.loss_weight * out

    def _push(self, stats: Dict[str, Tensor]) -> None:
        # only a Runner's hub that exists; never create one here
        if self.training and getattr(MessageHub, '_instance_dict', None):
            hub = MessageHub.get_current_instance()
            for key, value in stats.items():
                hub.update_scalar(f'train/{self.stats_prefix}{key}', value)


@torch.no_grad()
def _true_class_prob(logits: Tensor, labels: Tensor,
                     ignore_index: Optional[int]) -> Tensor:
    """Mean probability of the labelled class (targets: their expectation)
    over the groups that take part."""
    probs = logits.detach().float().softmax(1)
    if labels.is_floating_point():
        return (probs * labels).sum(1).mean()
    valid = torch.ones_like(labels, dtype=torch.bool) if ignore_index is \
        None else labels != ignore_index
    index = labels.long().masked_fill(~valid, 0).unsqueeze(1)
    true = probs.gather(1, index).squeeze(1)
    return (true * valid).sum() / valid.sum().clamp(min=1)
