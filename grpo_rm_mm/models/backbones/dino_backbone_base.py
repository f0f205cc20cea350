"""What the DINOv2 and DINOv3 backbones share, written once.

Both follow DINOv2's segmentation evaluation around their transformer:
inputs centre-padded to whole patches, every block in ``out_indices``
normed by the final norm, blocks after the last index never run (and
frozen, so that DDP needs no ``find_unused_parameters``), the same
``frozen_stages`` / ``freeze`` semantics, and a ``Pretrained`` init_cfg
read by our own loader with its arch check and missing-key error.
"""
import logging
import math
import os.path as osp
from typing import Iterable, List, Optional, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from mmengine.logging import print_log
from mmengine.runner.checkpoint import CheckpointLoader

from .checkpoint_io import load_checkpoint_file
from .dinov2_checkpoint import DINOv2Arch, StateDict

Output = Union[torch.Tensor, List[torch.Tensor]]


class DINOBackboneMixin:
    """Freezing, checkpoint loading and feature maps of a DINO ViT.

    Listed before the backbone's ``nn.Module`` base class. The backbone
    sets ``arch_name``, ``num_layers``, ``patch_size``,
    ``num_register_tokens``, ``output_cls_token`` and ``with_cp``, checks
    ``out_indices`` with :meth:`_check_out_indices` and ends its
    ``__init__`` with :meth:`_set_frozen_stages`. It defines:

    - ``_blocks()``: its transformer blocks, in order;
    - ``_stem_modules()`` / ``_stem_params()``: the modules and parameters
      before the first block, frozen by any ``frozen_stages >= 0``;
    - ``_infer_arch(state_dict)``: the architecture a state dict in its
      own key names holds;
    - ``load_pretrained(checkpoint, prefix)``, built from
      :meth:`_read_checkpoint`, :meth:`_check_arch` and
      :meth:`_load_checked`.
    """

    def _init_cfg_or_pretrained(self, init_cfg, pretrained: Optional[str]):
        """``EncoderDecoder(pretrained=...)``'s shorthand as an init_cfg."""
        if pretrained is None:
            return init_cfg
        if init_cfg is not None:
            raise ValueError(
                f'give {type(self).__name__} either init_cfg or pretrained')
        return dict(type='Pretrained', checkpoint=pretrained)

    def _arch_from_zoo(self, zoo: dict, name: str) -> dict:
        """The settings of a named arch (any case) in ``zoo``."""
        if name.lower() not in zoo:
            raise KeyError(f"{type(self).__name__} arch '{name}' is not one "
                           f'of {sorted(zoo)}')
        return zoo[name.lower()]

    def _check_out_indices(self, out_indices) -> Tuple[int, ...]:
        if isinstance(out_indices, int):
            out_indices = [out_indices]
        checked = []
        for index in out_indices:
            if not -self.num_layers <= index < self.num_layers:
                raise ValueError(f'out_indices {tuple(out_indices)} are not '
                                 f'all in [-{self.num_layers}, '
                                 f'{self.num_layers})')
            checked.append(index % self.num_layers)
        return tuple(checked)

    @property
    def num_prefix_tokens(self) -> int:
        """Class token + register tokens, in front of the patch tokens."""
        return 1 + self.num_register_tokens

    # ----------------------------------------------------------- freezing
    @property
    def is_frozen(self) -> bool:
        """True when no parameter of the backbone is trainable."""
        return all(not p.requires_grad for p in self.parameters())

    def _set_frozen_stages(self, frozen_stages: int, freeze: bool) -> None:
        self.frozen_stages = self.num_layers if freeze else frozen_stages
        if not -1 <= self.frozen_stages <= self.num_layers:
            raise ValueError(f'frozen_stages must be in [-1, '
                             f'{self.num_layers}], got {frozen_stages}')
        self._freeze_stages()

    def _frozen_modules(self) -> List[nn.Module]:
        if self.frozen_stages == self.num_layers:
            return list(self.children())  # final norm and all
        modules = []
        if self.frozen_stages >= 0:
            modules = [*self._stem_modules(),
                       *self._blocks()[:self.frozen_stages]]
        # never run, see the module docstring
        modules += list(self._blocks()[max(self.out_indices) + 1:])
        return modules

    def _freeze_stages(self) -> None:
        if self.frozen_stages >= 0:
            for param in self._stem_params():
                if param is not None:
                    param.requires_grad = False
        for module in self._frozen_modules():
            module.eval()
            for param in module.parameters():
                param.requires_grad = False

    def train(self, mode: bool = True):
        """Switch mode, keeping the frozen modules in eval mode."""
        super().train(mode)
        self._freeze_stages()
        return self

    # ------------------------------------------------------------ weights
    def _split_init_cfg(self) -> Tuple[List[dict], List[dict]]:
        """The ``Pretrained`` entries of init_cfg, and the others."""
        cfgs = self.init_cfg
        if isinstance(cfgs, dict):
            cfgs = [cfgs]
        pretrained = [c for c in cfgs or [] if c.get('type') == 'Pretrained']
        return pretrained, [c for c in cfgs or [] if c not in pretrained]

    def _init_weights_without(self, others: List[dict]) -> None:
        """The base class's init_weights with only the ``others`` entries:
        MMEngine's loader knows neither the checkpoint formats nor our
        checks, so the ``Pretrained`` one is ours (:meth:`_load_init_cfg`).
        """
        original = self.init_cfg
        self.init_cfg = others
        try:
            super().init_weights()
        finally:
            self.init_cfg = original

    def _load_init_cfg(self, cfg: dict) -> None:
        """Load a ``Pretrained`` init_cfg entry's checkpoint."""
        if 'checkpoint' not in cfg:
            raise KeyError(f'{type(self).__name__} '
                           "init_cfg=dict(type='Pretrained') needs a "
                           "'checkpoint' path")
        self.load_pretrained(cfg['checkpoint'], prefix=cfg.get('prefix'))

    def _read_checkpoint(self, checkpoint: str, folder_ok: bool) -> dict:
        """What a checkpoint URL or local file (with ``folder_ok``, also a
        transformers model folder) holds; a local path must exist."""
        exists = osp.exists if folder_ok else osp.isfile
        if '://' in checkpoint:  # MMEngine downloads URLs
            return CheckpointLoader.load_checkpoint(
                checkpoint, map_location='cpu')
        if not exists(osp.expanduser(checkpoint)):
            raise FileNotFoundError(
                f'{type(self).__name__} '
                f"init_cfg.checkpoint='{checkpoint}' does not exist")
        return load_checkpoint_file(checkpoint, map_location='cpu')

    def _describe_model(self) -> str:
        return (f'{type(self).__name__}(arch={self.arch_name!r}) expects a '
                f'{self._infer_arch(self.state_dict()).describe()}')

    def _arch_hint(self, found: DINOv2Arch, expected: DINOv2Arch) -> str:
        """Advice appended to the arch mismatch error; none by default."""
        return ''

    def _check_arch(self, found: DINOv2Arch, checkpoint: str) -> None:
        expected = self._infer_arch(self.state_dict())
        problems = found.mismatches(expected)
        if problems:
            raise ValueError(
                f'checkpoint {checkpoint} is a {found.describe()} but '
                f'{self._describe_model()}: {"; ".join(problems)} '
                '(checkpoint vs model)' + self._arch_hint(found, expected))

    def _load_checked(self, state_dict: StateDict, checkpoint: str,
                      fmt: str, found: DINOv2Arch) -> None:
        """Load a state dict of the backbone's names: weights it lacks are
        an error, keys the backbone does not have are only logged (as
        MMEngine's own ``load_checkpoint`` with ``strict=False``)."""
        name = type(self).__name__
        result = self.load_state_dict(state_dict, strict=False)
        if result.missing_keys:
            raise RuntimeError(
                f'{checkpoint} lacks {len(result.missing_keys)} weights of '
                f'{name}: {result.missing_keys}')
        if result.unexpected_keys:
            print_log(
                f'{name} ignored keys of {checkpoint} it does not have: '
                f'{result.unexpected_keys}',
                logger='current',
                level=logging.WARNING)
        print_log(
            f'{name} loaded {checkpoint} ({fmt} format, '
            f'{found.describe()})',
            logger='current')

    # ------------------------------------------------------------ forward
    def _centre_pad(self, x: torch.Tensor) -> torch.Tensor:
        """Zero-pad H and W to multiples of the patch size, centred."""
        pads = []
        for size in (x.shape[-1], x.shape[-2]):  # F.pad starts at the end
            extra = math.ceil(size / self.patch_size) * self.patch_size - size
            pads += [extra // 2, extra - extra // 2]
        return F.pad(x, pads) if any(pads) else x

    def _run_block(self, index: int, tokens: torch.Tensor,
                   *args) -> torch.Tensor:
        """Block ``index`` on ``tokens`` (and ``args``), gradient-
        checkpointed with ``with_cp`` when it trains."""
        block = self._blocks()[index]
        if self.with_cp and self.training and index >= self.frozen_stages:
            return cp.checkpoint(block, tokens, *args, use_reentrant=False)
        return block(tokens, *args)

    def _feature_maps(self, tokens: torch.Tensor, grid: Iterable[int],
                      norm: nn.Module, *block_args) -> Tuple[Output, ...]:
        """Run the blocks up to the last of ``out_indices``.

        Returns:
            tuple: per index, in the order of ``out_indices``, the normed
            patch tokens as a (B, C, *grid) map, or ``[map, cls_token]``
            when ``output_cls_token``.
        """
        batch = tokens.shape[0]
        outs = []
        for i in range(max(self.out_indices) + 1):
            tokens = self._run_block(i, tokens, *block_args)
            if i not in self.out_indices:
                continue
            normed = norm(tokens)
            featmap = normed[:, self.num_prefix_tokens:].reshape(
                batch, *grid, -1)
            featmap = featmap.permute(0, 3, 1, 2).contiguous()
            outs.append(
                [featmap, normed[:, 0]] if self.output_cls_token else featmap)
        # in the order of out_indices, as given
        order = sorted(set(self.out_indices))
        return tuple(outs[order.index(i)] for i in self.out_indices)
