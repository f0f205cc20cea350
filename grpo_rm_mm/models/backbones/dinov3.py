"""DINOv3 ViT backbone for MMSegmentation (and MMPretrain as mmseg.DINOv3)."""
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn.bricks.drop import DropPath
from mmengine.logging import print_log
from mmpretrain.models.backbones.base_backbone import BaseBackbone
from mmseg.registry import MODELS
from torch import Tensor

from .axial_rope import AxialRoPE2d, SinCos, apply_rope, rope_periods
from .dino_backbone_base import DINOBackboneMixin, Output
from .dinov3_checkpoint import (META_ROPE_PERIODS, DINOv3Arch, StateDict,
                                infer_arch, to_meta)


def _arch(embed_dims: int,
          num_layers: int,
          num_heads: int,
          feedforward_channels: int,
          ffn_type: str = 'mlp') -> dict:
    return dict(
        embed_dims=embed_dims,
        num_layers=num_layers,
        num_heads=num_heads,
        feedforward_channels=feedforward_channels,
        ffn_type=ffn_type)


class LayerScale(nn.Module):
    """Per-channel scale of a residual branch (Meta's ``ls1`` / ``ls2``)."""

    def __init__(self, dims: int, init_value: float = 1e-5) -> None:
        super().__init__()
        self.init_value = init_value
        self.gamma = nn.Parameter(torch.full((dims, ), init_value))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.gamma


class Mlp(nn.Module):
    """GELU MLP (ViT-S/B/L): ``fc2(gelu(fc1(x)))``."""

    def __init__(self, dims: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dims, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dims)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


class SwiGLUFFN(nn.Module):
    """SwiGLU FFN (ViT-S+/H+/7B): ``w3(silu(w1(x)) * w2(x))``.

    ``hidden`` is the width of ``w1`` / ``w2`` as stored (Meta derives it
    from ``ffn_ratio`` as 2/3 of the MLP width, rounded up to 8 or 64).
    """

    def __init__(self, dims: int, hidden: int) -> None:
        super().__init__()
        self.w1 = nn.Linear(dims, hidden)
        self.w2 = nn.Linear(dims, hidden)
        self.w3 = nn.Linear(hidden, dims)

    def forward(self, x: Tensor) -> Tensor:
        return self.w3(F.silu(self.w1(x)) * self.w2(x))


class RoPEAttention(nn.Module):
    """Multi-head self-attention with 2-D RoPE on the patch tokens' queries
    and keys; the first ``num_prefix`` tokens (class + registers) are not
    rotated.

    With ``qkv_bias`` the key third of ``qkv.bias`` is never used (Meta
    masks it): it could not change the attention, since softmax ignores a
    constant added to all of a query's scores.
    """

    def __init__(self, dims: int, num_heads: int,
                 qkv_bias: bool = False) -> None:
        super().__init__()
        if dims % num_heads:
            raise ValueError(f'embed_dims {dims} is not divisible by '
                             f'num_heads {num_heads}')
        self.num_heads = num_heads
        self.qkv = nn.Linear(dims, 3 * dims, bias=qkv_bias)
        self.proj = nn.Linear(dims, dims)

    def forward(self,
                x: Tensor,
                rope: Optional[SinCos] = None,
                num_prefix: int = 0) -> Tensor:
        batch, num_tokens, dims = x.shape
        bias = self.qkv.bias
        if bias is not None:
            bias = torch.cat((bias[:dims], bias.new_zeros(dims),
                              bias[2 * dims:]))
        qkv = F.linear(x, self.qkv.weight, bias).reshape(
            batch, num_tokens, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)
        query, key, value = qkv.unbind(0)  # (B, heads, N, head_dim) each
        if rope is not None:
            query, key = (torch.cat(
                (t[:, :, :num_prefix], apply_rope(t[:, :, num_prefix:],
                                                  *rope)),
                dim=2) for t in (query, key))
        out = F.scaled_dot_product_attention(query, key, value)
        return self.proj(out.transpose(1, 2).reshape(batch, num_tokens, dims))


class DINOv3Block(nn.Module):
    """Pre-norm transformer block with layer scale, as DINOv3's.

    Args:
        dims (int): Embedding dimensions.
        num_heads (int): Attention heads.
        ffn_channels (int): Hidden width of the FFN.
        ffn_type (str): ``'mlp'`` (GELU) or ``'swiglu'``.
        qkv_bias (bool): Bias of the query / value projections.
        drop_path_rate (float): Stochastic depth of both branches.
        layer_scale_init_value (float): Initial layer scale.
        norm_eps (float): LayerNorm epsilon.
    """

    def __init__(self,
                 dims: int,
                 num_heads: int,
                 ffn_channels: int,
                 ffn_type: str = 'mlp',
                 qkv_bias: bool = False,
                 drop_path_rate: float = 0.,
                 layer_scale_init_value: float = 1e-5,
                 norm_eps: float = 1e-5) -> None:
        super().__init__()
        ffns = dict(mlp=Mlp, swiglu=SwiGLUFFN)
        if ffn_type not in ffns:
            raise ValueError(f"DINOv3 ffn_type must be 'mlp' or 'swiglu', "
                             f'got {ffn_type!r}')
        self.norm1 = nn.LayerNorm(dims, eps=norm_eps)
        self.attn = RoPEAttention(dims, num_heads, qkv_bias)
        self.ls1 = LayerScale(dims, layer_scale_init_value)
        self.norm2 = nn.LayerNorm(dims, eps=norm_eps)
        self.mlp = ffns[ffn_type](dims, ffn_channels)
        self.ls2 = LayerScale(dims, layer_scale_init_value)
        self.drop_path = DropPath(
            drop_path_rate) if drop_path_rate > 0 else nn.Identity()

    def forward(self,
                x: Tensor,
                rope: Optional[SinCos] = None,
                num_prefix: int = 0) -> Tensor:
        x = x + self.drop_path(
            self.ls1(self.attn(self.norm1(x), rope, num_prefix)))
        return x + self.drop_path(self.ls2(self.mlp(self.norm2(x))))


class PatchEmbed(nn.Module):
    """Non-overlapping patches to tokens (Meta's ``patch_embed.proj``)."""

    def __init__(self, in_channels: int, dims: int, patch_size: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(
            in_channels, dims, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: Tensor) -> Tuple[Tensor, Tuple[int, int]]:
        x = self.proj(x)
        return x.flatten(2).transpose(1, 2), tuple(x.shape[-2:])


@MODELS.register_module()
class DINOv3(DINOBackboneMixin, BaseBackbone):
    """DINOv3 ViT/16 that loads Meta's, timm's and transformers' weights.

    Meta's DINOv3 (arXiv 2508.10104) differs from DINOv2 in the token
    positions: no learned position embedding but a 2-D axial rotary
    embedding (:class:`~.axial_rope.AxialRoPE2d`, base 100, patch centres
    normalised to [-1, 1]) on the queries and keys of the patch tokens
    only; the class token and the 4 register ("storage") tokens are not
    rotated. Blocks have layer scale and LayerNorm eps 1e-5; the FFN is a
    GELU MLP (S, B, L) or SwiGLU (S+, H+, 7B); the released models have no
    query / value bias. Around it, as the ``DINOv2`` backbone does:

    - inputs are centre-padded to multiples of 16 (zeros, the extra pixel
      on the right / bottom), so each map is
      ``(B, C, ceil(H / 16), ceil(W / 16))``; RoPE needs no resizing;
    - every layer in ``out_indices`` passes the final LayerNorm, like
      ``get_intermediate_layers(norm=True)``;
    - blocks after the last index in ``out_indices`` are never run and are
      frozen, so that DDP needs no ``find_unused_parameters``.

    The state dict uses Meta's names; timm's and transformers' files are
    renamed on loading (:mod:`.dinov3_checkpoint`). ``mask_token`` (masked
    pre-training) and the 7B's local-crop class norm are not kept.

    The weights are under the DINOv3 License
    (https://ai.meta.com/resources/models-and-libraries/dinov3-license/),
    not Apache-2.0.

    Args:
        arch (str | dict): ``'small'`` (``'s'``), ``'small-plus'``
            (``'s+'``), ``'base'`` (``'b'``), ``'large'`` (``'l'``),
            ``'huge-plus'`` (``'h+'``), ``'7b'``, or a dict with
            ``embed_dims``, ``num_layers``, ``num_heads``,
            ``feedforward_channels`` (the FFN's hidden width as stored) and
            optionally ``ffn_type`` (``'mlp'`` or ``'swiglu'``). Defaults to
            ``'small'``.
        out_indices (int | Sequence[int]): Blocks whose outputs are
            returned; negative values count from the end. Defaults to -1.
        output_cls_token (bool): Return ``[featmap, cls_token]`` per index
            instead of the map. Defaults to False.
        patch_size (int): Defaults to 16.
        in_channels (int): Defaults to 3.
        num_register_tokens (int): Defaults to 4 (every released model).
        qkv_bias (bool): Query / value biases. Defaults to False (the
            released models: Meta's files store a zero ``qkv.bias``, which
            is checked to be zero and dropped).
        rope_base (float): Defaults to 100.
        rope_shift_coords (float, optional): Training-time RoPE coordinate
            shift. Defaults to None (off).
        rope_jitter_coords (float, optional): Training-time per-axis RoPE
            coordinate scale bound. Defaults to None (off).
        rope_rescale_coords (float, optional): Training-time shared RoPE
            coordinate scale bound (DINOv3 pre-trained with 2). Defaults to
            None (off: fine-tuning sees the coordinates of inference). With
            any of the three on, a lagged ``GRPOOldModelHook`` copy in
            training mode draws coordinates of its own.
        drop_path_rate (float): Stochastic depth, the same for every block
            as in DINOv3. Defaults to 0.
        frozen_stages (int): -1 freezes nothing; ``k >= 0`` freezes the patch
            embedding, class / register tokens and the first ``k`` blocks;
            ``num_layers`` also freezes the final norm. Frozen modules stay
            in eval mode. Defaults to -1.
        freeze (bool): Freeze everything (``frozen_stages=num_layers``).
            Defaults to False.
        with_cp (bool): Gradient checkpointing of the trainable blocks.
            Defaults to False.
        layer_scale_init_value (float): Defaults to 1e-5.
        norm_eps (float): LayerNorm epsilon. Defaults to 1e-5.
        init_cfg (dict | list[dict], optional): ``dict(type='Pretrained',
            checkpoint=PATH[, prefix=...])`` loads Meta, timm or
            transformers weights (.pth, .bin or .safetensors). Defaults to
            None.
        pretrained (str, optional): Shorthand for that init_cfg, as set by
            ``EncoderDecoder(pretrained=...)``. Defaults to None.
    """
    arch_zoo = {
        **dict.fromkeys(['s', 'small'], _arch(384, 12, 6, 1536)),
        **dict.fromkeys(['s+', 'small-plus'],
                        _arch(384, 12, 6, 1536, 'swiglu')),
        **dict.fromkeys(['b', 'base'], _arch(768, 12, 12, 3072)),
        **dict.fromkeys(['l', 'large'], _arch(1024, 24, 16, 4096)),
        **dict.fromkeys(['h+', 'huge-plus'],
                        _arch(1280, 32, 20, 5120, 'swiglu')),
        '7b': _arch(4096, 40, 32, 8192, 'swiglu'),
    }

    def __init__(self,
                 arch: Union[str, dict] = 'small',
                 out_indices: Union[int, Sequence[int]] = -1,
                 output_cls_token: bool = False,
                 patch_size: int = 16,
                 in_channels: int = 3,
                 num_register_tokens: int = 4,
                 qkv_bias: bool = False,
                 rope_base: float = 100.,
                 rope_shift_coords: Optional[float] = None,
                 rope_jitter_coords: Optional[float] = None,
                 rope_rescale_coords: Optional[float] = None,
                 drop_path_rate: float = 0.,
                 frozen_stages: int = -1,
                 freeze: bool = False,
                 with_cp: bool = False,
                 layer_scale_init_value: float = 1e-5,
                 norm_eps: float = 1e-5,
                 init_cfg: Optional[Union[dict, List[dict]]] = None,
                 pretrained: Optional[str] = None) -> None:
        super().__init__(
            init_cfg=self._init_cfg_or_pretrained(init_cfg, pretrained))
        self.arch_name = arch if isinstance(arch, str) else 'custom'
        arch = self._arch_settings(arch)
        self.embed_dims = arch['embed_dims']
        self.num_layers = arch['num_layers']
        self.out_indices = self._check_out_indices(out_indices)
        self.output_cls_token = output_cls_token
        self.patch_size = patch_size
        self.num_register_tokens = num_register_tokens
        self.qkv_bias = qkv_bias
        self.with_cp = with_cp

        self.patch_embed = PatchEmbed(in_channels, self.embed_dims,
                                      patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, self.embed_dims))
        self.storage_tokens = nn.Parameter(
            torch.zeros(1, num_register_tokens,
                        self.embed_dims)) if num_register_tokens else None
        self.rope_embed = AxialRoPE2d(
            self.embed_dims // arch['num_heads'],
            base=rope_base,
            shift_coords=rope_shift_coords,
            jitter_coords=rope_jitter_coords,
            rescale_coords=rope_rescale_coords)
        self.blocks = nn.ModuleList(
            DINOv3Block(
                self.embed_dims,
                arch['num_heads'],
                arch['feedforward_channels'],
                ffn_type=arch.get('ffn_type', 'mlp'),
                qkv_bias=qkv_bias,
                drop_path_rate=drop_path_rate,
                layer_scale_init_value=layer_scale_init_value,
                norm_eps=norm_eps) for _ in range(self.num_layers))
        self.norm = nn.LayerNorm(self.embed_dims, eps=norm_eps)
        self._set_frozen_stages(frozen_stages, freeze)

    def _arch_settings(self, arch: Union[str, dict]) -> dict:
        if isinstance(arch, str):
            return self._arch_from_zoo(self.arch_zoo, arch)
        needed = {'embed_dims', 'num_layers', 'num_heads',
                  'feedforward_channels'}
        if not isinstance(arch, dict) or not needed <= set(arch):
            raise ValueError(f'a custom DINOv3 arch is a dict with '
                             f'{sorted(needed)}, got {arch!r}')
        return dict(arch)

    # ----------------------------------------------------------- freezing
    def _blocks(self) -> nn.ModuleList:
        return self.blocks

    def _stem_modules(self) -> List[nn.Module]:
        return [self.patch_embed]

    def _stem_params(self) -> List[Optional[nn.Parameter]]:
        return [self.cls_token, self.storage_tokens]

    # ------------------------------------------------------------ weights
    def init_weights(self) -> None:
        """Random init as Meta's, or load the ``Pretrained`` checkpoint."""
        pretrained, others = self._split_init_cfg()
        first = not self.is_init
        if first and not pretrained:  # a file sets every weight, or fails
            self._init_random()
        self._init_weights_without(others)
        if first and pretrained:
            self._load_init_cfg(pretrained[-1])

    def _init_random(self) -> None:
        """Meta's initialisation: truncated normal (std 0.02) linears with
        zero biases, normal (std 0.02) class / register tokens."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, LayerScale):
                nn.init.constant_(module.gamma, module.init_value)
        for tokens in (self.cls_token, self.storage_tokens):
            if tokens is not None:
                nn.init.normal_(tokens, std=0.02)

    def load_pretrained(self,
                        checkpoint: str,
                        prefix: Optional[str] = None) -> None:
        """Load Meta-, timm- or transformers-format weights, checking the
        arch first.

        The format is told from the key names (see
        :func:`~.dinov3_checkpoint.detect_format`); whole-model checkpoints
        (``state_dict``, ``module.`` / ``backbone.`` prefixes) are unwrapped.

        Raises:
            FileNotFoundError: ``checkpoint`` is a local path that does not
                exist.
            ValueError: the file is truncated or not a checkpoint; it holds
                another architecture (embed dims, depth, FFN, patch size,
                register tokens, or, from Meta's RoPE periods, head size);
                it has non-zero query / value biases the model lacks.
            RuntimeError: the file lacks some of the backbone's weights.
                Keys the backbone does not have are only logged.

        Args:
            checkpoint (str): Path or URL of the file.
            prefix (str, optional): Load only the keys under this prefix.
        """
        raw = self._read_checkpoint(checkpoint, folder_ok=False)
        state_dict, fmt = to_meta(raw, prefix)
        found = infer_arch(state_dict)
        self._check_arch(found, checkpoint)
        self._check_rope(state_dict.pop(META_ROPE_PERIODS, None), checkpoint)
        self._fit_qkv_bias(state_dict, checkpoint)
        self._load_checked(state_dict, checkpoint, fmt, found)

    def _infer_arch(self, state_dict: StateDict) -> DINOv3Arch:
        return infer_arch(state_dict)

    def _check_rope(self, periods: Optional[Tensor], checkpoint: str) -> None:
        """Meta's files store the RoPE periods: their number gives the head
        size (the weights cannot), their values the base. They are stored
        rounded (bfloat16 in some files), so only checked, not loaded."""
        if periods is None:
            return
        head_dim = self.rope_embed.head_dim
        if periods.numel() != head_dim // 4:
            heads = self.embed_dims // (4 * periods.numel())
            raise ValueError(
                f'checkpoint {checkpoint} has {periods.numel()} RoPE periods '
                f'per axis: head size {4 * periods.numel()} ({heads} heads), '
                f'but {self._describe_model()} with head size {head_dim} '
                f'({self.embed_dims // head_dim} heads)')
        ours = rope_periods(head_dim, self.rope_embed.base)
        if not torch.allclose(periods.float(), ours, rtol=1e-2):
            raise ValueError(
                f'the RoPE periods of checkpoint {checkpoint} '
                f'({periods.tolist()}) are not those of rope_base='
                f'{self.rope_embed.base} ({ours.tolist()})')

    def _fit_qkv_bias(self, state_dict: dict, checkpoint: str) -> None:
        """Reconcile the file's query / value biases with ``qkv_bias``.

        Without biases in the model, the file's must be zero (Meta's
        release stores zeros) and are dropped; with them, a file without
        biases gets zeros (the same function)."""
        names = [f'blocks.{i}.attn.qkv.bias' for i in range(self.num_layers)]
        stored = [n for n in names if n in state_dict]
        if not self.qkv_bias:
            nonzero = [n for n in stored if state_dict[n].any()]
            if nonzero:
                raise ValueError(
                    f'checkpoint {checkpoint} has non-zero query / value '
                    f'biases ({nonzero[:3]}...): build DINOv3 with '
                    'qkv_bias=True to load them')
            for name in stored:
                del state_dict[name]
        elif not stored:
            print_log(
                f'DINOv3(qkv_bias=True): {checkpoint} has no query / value '
                'biases; they start at zero',
                logger='current')
            for name in names:
                state_dict[name] = torch.zeros(3 * self.embed_dims)

    # ------------------------------------------------------------ forward
    def forward(self, x: Tensor) -> Tuple[Output, ...]:
        """Normed patch features of the ``out_indices`` blocks.

        Args:
            x (Tensor): Images (B, 3, H, W), any H and W.

        Returns:
            tuple: per index, a map (B, C, ceil(H / 16), ceil(W / 16)), or
            ``[map, cls_token]`` with a (B, C) class token when
            ``output_cls_token``.
        """
        tokens, grid = self.patch_embed(self._centre_pad(x))
        batch = tokens.shape[0]
        prefix = [self.cls_token.expand(batch, -1, -1)]
        if self.storage_tokens is not None:
            prefix.append(self.storage_tokens.expand(batch, -1, -1))
        tokens = torch.cat((*prefix, tokens), dim=1)
        # one draw of the (optional) coordinate augmentation per forward;
        # float32 at least, as DINOv3 computes it under mixed precision
        rope = self.rope_embed(
            grid,
            device=tokens.device,
            dtype=torch.promote_types(tokens.dtype, torch.float32))
        return self._feature_maps(tokens, grid, self.norm, rope,
                                  self.num_prefix_tokens)

    def get_layer_depth(self, param_name: str,
                        prefix: str = '') -> Tuple[int, int]:
        """Layer-wise depth of a parameter for learning-rate decay.

        As MMPretrain's ViT: patch embedding and tokens 0, block ``i``
        ``i + 1``, the final norm (and anything outside ``prefix``)
        ``num_layers + 1``.

        Args:
            param_name (str): Name of the parameter.
            prefix (str): The backbone's prefix in ``param_name``.

        Returns:
            tuple[int, int]: the depth and the number of depths.
        """
        count = self.num_layers + 2
        if not param_name.startswith(prefix):
            return count - 1, count
        name = param_name[len(prefix):]
        if name in ('cls_token', 'storage_tokens') or name.startswith(
                'patch_embed.'):
            return 0, count
        if name.startswith('blocks.'):
            return int(name.split('.')[1]) + 1, count
        return count - 1, count
