"""GRPO-RM as an MMSegmentation loss (``decode_head.loss_decode``).

Also holds :class:`GRPORMLossBase`, the module logic shared with the
MMPretrain loss (:mod:`.grpo_rm_cls_loss`): options, the one-shot old-logits
hand-off and the diagnostics. The math is in :mod:`.grpo_rm`.
"""
from typing import Dict, Optional, Sequence, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.logging import MessageHub
from mmseg.registry import MODELS
from torch import Tensor

from .grpo_rm import check_options, compute_grpo_rm_loss, grpo_rm_stats


class GRPORMLossBase(nn.Module):
    """Module logic common to the MMSeg and MMPretrain GRPO-RM losses.

    Args:
        accuracy_reward (float): ``c``. Defaults to 1.0.
        uniformity (str): 'prob' (Eq. 4), 'deviation' (the Eq. 5
            interpretation) or 'none'. Defaults to 'prob'.
        clip_eps (float): ratio clip. Defaults to 0.2.
        background_index (int, optional): class whose accuracy reward is
            scaled by ``background_scale`` (0 on Pascal VOC). Defaults to None.
        background_scale (float): Defaults to 0.5.
        reward_scale (list[float], optional): per-class accuracy-reward scale
            (C values), the general form of the background penalty; not
            together with ``background_index``.
        std_eps (float): added to the group std. Defaults to 1e-4.
        reduction (str): 'mean', 'sum' or 'none'. Defaults to 'mean'.
        loss_weight (float): Defaults to 1.0.
        loss_name (str): key of the loss in the log. Defaults to 'loss_grpo'.
        check_inputs (bool): data checks (label range, NaN / inf) at the
            cost of one host synchronisation per call. Defaults to True.
        log_stats (bool): after each forward, compute the diagnostics of
            :func:`grpo_rm_stats` (a second pass over the logits, under
            ``no_grad``) into :attr:`last_stats` and, in training mode, push
            them to the current MMEngine ``MessageHub`` as
            ``train/{stats_prefix}{key}`` scalars, which MMEngine's
            ``LogProcessor`` prints with the losses. Off: no extra work.
        stats_prefix (str): prefix of the pushed keys, e.g. 'aux.' to tell
            an auxiliary head's loss from the decode head's. Defaults to ''.
    """

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
                 stats_prefix: str = '') -> None:
        super().__init__()
        # a config typo fails when the model is built, not at the first step
        scales = check_options(
            None, accuracy_reward, uniformity, clip_eps, background_index,
            background_scale if reward_scale is None else reward_scale,
            std_eps, reduction)
        if reward_scale is not None:
            reward_scale = scales
        self.accuracy_reward = accuracy_reward
        self.uniformity = uniformity
        self.clip_eps = clip_eps
        self.background_index = background_index
        self.background_scale = background_scale
        self.reward_scale = reward_scale
        self.std_eps = std_eps
        self.reduction = reduction
        self.loss_weight = loss_weight
        self._loss_name = loss_name
        self.check_inputs = check_inputs
        self.log_stats = log_stats
        self.stats_prefix = stats_prefix
        self.last_stats: Dict[str, Tensor] = {}
        self._old_logits: Optional[Tensor] = None
        self._old_align_corners = False

    @property
    def uses_old_logits(self) -> bool:
        """Marks GRPO-RM losses for the old-model hook."""
        return True

    @property
    def loss_name(self) -> str:
        """Key of the loss in the log dict (MMSeg convention)."""
        return self._loss_name

    def extra_repr(self) -> str:
        scale = (f'reward_scale={self.reward_scale}'
                 if self.reward_scale is not None else
                 f'background_index={self.background_index}, '
                 f'background_scale={self.background_scale}')
        return (f'accuracy_reward={self.accuracy_reward}, uniformity='
                f"'{self.uniformity}', clip_eps={self.clip_eps}, {scale}, "
                f'loss_weight={self.loss_weight}')

    # ------------------------------------------------------ old logits
    def set_old_logits(self,
                       old_logits: Tensor,
                       align_corners: bool = False) -> None:
        """Hand over the old model's logits for the next :meth:`forward`.

        One-shot: the next forward that records gradients consumes and
        clears them. When their spatial size differs from the logits the
        loss receives (MMSeg's ``loss_by_feat`` resizes to the label size
        first), they are resized the same way (bilinear, this
        ``align_corners``), so identical old and current weights give a
        ratio of exactly 1.

        Args:
            old_logits (Tensor): (N, C) or (N, C, h, w), no gradient.
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
        """The old logits for this call: explicit > handed over > None.

        A call without gradient recording (MMSeg's ``OHEMPixelSampler``
        ranks pixels with the loss under ``no_grad`` first) reads them
        without using them up; the training call consumes them.
        """
        stored, align_corners = self._old_logits, self._old_align_corners
        if torch.is_grad_enabled():
            self._old_logits = None
        if explicit is not None:
            return explicit.detach()
        if stored is None:
            return None
        name = f'{type(self).__name__}: old logits'
        if stored.shape[:2] != cls_score.shape[:2]:
            raise ValueError(f'{name} of shape {tuple(stored.shape)} do not '
                             'match the batch size and classes of the logits '
                             f'{tuple(cls_score.shape)}')
        if stored.shape[2:] != cls_score.shape[2:]:
            if stored.dim() != 4 or cls_score.dim() != 4:
                raise ValueError(f'{name} of shape {tuple(stored.shape)} '
                                 'cannot be resized to the logits '
                                 f'{tuple(cls_score.shape)}')
            # the op of mmseg.models.utils.resize in BaseDecodeHead
            stored = F.interpolate(
                stored,
                size=cls_score.shape[2:],
                mode='bilinear',
                align_corners=align_corners)
        return stored

    # ------------------------------------------------------ computation
    def _scale_kwargs(self) -> dict:
        if self.reward_scale is not None:
            return dict(background_index=None,
                        background_scale=self.reward_scale)
        return dict(background_index=self.background_index,
                    background_scale=self.background_scale)

    def _grpo(self, cls_score: Tensor, label: Tensor,
              old_logits: Optional[Tensor], weight: Optional[Tensor],
              avg_factor, reduction_override: Optional[str],
              ignore_index: Optional[int]) -> Tensor:
        reduction = reduction_override or self.reduction
        options = dict(
            accuracy_reward=self.accuracy_reward,
            uniformity=self.uniformity,
            clip_eps=self.clip_eps,
            ignore_index=ignore_index,
            std_eps=self.std_eps,
            **self._scale_kwargs())
        loss = compute_grpo_rm_loss(
            cls_score,
            label,
            old_logits,
            reduction=reduction,
            weight=weight,
            avg_factor=avg_factor,
            check_inputs=self.check_inputs,
            **options)
        if self.log_stats:
            self._record_stats(cls_score, label, old_logits, options)
        return loss if self.loss_weight == 1 else self.loss_weight * loss

    def _record_stats(self, cls_score, label, old_logits, options) -> None:
        stats = grpo_rm_stats(cls_score.detach(), label, old_logits,
                              **options)
        self.last_stats = stats
        if not self.training:
            return
        # only a hub that exists (a Runner's); never create one here
        if not getattr(MessageHub, '_instance_dict', None):
            return
        hub = MessageHub.get_current_instance()
        for key, value in stats.items():
            hub.update_scalar(f'train/{self.stats_prefix}{key}', value)


@MODELS.register_module()
class GRPORMLoss(GRPORMLossBase):
    """GRPO-RM loss for any MMSeg decode head (auxiliary heads included).

    Use it alone or in a list with other losses::

        decode_head=dict(..., loss_decode=dict(
            type='GRPORMLoss', background_index=0, loss_weight=1.0))

    Each pixel is a group of C outputs (see
    :func:`grpo_rm_mm.models.losses.grpo_rm_loss` for the formula). The old
    policy's logits come from :meth:`set_old_logits` (the old-model hook) or
    the ``old_logits`` argument; without them the loss is on-policy.

    ``weight`` (MMSeg's pixel-sampler weight, (N, H, W)) multiplies the
    per-pixel loss. With ``reduction='mean'`` the sum is divided by
    ``avg_factor`` when given, else by the number of non-ignored pixels
    (PyTorch's convention, i.e. MMSeg's ``avg_non_ignore=True``).

    Args: see :class:`GRPORMLossBase`.
    """

    def forward(self,
                cls_score: Tensor,
                label: Tensor,
                weight: Optional[Tensor] = None,
                avg_factor: Optional[Union[float, Tensor]] = None,
                reduction_override: Optional[str] = None,
                ignore_index: Optional[int] = 255,
                old_logits: Optional[Tensor] = None,
                **kwargs) -> Tensor:
        """Compute the loss.

        Args:
            cls_score (Tensor): logits (N, C, H, W) (or (N, C)).
            label (Tensor): class indices (N, H, W) (or (N,)).
            weight (Tensor, optional): per-pixel weight (N, H, W).
            avg_factor (float | Tensor, optional): denominator of the mean.
            reduction_override (str, optional): 'mean', 'sum' or 'none'.
            ignore_index (int): label taking no part. Defaults to 255.
            old_logits (Tensor, optional): old-model logits of the shape of
                ``cls_score``; take precedence over :meth:`set_old_logits`.

        Returns:
            Tensor: the weighted loss.
        """
        old = self._take_old_logits(cls_score, old_logits)
        return self._grpo(cls_score, label, old, weight, avg_factor,
                          reduction_override, ignore_index)
