"""DINOv3 checkpoints: Meta's, timm's and transformers' key names, and arch.

The ``DINOv3`` backbone names its tensors as Meta's release does
(``blocks.3.ls1.gamma``, ``storage_tokens``, ``norm.weight``, ...), so
Meta's files (``dinov3_vits16_pretrain_lvd1689m-*.pth``) and the backbone's
own checkpoints load as they are. timm's port (``vit_*_patch16_dinov3*``,
``timm/eva.py``) and HuggingFace transformers' ``DINOv3ViTModel``
(``model.safetensors``) name them differently; their names are renamed
to Meta's here, in one place. Per block:

============================  ======================  =====================
Meta (and this backbone)      timm                    transformers
============================  ======================  =====================
``norm1.``                    ``norm1.``              ``norm1.``
``attn.qkv.weight``           ``attn.qkv.weight``     ``attention.{q,k,v}``
                                                      ``_proj.weight``
``attn.qkv.bias`` (masked)    ``attn.{q,v}_bias``     ``attention.{q,k,v}``
                                                      ``_proj.bias``
``attn.proj.``                ``attn.proj.``          ``attention.o_proj.``
``ls1.gamma``                 ``gamma_1``             ``layer_scale1.lambda1``
``norm2.``                    ``norm2.``              ``norm2.``
``mlp.fc1.`` / ``mlp.fc2.``   ``mlp.fc1.`` /          ``mlp.up_proj.`` /
(GELU MLP)                    ``mlp.fc2.``            ``mlp.down_proj.``
``mlp.w1.`` (gate), ``w2.``,  ``mlp.fc1_g.``,         ``mlp.gate_proj.``,
``w3.`` (SwiGLU)              ``fc1_x.``, ``fc2.``    ``up_proj.``,
                                                      ``down_proj.``
``ls2.gamma``                 ``gamma_2``             ``layer_scale2.lambda1``
============================  ======================  =====================

Blocks are ``blocks.<i>.`` (Meta, timm) or ``layer.<i>.`` (transformers'
files; ``model.layer.<i>.`` in its 5.x modules). Outside the blocks:
``cls_token``; ``storage_tokens`` = timm's ``reg_token`` = transformers'
``embeddings.register_tokens``; ``patch_embed.proj.`` = transformers'
``embeddings.patch_embeddings.``; ``norm.`` everywhere.

Meta's ``qkv.bias_mask`` is applied to ``qkv.bias`` and dropped: Meta's
attention uses ``bias * bias_mask``, and the released files' masks are
zero, so their biases are zero in effect (the key third is zeroed in any
case: a key bias cannot change the attention). Dropped too: the
masked-image ``mask_token``; Meta's ``local_cls_norm`` (7B and the
satellite ViT-L: a norm used only on local crops in pre-training). Meta's
stored RoPE ``rope_embed.periods`` is kept for the backbone to check, not
to load.

Only this module knows about key names; it depends on nothing but torch.
"""
import re
from dataclasses import dataclass
from typing import Optional, Tuple

import torch

from .dinov2_checkpoint import (META, TIMM, TRANSFORMERS, ArchKeys,
                                DINOv2Arch, StateDict, rename_prefix,
                                unwrap_state_dict)

#: Meta's stored RoPE periods: checked by the backbone, never loaded.
META_ROPE_PERIODS = 'rope_embed.periods'

#: keys each format has that the backbone deliberately does not
_DROPPED = {
    META: re.compile(r'^(mask_token$|local_cls_norm\.)'),
    TIMM: re.compile(r'(?!)'),  # matches nothing
    TRANSFORMERS: re.compile(r'^embeddings\.mask_token$'),
}
_BLOCK = {
    META: re.compile(r'^blocks\.(\d+)\.(.*)$'),
    TIMM: re.compile(r'^blocks\.(\d+)\.(.*)$'),
    TRANSFORMERS: re.compile(r'^(?:model\.)?layer\.(\d+)\.(.*)$'),
}
#: other name -> Meta name, outside the blocks (names not listed are equal)
_TOP_LEVEL = {
    META: {},
    TIMM: {'reg_token': 'storage_tokens'},
    TRANSFORMERS: {
        'embeddings.cls_token': 'cls_token',
        'embeddings.register_tokens': 'storage_tokens',
        'embeddings.patch_embeddings.': 'patch_embed.proj.',
    },
}
#: other name -> Meta name inside a block: (GELU MLP, SwiGLU) blocks.
#: The q / k / v projections and biases are fused by _fuse_qkv.
_TIMM_SCALES = {'gamma_1': 'ls1.gamma', 'gamma_2': 'ls2.gamma'}
_HF_NAMES = {
    'attention.o_proj.': 'attn.proj.',
    'layer_scale1.lambda1': 'ls1.gamma',
    'layer_scale2.lambda1': 'ls2.gamma',
}
_IN_BLOCK = {
    META: ({}, {}),
    TIMM: (_TIMM_SCALES, {
        **_TIMM_SCALES, 'mlp.fc1_g.': 'mlp.w1.',
        'mlp.fc1_x.': 'mlp.w2.', 'mlp.fc2.': 'mlp.w3.'
    }),
    TRANSFORMERS: ({
        **_HF_NAMES, 'mlp.up_proj.': 'mlp.fc1.',
        'mlp.down_proj.': 'mlp.fc2.'
    }, {
        **_HF_NAMES, 'mlp.gate_proj.': 'mlp.w1.',
        'mlp.up_proj.': 'mlp.w2.', 'mlp.down_proj.': 'mlp.w3.'
    }),
}
#: a block key only SwiGLU blocks have, per format
_GATE = {META: 'mlp.w1.weight', TIMM: 'mlp.fc1_g.weight',
         TRANSFORMERS: 'mlp.gate_proj.weight'}


def detect_format(state_dict: StateDict) -> str:
    """Tell Meta's, timm's and transformers' DINOv3 key names apart.

    Args:
        state_dict (dict): A backbone state dict (see
            :func:`~.dinov2_checkpoint.unwrap_state_dict`).

    Returns:
        str: ``'meta'``, ``'timm'`` or ``'transformers'``.

    Raises:
        ValueError: a DINOv2 / plain ViT checkpoint (learned position
            embedding), or keys of none or several of the formats.
    """
    keys = list(state_dict)
    if 'pos_embed' in state_dict or any(k.startswith('layers.')
                                        for k in keys):
        raise ValueError(
            'the checkpoint is a DINOv2 / ViT with a learned position '
            "embedding ('pos_embed') or MMPretrain names ('layers.<i>.'), "
            'not DINOv3 (RoPE, no position embedding): load it with the '
            f'DINOv2 backbone. First keys: {keys[:6]}')
    found = {
        META: 'storage_tokens' in state_dict or any(
            k.endswith('.ls1.gamma') for k in keys),
        TIMM: 'reg_token' in state_dict or any(
            k.endswith('.gamma_1') for k in keys),
        TRANSFORMERS: any(
            k.startswith(('embeddings.', 'layer.', 'model.layer.'))
            for k in keys),
    }
    hits = [name for name, hit in found.items() if hit]
    if len(hits) != 1:
        raise ValueError(
            f"the checkpoint's keys match {' and '.join(hits) or 'none'} "
            "of DINOv3's formats (Meta: 'storage_tokens', "
            "'blocks.<i>.ls1.gamma'; timm: 'reg_token', "
            "'blocks.<i>.gamma_1'; transformers: 'embeddings.', "
            f"'layer.<i>.'). First keys: {keys[:6]}")
    return hits[0]


def _fused_qkv_bias(query: Optional[torch.Tensor],
                    value: Optional[torch.Tensor]) -> torch.Tensor:
    """Meta's ``qkv.bias`` from the query and value biases (either may be
    absent: zero); the key third is zero, as Meta's mask makes it."""
    ref = query if query is not None else value
    zeros = ref.new_zeros(ref.shape)
    return torch.cat([zeros if b is None else b for b in (query, zeros,
                                                          value)])


def _fuse_qkv(block: StateDict, fmt: str) -> StateDict:
    """Meta's fused ``attn.qkv`` from timm's separate query / value biases
    or transformers' separate q / k / v projections, in place. A key bias,
    where a file stores one, is dropped: it cannot change the attention
    (softmax ignores a constant added to every key's score)."""
    if fmt == META:
        mask = block.pop('attn.qkv.bias_mask', None)
        if 'attn.qkv.bias' in block:
            bias = block['attn.qkv.bias']
            if mask is not None:  # Meta's forward uses bias * bias_mask
                bias = bias * mask.to(bias.dtype)
                if not bias.isfinite().all():
                    raise ValueError(
                        "the checkpoint's qkv.bias_mask is not initialised "
                        '(NaN): its model would compute NaN')
            third = bias.shape[0] // 3
            block['attn.qkv.bias'] = torch.cat(
                (bias[:third], bias.new_zeros(third), bias[2 * third:]))
        return block
    if fmt == TIMM:
        names = dict(weight=None, bias=('attn.q_bias', 'attn.v_bias'))
    else:
        names = dict(
            weight=tuple(f'attention.{x}_proj.weight' for x in 'qkv'),
            bias=('attention.q_proj.bias', 'attention.v_proj.bias'))
    if names['weight'] and all(n in block for n in names['weight']):
        block['attn.qkv.weight'] = torch.cat(
            [block.pop(n) for n in names['weight']])
    query, value = (block.pop(n, None) for n in names['bias'])
    block.pop('attention.k_proj.bias', None)
    if query is not None or value is not None:
        block['attn.qkv.bias'] = _fused_qkv_bias(query, value)
    return block


def to_meta_names(state_dict: StateDict, fmt: str) -> StateDict:
    """Rename a DINOv3 state dict of format ``fmt`` to Meta's names.

    Keys the tables do not know are kept as they are, so that a later
    ``load_state_dict`` reports them.

    Args:
        state_dict (dict): A backbone state dict.
        fmt (str): ``'meta'``, ``'timm'`` or ``'transformers'``.

    Returns:
        dict: Keys as in Meta's ``DinoVisionTransformer`` (and the
        ``DINOv3`` backbone), without the dropped ones (module docstring).
    """
    blocks, out = {}, {}
    for name, tensor in state_dict.items():
        if _DROPPED[fmt].match(name):
            continue
        match = _BLOCK[fmt].match(name)
        if match:
            blocks.setdefault(int(match.group(1)),
                              {})[match.group(2)] = tensor
        else:
            out[rename_prefix(name, _TOP_LEVEL[fmt].items()) or name] = tensor
    for index, block in sorted(blocks.items()):
        table = _IN_BLOCK[fmt][_GATE[fmt] in block]
        block = _fuse_qkv(block, fmt)
        for name, tensor in block.items():
            renamed = rename_prefix(name, table.items()) or name
            out[f'blocks.{index}.{renamed}'] = tensor
    if any(k.startswith('cls_norm.') for k in out):
        raise ValueError(
            "the checkpoint has an untied class-token norm ('cls_norm.', "
            "Meta's untie_cls_and_patch_norms), which the DINOv3 backbone "
            'does not implement (no released DINOv3 ViT uses one)')
    return out


def to_meta(checkpoint: dict,
            prefix: Optional[str] = None) -> Tuple[StateDict, str]:
    """Unwrap a checkpoint of any of the three formats into Meta's names.

    Args:
        checkpoint (dict): What the file held (a state dict, an MMEngine
            checkpoint, a whole segmentor / classifier, ...).
        prefix (str, optional): See
            :func:`~.dinov2_checkpoint.unwrap_state_dict`.

    Returns:
        tuple[dict, str]: the state dict and the detected source format.
    """
    state_dict = unwrap_state_dict(checkpoint, prefix)
    fmt = detect_format(state_dict)
    return to_meta_names(state_dict, fmt), fmt


#: names of the released sizes, by (embed_dims, gated FFN)
_SIZE_NAMES = {
    (384, False): 'S',
    (384, True): 'S+',
    (768, False): 'B',
    (1024, False): 'L',
    (1024, True): 'L+',
    (1280, True): 'H+',
    (4096, True): '7B',
}


@dataclass(frozen=True)
class DINOv3Arch(DINOv2Arch):
    """What a DINOv3 state dict reveals: DINOv2's fields, DINOv3's names.

    ``num_register_tokens`` counts Meta's "storage" tokens.
    """

    @property
    def name(self) -> str:
        """E.g. ``ViT-S+/16``; ``ViT-<dims>d/<patch>`` for custom sizes."""
        size = _SIZE_NAMES.get((self.embed_dims, self.ffn_type == 'swiglu'),
                               f'{self.embed_dims}d')
        return f'ViT-{size}/{self.patch_size}'


_META_ARCH_KEYS = ArchKeys(
    backbone='DINOv3',
    patch_embed='patch_embed.proj.weight',
    block=_BLOCK[META],
    swiglu_in='blocks.0.mlp.w1.weight',
    swiglu_out='blocks.0.mlp.w3.weight',
    mlp_in='blocks.0.mlp.fc1.weight',
    registers='storage_tokens')


def infer_arch(state_dict: StateDict) -> DINOv3Arch:
    """Read the architecture off a Meta-named DINOv3 state dict.

    Args:
        state_dict (dict): Keys as in Meta's release (convert the others
            with :func:`to_meta_names` first).

    Returns:
        DINOv3Arch: the architecture.
    """
    return DINOv3Arch.read(state_dict, _META_ARCH_KEYS)
