"""The lagging old policy pi_theta_old of GRPO-RM, as an MMEngine hook."""
import copy
import logging
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn as nn
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import BaseAveragedModel, is_model_wrapper
from mmengine.registry import HOOKS
from mmengine.runner import IterBasedTrainLoop

from grpo_rm_mm.models.losses import GRPORMLossBase

CKPT_KEY = 'grpo_old_model'
#: training iterations at the start in which the hook watches for groups
#: whose true class is locked out (``grpo_true_clipped`` of its losses)
LOCKOUT_WINDOW = 20
#: ... while the old model gives the labelled classes less than this times
#: chance (1 / C): a from-scratch head gives them about 1 x chance
LOCKOUT_PROB = 0.25


class _SharedFeatures(nn.Module):
    """Stands in for a frozen backbone in the copy: its last output."""

    def __init__(self) -> None:
        super().__init__()
        self.output = None

    def forward(self, *args, **kwargs):
        return self.output


class OldPolicyModel(BaseAveragedModel):
    """pi_theta_old: a copy of the model, overwritten every ``interval``
    calls of :meth:`update_parameters` (parameters and buffers).

    Unlike ``BaseAveragedModel`` the copy keeps the source's
    ``requires_grad`` flags (it runs under ``no_grad``; some CPU/BLAS builds
    pick another ``F.linear`` kernel when the weight needs no gradient, and
    the ratio right after a refresh must be 1), its momentum-updated buffers
    (batch-norm statistics, EMA bases as in MMSeg's ``EMAHead``) never move
    (``momentum=0``), attention dropout kept in an attribute (PyTorch's and
    MMCV's ``MultiheadAttention``, MMPretrain's functional one) is off, and
    a frozen backbone can be shared instead of copied.

    Args:
        model (nn.Module): the segmentor or classifier (not wrapped).
        interval (int): refresh period, in calls.
        steps (int): calls so far (the runner's iteration or epoch).
        share_backbone (bool): replace the copy's backbone by the current
            backbone's last output (it must be frozen).
    """

    def __init__(self, model: nn.Module, interval: int = 1, steps: int = 0,
                 share_backbone: bool = False) -> None:
        nn.Module.__init__(self)  # the base would deep-copy the backbone
        memo = {id(model.backbone): _SharedFeatures()} if share_backbone \
            else {}
        self.module = copy.deepcopy(model, memo)
        self.interval = interval
        self.register_buffer('steps', torch.tensor(steps, dtype=torch.long))
        self.update_buffers = True
        self.avg_parameters = self.module.state_dict()
        flags = {n: p.requires_grad for n, p in model.named_parameters()}
        for name, param in self.module.named_parameters():
            param.requires_grad_(flags[name])
        for m in self.module.modules():
            if hasattr(m, 'momentum') and next(m.buffers(False), None) \
                    is not None:
                m.momentum = 0.0  # any BN flavour, EMA bases: never drift
            if isinstance(getattr(m, 'attn_drop', None), float):
                m.attn_drop = 0.0  # MMPretrain attention's functional dropout
            if isinstance(m, nn.MultiheadAttention):
                m.dropout = 0.0  # a float it reads in training mode

    def avg_func(self, averaged_param, source_param, steps) -> None:
        averaged_param.copy_(source_param)

    def due(self) -> bool:
        """Whether the next :meth:`update_parameters` copies."""
        return int(self.steps) % self.interval == 0

    def update_parameters(self, model: nn.Module) -> None:
        if self.due():  # between refreshes: count only, no state_dict walk
            super().update_parameters(model)
        else:
            self.steps += 1


def _is_stochastic(module: nn.Module) -> bool:
    """Dropout-like layers (torch, MMCV, MMPretrain and timm DropPath)."""
    name = type(module).__name__
    return isinstance(module, nn.modules.dropout._DropoutNd) or \
        'DropPath' in name or 'Dropout' in name


@HOOKS.register_module()
class GRPOOldModelHook(Hook):
    """Keep pi_theta_old and hand its logits to every ``GRPORMLoss``.

    The hook holds an :class:`OldPolicyModel` the way ``EMAHook`` holds its
    averaged model (outside the runner's model: not in its ``state_dict``,
    not seen by DDP; saved under ``checkpoint['grpo_old_model']``). In
    ``mode='loss'`` only, a forward pre-hook runs the copy's own
    ``extract_feat`` on the *same* preprocessed ``inputs`` under
    ``no_grad``, then each served head's copy on those features, and hands
    each GRPO-RM loss of that head (decode head, every auxiliary head, or
    MMPretrain's ``head``) its logits through
    :meth:`~grpo_rm_mm.models.losses.GRPORMLossBase.set_old_logits`.

    - ``interval=1`` in iterations: old = current, detached; no copy, no
      extra forward. (``interval=1, by_epoch=True`` lags: the copy is
      refreshed at the start of every epoch.)
    - Frozen backbone: the copy shares it; the old neck and heads run on
      the features the current backbone computes anyway (once per step),
      so a frozen backbone left in training mode with drop-path gives both
      policies the same stochastic features.
    - Batch-norm follows the current model's train/eval mode module by
      module, without updating statistics; dropout / drop-path are off.
    - In the first :data:`LOCKOUT_WINDOW` iterations it warns once per
      head when more than half of a loss's groups have their true class
      locked out (``grpo_true_clipped``: positive advantage, ratio above
      the upper clip, so no gradient reaches it until the next refresh)
      while the old model gives the labelled classes next to no
      probability (below :data:`LOCKOUT_PROB` times chance): each refresh
      then lets them grow by a factor 1 + eps at most (a re-used
      classifier head). Groups bind as a model learns, too: that is the
      trust region at work.

    Args:
        interval (int): refresh every ``interval`` iterations (or epochs
            with ``by_epoch=True``). Defaults to 1 (on-policy).
        by_epoch (bool): count ``interval`` in epochs. Defaults to False.
        share_frozen_backbone (bool): Defaults to True.
    """

    priority = 'NORMAL'

    def __init__(self, interval: int = 1, by_epoch: bool = False,
                 share_frozen_backbone: bool = True) -> None:
        if not isinstance(interval, int) or interval < 1:
            raise ValueError(f'GRPOOldModelHook: interval must be an int >= '
                             f'1, got {interval!r}')
        self.interval, self.by_epoch = interval, by_epoch
        self.share_frozen_backbone = share_frozen_backbone
        # one iteration of lag is none; one epoch is a real lag
        self.lagged = interval > 1 or by_epoch
        self.old: Optional[OldPolicyModel] = None
        self.shares_backbone = False
        self.refreshed_at: Optional[int] = None  # epoch or iteration
        self._refreshed_iter = 0
        self._heads: Dict[str, Tuple[nn.Module, List[nn.Module]]] = {}
        self._handles: list = []
        self._mode_pairs: List[Tuple[nn.Module, nn.Module]] = []
        self._armed = False
        self._resumed: Optional[dict] = None
        self._watch_until = -1  # the lock-out check runs before this iter
        self._warned: set = set()
        # the epoch whose refresh the resumed copy already is (a checkpoint
        # saved inside that epoch)
        self._refreshed_epoch: Optional[int] = None

    # ------------------------------------------------------------ set-up
    def before_train(self, runner) -> None:
        """Find the losses and build the copy (training only)."""
        self.after_train(runner)  # a second runner.train(): start afresh
        model = runner.model.module if is_model_wrapper(runner.model) \
            else runner.model
        self._heads = self._find_heads(model)
        for name, (_, losses) in self._heads.items():
            for loss in losses:  # MMSeg's prefixes of the heads' losses
                loss.stats_prefix = loss.stats_prefix or _prefix(name)
        if not self.lagged:
            print_log('GRPOOldModelHook: interval=1, on-policy (old = '
                      'current, detached): no copy, no extra forward',
                      logger='current')
            return
        if self.by_epoch and isinstance(
                getattr(runner, 'train_loop', None), IterBasedTrainLoop):
            raise ValueError(
                'GRPOOldModelHook(by_epoch=True) with an IterBasedTrainLoop '
                'would never refresh the old model: count the interval in '
                'iterations (by_epoch=False)')
        self._check_all_losses_served(model)
        if self.lagged:
            self._build(runner, model)
            self._watch(runner.iter + LOCKOUT_WINDOW)

    def _build(self, runner, model: nn.Module) -> None:
        self.shares_backbone = self.share_frozen_backbone and not any(
            p.requires_grad for p in model.backbone.parameters())
        step = runner.epoch if self.by_epoch else runner.iter
        self.old = OldPolicyModel(model, self.interval, step,
                                  self.shares_backbone)
        self.refreshed_at, self._refreshed_iter = step, runner.iter
        if self._resumed is not None:
            state, self._resumed = self._resumed, None
            self.old.load_state_dict(state['state_dict'])
            self.refreshed_at = state['refreshed_at']
            self._refreshed_iter = state['refreshed_iter']
            if self.by_epoch:
                self._refreshed_epoch = self.refreshed_at
        current = dict(model.named_modules())
        self._mode_pairs = [(current[n], m) for n, m in
                            self.old.module.named_modules() if n in current]
        self._handles.append(model.register_forward_pre_hook(
            self._before_forward, with_kwargs=True))
        if self.shares_backbone:
            self._handles.append(model.backbone.register_forward_hook(
                self._after_backbone))
        unit = 'epochs' if self.by_epoch else 'iterations'
        print_log(f'GRPOOldModelHook: old model refreshed every '
                  f'{self.interval} {unit}'
                  + ('; shares the frozen backbone' if self.shares_backbone
                     else ''), logger='current')

    @staticmethod
    def _find_heads(model: nn.Module) -> Dict[str, tuple]:
        """Heads with a GRPO-RM loss: MMSeg ``decode_head`` and
        ``auxiliary_head`` (one or a list), MMPretrain ``head``."""
        if isinstance(getattr(model, 'decode_head', None), nn.ModuleList):
            return {}  # cascade decoders: refused as unserved
        heads = {n: getattr(model, n, None) for n in ('decode_head', 'head')}
        aux = getattr(model, 'auxiliary_head', None)
        if isinstance(aux, nn.ModuleList):
            heads.update((f'auxiliary_head.{i}', h) for i, h in enumerate(aux))
        else:
            heads['auxiliary_head'] = aux
        heads = {n: (h, [m for m in h.modules()
                         if isinstance(m, GRPORMLossBase)])
                 for n, h in heads.items() if h is not None}
        return {n: v for n, v in heads.items() if v[1]}

    def _check_all_losses_served(self, model: nn.Module) -> None:
        served = {id(m) for _, losses in self._heads.values() for m in losses}
        unserved = [n for n, m in model.named_modules()
                    if isinstance(m, GRPORMLossBase) and id(m) not in served]
        if unserved:
            raise RuntimeError(
                'GRPOOldModelHook cannot give old logits to the GRPO-RM '
                f'losses at {unserved}: it serves MMSeg decode_head / '
                'auxiliary_head (EncoderDecoder) and MMPretrain head '
                '(ImageClassifier). Use interval=1 (on-policy) or move the '
                'loss to one of those heads.')
        if not self._heads:
            print_log('GRPOOldModelHook: the model has no GRPO-RM loss; the '
                      'hook does nothing', logger='current',
                      level=logging.WARNING)
            self.lagged = False

    def after_train(self, runner) -> None:
        """Take the forward hooks off the model (the copy stays, for a
        checkpoint saved after training)."""
        for handle in self._handles:
            handle.remove()
        self._handles, self._armed = [], False
        self._watch(-1)

    # ------------------------------------------------------------ lock-out
    def _watch(self, until: int) -> None:
        """Have the served losses compute their diagnostics until ``until``
        (they log them only with ``log_stats``)."""
        self._watch_until = until
        for _, losses in self._heads.values():
            for loss in losses:
                loss.watch_stats = until >= 0

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs=None) -> None:
        if self._watch_until < 0:
            return
        for name, (head, losses) in self._heads.items():
            for loss in losses:
                locked = float(loss.last_stats.get('grpo_true_clipped', 0))
                # the trust region binds for many groups as a model learns
                # (up to 70 % late in the demo's lags; 62 % two steps after
                # a refresh at batch 2); it locks a class out when even
                # 1 + eps times its old probability is next to nothing
                if locked > 0.5 and name not in self._warned and float(
                        loss.old_true_prob) < LOCKOUT_PROB:
                    self._warned.add(name)
                    self._warn_lockout(runner, name, head, locked,
                                       float(loss.old_true_prob))
        if runner.iter + 1 >= self._watch_until:
            self._watch(-1)

    def _warn_lockout(self, runner, name: str, head: nn.Module,
                      locked: float, old_true_prob: float) -> None:
        print_log(
            f'GRPOOldModelHook: at iteration {runner.iter + 1}, {locked:.0%} '
            f'of the groups of {name} ({type(head).__name__}) have their '
            'true class locked out: its advantage is positive but its ratio '
            'to the old model is above the upper clip, so no gradient '
            'reaches it until the next refresh, and the old model gives the '
            f'labelled classes {old_true_prob:.2g} x chance (1 / C) on '
            'average, so each refresh lets them grow by 1 + eps at most (a '
            're-used classifier head?). Refresh more often (a smaller '
            'interval), start on-policy (interval=1) for a few iterations, '
            'or re-initialise the head.', logger='current',
            level=logging.WARNING)

    # ------------------------------------------------------------ refresh
    def _update(self, runner, step: int) -> None:
        # the runner's count decides: a resumed epoch is replayed from its
        # start, so a counter saved in the middle of it would be one ahead
        self.old.steps.fill_(step)
        if self.old.due():
            self.refreshed_at, self._refreshed_iter = step, runner.iter
            print_log(f'GRPOOldModelHook: old model refreshed at '
                      f"{'epoch' if self.by_epoch else 'iter'} {step}",
                      logger='current')
        model = runner.model.module if is_model_wrapper(runner.model) \
            else runner.model
        self.old.update_parameters(model)

    def before_train_epoch(self, runner) -> None:
        if not (self.lagged and self.by_epoch):
            return
        resumed_inside, self._refreshed_epoch = \
            self._refreshed_epoch == runner.epoch, None
        if not resumed_inside:  # else the copy is this epoch's refresh
            self._update(runner, runner.epoch)

    def before_train_iter(self, runner, batch_idx: int,
                          data_batch=None) -> None:
        if not self.lagged:
            return
        if not self.by_epoch:
            self._update(runner, runner.iter)
        runner.message_hub.update_scalar('train/grpo_old_age',
                                         runner.iter - self._refreshed_iter)

    # ------------------------------------------------------------ data flow
    def _before_forward(self, model, args: tuple, kwargs: dict) -> None:
        mode = kwargs.get('mode', args[2] if len(args) > 2 else 'tensor')
        if mode != 'loss' or not model.training:
            return
        for cur, old in self._mode_pairs:
            old.training = cur.training and not _is_stochastic(old)
        if self.shares_backbone:  # the old heads run after the backbone
            self._armed = True
        else:
            self._hand_over(kwargs['inputs'] if 'inputs' in kwargs
                            else args[0])

    def _after_backbone(self, backbone, args, output) -> None:
        if self._armed:
            self._armed = False
            self.old.module.backbone.output = output
            self._hand_over(None)
            self.old.module.backbone.output = None

    @torch.no_grad()
    def _hand_over(self, inputs) -> None:
        """The copy's own ``extract_feat`` and heads; each loss its own."""
        feats = self.old.module.extract_feat(inputs)
        for name, (head, losses) in self._heads.items():
            logits = self.old.module.get_submodule(name)(feats)
            if not isinstance(logits, torch.Tensor):
                raise TypeError(
                    f'GRPOOldModelHook: {name} ({type(head).__name__}) '
                    f'returns a {type(logits).__name__} in training, not '
                    'logits; its GRPO-RM losses cannot be given old logits '
                    '(use interval=1)')
            for loss in losses:
                loss.set_old_logits(logits, getattr(head, 'align_corners',
                                                    False))

    # ------------------------------------------------------------ checkpoints
    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if self.old is not None:
            checkpoint[CKPT_KEY] = dict(
                state_dict=self.old.state_dict(),
                refreshed_at=self.refreshed_at,
                refreshed_iter=self._refreshed_iter)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """On ``--resume`` keep the old model's state for ``before_train``
        (``load_from``: the copy starts as the loaded weights)."""
        if not (self.lagged and runner._resume):
            return
        self._resumed = checkpoint.get(CKPT_KEY)
        if self._resumed is None:
            print_log('GRPOOldModelHook: the checkpoint has no old model; '
                      'it restarts as a copy of the resumed model',
                      logger='current', level=logging.WARNING)


def _prefix(head_name: str) -> str:
    """MMSeg's prefixes: 'decode.', 'aux.', 'aux_{idx}.'; MMPretrain: ''."""
    if head_name.startswith('auxiliary_head.'):
        return f'aux_{head_name.rsplit(".", 1)[1]}.'
    return {'decode_head': 'decode.', 'auxiliary_head': 'aux.'}.get(
        head_name, '')
