"""DINOv2 backbone for MMSegmentation on top of MMPretrain's ViT."""
from functools import partial
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn.bricks.drop import DropPath
from mmpretrain.models import VisionTransformer
from mmseg.registry import MODELS

from .dino_backbone_base import DINOBackboneMixin, Output
from .dinov2_checkpoint import (DINOv2Arch, StateDict, infer_arch,
                                to_mmpretrain)


def _arch(embed_dims: int,
          num_layers: int,
          num_heads: int,
          ffn_type: str = 'origin') -> dict:
    return dict(
        embed_dims=embed_dims,
        num_layers=num_layers,
        num_heads=num_heads,
        feedforward_channels=4 * embed_dims,
        ffn_type=ffn_type)


@MODELS.register_module()
class DINOv2(DINOBackboneMixin, VisionTransformer):
    """DINOv2 ViT/14 that loads Meta's checkpoints and returns feature maps.

    A thin layer over ``mmpretrain.models.VisionTransformer`` (which already
    has DINOv2's blocks: layer scale, LayerNorm eps 1e-6, SwiGLU for ViT-g),
    adding what DINOv2's segmentation evaluation does around it:

    - inputs are centre-padded to multiples of the patch size (zeros, the
      extra pixel on the right / bottom), so each output map is
      ``(B, C, ceil(H / 14), ceil(W / 14))``;
    - positional embeddings are resized for any grid with Meta's
      ``interpolate_pos_encoding``: bicubic with the scale factor
      ``(n + interpolate_offset) / 37``; at the native 518 x 518 (37 x 37
      patches) they are used as stored. ``interpolate_offset=0`` with
      ``interpolate_antialias=True`` resamples straight to the target size
      as timm's ``dynamic_img_size`` does;
    - every layer in ``out_indices`` passes the final LayerNorm, like
      ``get_intermediate_layers(norm=True)`` (MMPretrain norms only the last);
    - optional register tokens (the "with registers" models), inserted after
      the class token and after the positional embedding, as Meta does.

    The state dict uses MMPretrain's names, so MMPretrain-format files load
    as they are; Meta's files (``dinov2_vits14_pretrain.pth`` ...) are
    converted when ``init_cfg=dict(type='Pretrained', checkpoint=...)`` is
    loaded (see :meth:`load_pretrained`). ``mask_token`` is not kept: it is
    unused outside DINOv2's masked pre-training.

    Blocks after the last index in ``out_indices`` are never run; they are
    frozen so that DDP needs no ``find_unused_parameters``.

    Args:
        arch (str | dict): ``'small'``, ``'base'``, ``'large'``, ``'giant'``
            (or ``'s'``, ``'b'``, ``'l'``, ``'g'``), or a dict with
            ``embed_dims``, ``num_layers``, ``num_heads``,
            ``feedforward_channels`` and optionally ``ffn_type``
            (``'origin'`` or ``'swiglu_fused'``). Defaults to ``'small'``.
        out_indices (int | Sequence[int]): Blocks whose outputs are
            returned; negative values count from the end. Defaults to -1.
        output_cls_token (bool): Return ``[featmap, cls_token]`` per index
            (MMSeg's ``VisionTransformer`` convention) instead of the map.
            Defaults to False.
        img_size (int): Image size the stored positional embedding covers.
            Defaults to 518 (37 x 37 patches, as Meta's checkpoints).
        patch_size (int): Defaults to 14.
        num_register_tokens (int): Defaults to 0.
        interpolate_offset (float, optional): Meta's offset on the
            positional-embedding scale factor. None: 0.1, or 0.0 with
            register tokens (Meta's hub settings). Defaults to None.
        interpolate_antialias (bool, optional): None: False, or True with
            register tokens (Meta's hub settings). Defaults to None.
        drop_path_rate (float): Stochastic depth, rising linearly to this
            rate at the last block. Defaults to 0.
        frozen_stages (int): -1 freezes nothing; ``k >= 0`` freezes the patch
            embedding, class / register tokens, positional embedding and the
            first ``k`` blocks; ``num_layers`` also freezes the final norm.
            Frozen modules stay in eval mode. Defaults to -1.
        freeze (bool): Freeze everything (``frozen_stages=num_layers``).
            Defaults to False.
        with_cp (bool): Gradient checkpointing of the trainable blocks.
            Defaults to False.
        layer_scale_init_value (float): Defaults to 1e-5.
        init_cfg (dict | list[dict], optional): ``dict(type='Pretrained',
            checkpoint=PATH[, prefix=...])`` loads Meta or MMPretrain
            weights. Defaults to None.
        pretrained (str, optional): Shorthand for that init_cfg, as set by
            ``EncoderDecoder(pretrained=...)``. Defaults to None.
        **kwargs: Passed on to ``mmpretrain.models.VisionTransformer``
            (e.g. ``drop_rate``, ``in_channels``).
    """
    dinov2_archs = {
        **dict.fromkeys(['s', 'small'], _arch(384, 12, 6)),
        **dict.fromkeys(['b', 'base'], _arch(768, 12, 12)),
        **dict.fromkeys(['l', 'large'], _arch(1024, 24, 16)),
        # MMPretrain's SwiGLUFFNFused turns 4 * 1536 into Meta's 4096 units
        **dict.fromkeys(['g', 'giant'], _arch(1536, 40, 24, 'swiglu_fused')),
    }

    def __init__(self,
                 arch: Union[str, dict] = 'small',
                 out_indices: Union[int, Sequence[int]] = -1,
                 output_cls_token: bool = False,
                 img_size: int = 518,
                 patch_size: int = 14,
                 num_register_tokens: int = 0,
                 interpolate_offset: Optional[float] = None,
                 interpolate_antialias: Optional[bool] = None,
                 drop_path_rate: float = 0.,
                 frozen_stages: int = -1,
                 freeze: bool = False,
                 with_cp: bool = False,
                 layer_scale_init_value: float = 1e-5,
                 init_cfg: Optional[Union[dict, List[dict]]] = None,
                 pretrained: Optional[str] = None,
                 **kwargs) -> None:
        init_cfg = self._init_cfg_or_pretrained(init_cfg, pretrained)
        arch_name = arch if isinstance(arch, str) else 'custom'
        if isinstance(arch, str):
            arch = self._arch_from_zoo(self.dinov2_archs, arch)
        arch = dict(arch)
        layer_cfgs = kwargs.pop('layer_cfgs', dict())
        if isinstance(layer_cfgs, dict):  # a list is per layer, left as is
            layer_cfgs = {
                'ffn_type': arch.pop('ffn_type', 'origin'),
                **layer_cfgs
            }
        super().__init__(
            arch=arch,
            img_size=img_size,
            patch_size=patch_size,
            out_indices=-1,  # ours are checked below
            drop_path_rate=drop_path_rate,
            out_type='featmap',
            with_cls_token=True,
            final_norm=True,
            frozen_stages=-1,  # ours include the register tokens
            layer_scale_init_value=layer_scale_init_value,
            layer_cfgs=layer_cfgs,
            init_cfg=init_cfg,
            **kwargs)

        self.arch_name = arch_name
        self.out_indices = self._check_out_indices(out_indices)
        self.output_cls_token = output_cls_token
        self.patch_size = patch_size
        self.with_cp = with_cp

        self.num_register_tokens = num_register_tokens
        if num_register_tokens:
            self.register_tokens = nn.Parameter(
                torch.zeros(1, num_register_tokens, self.embed_dims))
        else:
            self.register_tokens = None
        if interpolate_offset is None:
            interpolate_offset = 0. if num_register_tokens else 0.1
        if interpolate_antialias is None:
            interpolate_antialias = bool(num_register_tokens)
        self.interpolate_offset = interpolate_offset
        self.interpolate_antialias = interpolate_antialias

        self._add_ffn_drop_path(drop_path_rate)
        self._set_frozen_stages(frozen_stages, freeze)

    def _add_ffn_drop_path(self, drop_path_rate: float) -> None:
        """Give SwiGLU FFNs the stochastic depth MMPretrain leaves out."""
        if drop_path_rate <= 0:
            return
        for layer in self.layers:
            ffn = layer.ffn
            if hasattr(ffn, 'w12') and isinstance(ffn.dropout_layer,
                                                  nn.Identity):
                ffn.dropout_layer = DropPath(layer.attn.out_drop.drop_prob)

    # ----------------------------------------------------------- freezing
    def _blocks(self) -> nn.ModuleList:
        return self.layers

    def _stem_modules(self) -> List[nn.Module]:
        return [self.patch_embed, self.drop_after_pos, self.pre_norm]

    def _stem_params(self) -> List[Optional[nn.Parameter]]:
        return [self.cls_token, self.pos_embed, self.register_tokens]

    # ------------------------------------------------------------ weights
    def init_weights(self) -> None:
        """Random init, or load the ``Pretrained`` init_cfg's checkpoint."""
        pretrained, others = self._split_init_cfg()
        if not pretrained:
            super().init_weights()
            self._init_register_tokens()
            return
        was_init = self.is_init
        self._init_weights_without(others)
        if not was_init:
            self._init_register_tokens()
            self._load_init_cfg(pretrained[-1])

    def _init_register_tokens(self) -> None:
        if self.register_tokens is not None:
            nn.init.normal_(self.register_tokens, std=1e-6)

    def load_pretrained(self,
                        checkpoint: str,
                        prefix: Optional[str] = None) -> None:
        """Load DINOv2 weights of any published format, checking the arch.

        Meta's, timm's, HuggingFace transformers' and MMPretrain's key names
        are told apart by :func:`~.dinov2_checkpoint.detect_format`;
        ``torch.save`` files and ``.safetensors`` are read alike (see
        :func:`~.checkpoint_io.load_checkpoint_file`, which also takes a
        transformers model folder); whole-model checkpoints (``state_dict``,
        ``module.`` / ``backbone.`` / ``dinov2.`` prefixes) are unwrapped.

        Raises:
            FileNotFoundError: ``checkpoint`` is a local path that does not
                exist.
            ValueError: the file holds another architecture (embed dims,
                depth, FFN, patch size or register tokens differ).
            RuntimeError: the file lacks some of the backbone's weights.
                Keys the backbone does not have are only logged (MMEngine's
                own ``load_checkpoint`` does the same with ``strict=False``).

        Args:
            checkpoint (str): Path or URL of the file (or a transformers
                model folder).
            prefix (str, optional): Load only the keys under this prefix.
        """
        raw = self._read_checkpoint(checkpoint, folder_ok=True)
        state_dict, fmt = to_mmpretrain(raw, prefix)
        found = infer_arch(state_dict)
        self._check_arch(found, checkpoint)
        self._load_checked(state_dict, checkpoint, fmt, found)

    def _infer_arch(self, state_dict: StateDict) -> DINOv2Arch:
        return infer_arch(state_dict)

    def _arch_hint(self, found: DINOv2Arch, expected: DINOv2Arch) -> str:
        """Name the setting a file with (or without) registers needs."""
        if found.num_register_tokens == expected.num_register_tokens:
            return ''
        return (' (a "with registers" checkpoint needs '
                f'num_register_tokens={found.num_register_tokens})')

    # ------------------------------------------------------------ forward
    def _pos_embed_for(self, hw: Tuple[int, int]) -> torch.Tensor:
        """Positional embedding for an ``hw`` patch grid (Meta's resize)."""
        src = tuple(self.patch_resolution)
        if tuple(hw) == src:
            return self.pos_embed
        pos_embed = self.pos_embed.float()
        grid = pos_embed[:, 1:].reshape(1, *src, -1).permute(0, 3, 1, 2)
        resize = partial(
            F.interpolate,
            mode=self.interpolate_mode,
            antialias=self.interpolate_antialias)
        if self.interpolate_offset:
            # Meta's scale factor, not the size ratio: it also shifts the
            # sampling positions slightly.
            grid = resize(
                grid,
                scale_factor=tuple((n + self.interpolate_offset) / s
                                   for n, s in zip(hw, src)))
        else:
            grid = resize(grid, size=tuple(hw))
        assert tuple(grid.shape[-2:]) == tuple(hw), grid.shape
        grid = grid.flatten(2).transpose(1, 2)
        return torch.cat((pos_embed[:, :1], grid),
                         dim=1).to(self.pos_embed.dtype)

    def forward(self, x: torch.Tensor) -> Tuple[Output, ...]:
        """Normed patch features of the ``out_indices`` blocks.

        Args:
            x (Tensor): Images (B, 3, H, W), any H and W.

        Returns:
            tuple: per index, a map (B, C, ceil(H / 14), ceil(W / 14)), or
            ``[map, cls_token]`` with a (B, C) class token when
            ``output_cls_token``.
        """
        x = self._centre_pad(x)
        tokens, hw = self.patch_embed(x)
        batch = tokens.shape[0]
        tokens = torch.cat((self.cls_token.expand(batch, -1, -1), tokens),
                           dim=1)
        tokens = tokens + self._pos_embed_for(hw)
        if self.register_tokens is not None:
            tokens = torch.cat(
                (tokens[:, :1], self.register_tokens.expand(
                    batch, -1, -1), tokens[:, 1:]),
                dim=1)
        tokens = self.pre_norm(self.drop_after_pos(tokens))
        return self._feature_maps(tokens, hw, self.ln1)

    def get_layer_depth(self, param_name: str, prefix: str = ''):
        """Layer-wise depth of a parameter for learning-rate decay.

        As MMPretrain's ViT: embeddings and tokens 0, block ``i`` ``i + 1``,
        the final norm (and anything outside ``prefix``) ``num_layers + 1``.

        Args:
            param_name (str): Name of the parameter.
            prefix (str): The backbone's prefix in ``param_name``.

        Returns:
            tuple[int, int]: the depth and the number of depths.
        """
        if param_name == prefix + 'register_tokens':
            return 0, self.num_layers + 2
        return super().get_layer_depth(param_name, prefix)
