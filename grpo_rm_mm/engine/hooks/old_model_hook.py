"""The lagging old policy pi_theta_old of GRPO-RM, as an MMEngine hook."""
import copy
import logging
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS
from mmengine.runner import IterBasedTrainLoop

from grpo_rm_mm.models.losses import GRPORMLossBase

CKPT_KEY = 'grpo_old_model'


def _is_stochastic(module: nn.Module) -> bool:
    """Dropout-like layers (torch, MMCV, MMPretrain and timm DropPath)."""
    name = type(module).__name__
    return isinstance(module, nn.modules.dropout._DropoutNd) or \
        'DropPath' in name or 'Dropout' in name


def _losses_of(module: Optional[nn.Module]) -> List[nn.Module]:
    """GRPO-RM losses held by a head."""
    if module is None:
        return []
    return [m for m in module.modules() if isinstance(m, GRPORMLossBase)]


@HOOKS.register_module()
class GRPOOldModelHook(Hook):
    """Keep pi_theta_old and hand its logits to every ``GRPORMLoss``.

    The data flow, all in this class: a forward pre-hook on the model runs,
    in ``mode='loss'`` only, the old model on the *same* preprocessed
    ``inputs`` (same crops, flips, noise, mixup) under ``no_grad`` and calls
    ``loss.set_old_logits(logits, align_corners)`` on each GRPO-RM loss of
    each head (decode head, every auxiliary head, or MMPretrain's ``head``),
    with that head's own old logits. Each loss resizes them exactly as MMSeg
    resizes the current logits, so right after a refresh the ratio is 1.

    Like MMEngine's ``EMAHook`` the copy lives outside the model (not in
    its ``state_dict``, not seen by DDP); each rank keeps its own on its own
    device, and it is saved under ``checkpoint['grpo_old_model']``.

    - ``interval=1`` means old = current, detached: nothing is copied, no
      extra forward runs, the losses take their on-policy path.
    - Frozen backbone (every backbone parameter ``requires_grad=False``):
      only the neck and heads are copied; the old heads read the features
      the current backbone computes anyway (it runs once per step).
    - Batch-norm: the old copy uses the same train/eval mode as the current
      model, module by module, but with ``momentum=0`` so its running
      statistics stay those of the last refresh.
    - Dropout / drop-path / attention dropout are off in the old model:
      pi_theta_old is the deterministic network, so the ratio measures the
      policy change and not sampling noise (with such layers active in the
      current model the ratio right after a refresh is not exactly 1).

    Args:
        interval (int): refresh the old model every ``interval`` iterations
            (or epochs with ``by_epoch=True``). Defaults to 1 (on-policy).
        by_epoch (bool): count ``interval`` in epochs. Defaults to False.
        share_frozen_backbone (bool): reuse the current backbone's features
            when it is frozen. Defaults to True.
    """

    priority = 'NORMAL'

    def __init__(self, interval: int = 1, by_epoch: bool = False,
                 share_frozen_backbone: bool = True) -> None:
        if not isinstance(interval, int) or interval < 1:
            raise ValueError(f'GRPOOldModelHook: interval must be an int >= '
                             f'1, got {interval!r}')
        self.interval = interval
        self.by_epoch = by_epoch
        self.share_frozen_backbone = share_frozen_backbone
        self.lagged = interval > 1
        self.old: Optional[nn.ModuleDict] = None
        self._current: Optional[nn.ModuleDict] = None  # views of the model
        self.shares_backbone = False
        self.refreshed_at: Optional[int] = None  # epoch or iteration
        self._refreshed_iter = 0  # iteration of the last refresh
        self._heads: Dict[str, Tuple[nn.Module, List[nn.Module]]] = {}
        self._handles: list = []
        self._armed = False
        self._mode_pairs: List[Tuple[nn.Module, nn.Module]] = []
        self._resumed: Optional[dict] = None  # old state from --resume

    # ------------------------------------------------------------ set-up
    def before_train(self, runner) -> None:
        """Find the losses, copy the old model, then restore or refresh it.

        Training only: test and validation runs (``tools/test.py``, TTA
        wrappers) never see the hook act.
        """
        self._set_up(runner)
        if not self.lagged:
            return
        if self._resumed is not None:
            self._restore(self._resumed)
            self._resumed = None
        else:  # a new run, or load_from: old = current
            self.refresh(runner)

    def _set_up(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) \
            else runner.model
        self._heads = self._find_heads(model)
        self._label_stats()
        if not self.lagged:  # every GRPO-RM loss is on-policy by itself
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
        if not self.lagged:
            return
        if getattr(model, 'backbone', None) is None:
            raise RuntimeError(
                f'GRPOOldModelHook: {type(model).__name__} has no backbone; '
                'the hook serves MMSeg EncoderDecoder and MMPretrain '
                'ImageClassifier models')
        self.shares_backbone = self.share_frozen_backbone and all(
            not p.requires_grad for p in model.backbone.parameters())
        names = [n for n in ('backbone', 'neck')
                 if getattr(model, n, None) is not None]
        if self.shares_backbone:
            names.remove('backbone')
        names += list(self._heads)
        current = {n: self._module(model, n) for n in names}
        self.old = nn.ModuleDict(
            {n.replace('.', '_'): copy.deepcopy(m)
             for n, m in current.items()})
        self._current = nn.ModuleDict(
            {n.replace('.', '_'): m for n, m in current.items()})
        self.old.requires_grad_(False)
        for m in self.old.modules():
            if hasattr(m, 'running_mean') and hasattr(m, 'momentum'):
                m.momentum = 0.0  # any BN flavour: statistics never drift
            if isinstance(getattr(m, 'attn_drop', None), float):
                m.attn_drop = 0.0  # MMPretrain attention's functional dropout
        self._mode_pairs = list(
            zip(self._current.modules(), self.old.modules()))
        self._handles.append(model.register_forward_pre_hook(
            self._before_forward, with_kwargs=True))
        if self.shares_backbone:
            self._handles.append(model.backbone.register_forward_hook(
                self._after_backbone))
        copied = sum(p.numel() for p in self.old.parameters())
        print_log(
            f'GRPOOldModelHook: old model refreshed every {self.interval} '
            f"{'epochs' if self.by_epoch else 'iterations'}; copies "
            f'{sorted(current)} ({copied / 1e6:.2f}M parameters)'
            + ('; shares the frozen backbone' if self.shares_backbone
               else ''), logger='current')

    @staticmethod
    def _module(model: nn.Module, name: str) -> nn.Module:
        for part in name.split('.'):
            model = model[int(part)] if part.isdigit() else getattr(
                model, part)
        return model

    def _find_heads(self, model: nn.Module) -> Dict[str, tuple]:
        """Heads whose output the old model must produce, with their losses.

        MMSeg: ``decode_head`` and ``auxiliary_head`` (one or a list);
        MMPretrain: ``head``. Heads without a GRPO-RM loss are skipped.
        """
        heads = {}
        decode = getattr(model, 'decode_head', None)
        if isinstance(decode, nn.ModuleList):
            return heads  # cascade decoders: refused by the check below
        aux = getattr(model, 'auxiliary_head', None)
        candidates = [('decode_head', decode), ('head', getattr(
            model, 'head', None))]
        if isinstance(aux, nn.ModuleList):
            candidates += [(f'auxiliary_head.{i}', h) for i, h in
                           enumerate(aux)]
        else:
            candidates.append(('auxiliary_head', aux))
        for name, head in candidates:
            losses = _losses_of(head)
            if losses:
                heads[name] = (head, losses)
        return heads

    def _label_stats(self) -> None:
        """Prefix each head's diagnostics like MMSeg prefixes its losses
        (``decode.`` / ``aux.``), so heads do not overwrite each other."""
        for name, (_, losses) in self._heads.items():
            prefix = {'decode_head': 'decode.', 'head': ''}.get(name, 'aux.')
            for loss in losses:
                if hasattr(loss, 'stats_prefix') and not loss.stats_prefix:
                    loss.stats_prefix = prefix

    def _check_all_losses_served(self, model: nn.Module) -> None:
        served = {id(m) for _, losses in self._heads.values() for m in losses}
        unserved = [name for name, m in model.named_modules()
                    if isinstance(m, GRPORMLossBase) and
                    id(m) not in served]
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

    # ------------------------------------------------------------ refresh
    @torch.no_grad()
    def refresh(self, runner) -> None:
        """Copy the current weights and buffers into the old model."""
        for o, c in zip(self.old.parameters(), self._current.parameters()):
            o.copy_(c)
        for o, c in zip(self.old.buffers(), self._current.buffers()):
            o.copy_(c)
        step = runner.epoch if self.by_epoch else runner.iter
        self.refreshed_at, self._refreshed_iter = step, runner.iter
        print_log(f'GRPOOldModelHook: old model refreshed at '
                  f"{'epoch' if self.by_epoch else 'iter'} {step}",
                  logger='current')

    def before_train_epoch(self, runner) -> None:
        if self.lagged and self.by_epoch and \
                runner.epoch % self.interval == 0 and \
                self.refreshed_at != runner.epoch:
            self.refresh(runner)

    def before_train_iter(self, runner, batch_idx: int,
                          data_batch=None) -> None:
        if not self.lagged:
            return
        if not self.by_epoch and runner.iter % self.interval == 0 and \
                self.refreshed_at != runner.iter:
            self.refresh(runner)
        # iterations since the refresh, whatever the interval counts
        runner.message_hub.update_scalar('train/grpo_old_age',
                                         runner.iter - self._refreshed_iter)

    # ------------------------------------------------------------ data flow
    def _sync_modes(self) -> None:
        for cur, old in self._mode_pairs:
            old.training = cur.training
        for old in self.old.modules():
            if _is_stochastic(old):
                old.training = False

    def _before_forward(self, model, args: tuple, kwargs: dict) -> None:
        mode = kwargs.get('mode', args[2] if len(args) > 2 else 'tensor')
        if mode != 'loss' or not model.training:
            return
        self._sync_modes()
        if self.shares_backbone:
            self._armed = True  # old heads run on the backbone's output
            return
        inputs = kwargs['inputs'] if 'inputs' in kwargs else args[0]
        with torch.no_grad():
            self._hand_over(self.old['backbone'](inputs))

    def _after_backbone(self, backbone, args, output) -> None:
        if self._armed:
            self._armed = False
            with torch.no_grad():
                self._hand_over(output)

    def _hand_over(self, feats: Sequence[torch.Tensor]) -> None:
        """Run the old neck and heads on ``feats``; give each loss its own."""
        if 'neck' in self.old:
            feats = self.old['neck'](feats)
        for name, (head, losses) in self._heads.items():
            logits = self.old[name.replace('.', '_')](feats)
            align_corners = getattr(head, 'align_corners', False)
            for loss in losses:
                loss.set_old_logits(logits, align_corners=align_corners)

    # ------------------------------------------------------------ checkpoints
    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if self.lagged and self.old is not None:
            checkpoint[CKPT_KEY] = dict(
                state_dict=self.old.state_dict(),
                refreshed_at=self.refreshed_at,
                refreshed_iter=self._refreshed_iter,
                interval=self.interval,
                by_epoch=self.by_epoch)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """On ``--resume`` keep the old model's state for ``before_train``.

        With ``load_from`` (fine-tuning) nothing is kept: ``before_train``
        sets the old model to the loaded weights.
        """
        if not (self.lagged and runner._resume):
            return
        state = checkpoint.get(CKPT_KEY)
        if state is None:
            print_log('GRPOOldModelHook: the checkpoint has no old model; '
                      'it restarts as a copy of the resumed model',
                      logger='current', level=logging.WARNING)
            return
        self._resumed = state

    def _restore(self, state: dict) -> None:
        if (state['interval'], state['by_epoch']) != (self.interval,
                                                      self.by_epoch):
            print_log(
                'GRPOOldModelHook: resumed with interval/by_epoch '
                f"{(self.interval, self.by_epoch)} but the checkpoint used "
                f"{(state['interval'], state['by_epoch'])}",
                logger='current', level=logging.WARNING)
        missing, unexpected = self.old.load_state_dict(
            state['state_dict'], strict=False)
        if missing or unexpected:
            raise RuntimeError(
                'GRPOOldModelHook: the old model in the checkpoint does not '
                f'match this model (missing {missing}, unexpected '
                f'{unexpected})')
        self.refreshed_at = state['refreshed_at']
        self._refreshed_iter = state.get('refreshed_iter', 0)
