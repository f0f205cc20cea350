"""DINOv2 checkpoints: Meta <-> MMPretrain key names, format and arch.

Meta's DINOv2 repository publishes plain state dicts (``blocks.3.ls1.gamma``,
``norm.weight``, ...); MMPretrain's ``VisionTransformer`` names the same
tensors differently (``layers.3.attn.gamma1.weight``, ``ln1.weight``, ...).
The renaming table lives here once and is used in both directions by the
``DINOv2`` backbone and by ``tools/convert_dinov2.py``.

Only this module knows about key names; it depends on nothing but torch.
"""
import re
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import torch

StateDict = Dict[str, torch.Tensor]

META = 'meta'
MMPRETRAIN = 'mmpretrain'

#: Meta name -> MMPretrain name, outside the blocks.
_TOP_LEVEL = (
    ('patch_embed.proj.', 'patch_embed.projection.'),
    ('norm.', 'ln1.'),
    ('cls_token', 'cls_token'),
    ('pos_embed', 'pos_embed'),
    ('register_tokens', 'register_tokens'),
)

#: Meta name -> MMPretrain name, inside ``blocks.<i>.`` / ``layers.<i>.``.
_IN_BLOCK = (
    ('norm1.', 'ln1.'),
    ('attn.qkv.', 'attn.qkv.'),
    ('attn.proj.', 'attn.proj.'),
    ('ls1.gamma', 'attn.gamma1.weight'),
    ('norm2.', 'ln2.'),
    ('mlp.fc1.', 'ffn.layers.0.0.'),
    ('mlp.fc2.', 'ffn.layers.1.'),
    ('mlp.w12.', 'ffn.w12.'),  # SwiGLU (ViT-g)
    ('mlp.w3.', 'ffn.w3.'),
    ('ls2.gamma', 'ffn.gamma2.weight'),
)

#: Meta keys that the backbone deliberately does not have.
META_DROPPED_KEYS = ('mask_token', )

# Meta's training code may store blocks in chunks: ``blocks.<chunk>.<i>.``,
# where ``i`` is already the global block index (earlier slots are Identity).
_CHUNKED_BLOCK = re.compile(r'^blocks\.\d+\.(\d+)\.')
_META_BLOCK = re.compile(r'^blocks\.(\d+)\.(.*)$')
_MMPRETRAIN_BLOCK = re.compile(r'^layers\.(\d+)\.(.*)$')

#: wrappers around the weights in full training checkpoints, tried in order.
_WRAPPER_KEYS = ('state_dict', 'model', 'teacher', 'module')
#: prefixes in front of the backbone's keys in full-model checkpoints.
_MODEL_PREFIXES = ('module.', 'backbone.')


def _rename(name: str, table: tuple, forward: bool) -> Optional[str]:
    """Rename by the first matching prefix of ``table``; None if none."""
    for meta_name, mmpretrain_name in table:
        src, dst = ((meta_name, mmpretrain_name) if forward else
                    (mmpretrain_name, meta_name))
        if name == src or (src.endswith('.') and name.startswith(src)):
            return dst + name[len(src):]
    return None


def unwrap_state_dict(checkpoint: dict,
                      prefix: Optional[str] = None) -> StateDict:
    """Find the backbone's tensors inside a loaded checkpoint.

    Accepts a plain state dict (Meta's published files), an MMEngine
    checkpoint (``{'state_dict': ..., 'meta': ...}``), a DDP-wrapped one
    (``module.`` prefix) and a whole segmentor / classifier, of which only
    the ``backbone.`` entries are kept.

    Args:
        checkpoint (dict): What ``torch.load`` returned.
        prefix (str, optional): Keep only keys starting with this prefix and
            strip it (as MMEngine's ``Pretrained`` init ``prefix``). If None,
            ``module.`` and ``backbone.`` are stripped when present.

    Returns:
        dict[str, Tensor]: the backbone's state dict, keys without prefix.
    """
    state = checkpoint
    for key in _WRAPPER_KEYS:
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise TypeError(f'a checkpoint must be a dict of tensors, got '
                        f'{type(state).__name__}')
    prefixes = (prefix, ) if prefix else _MODEL_PREFIXES
    for pre in prefixes:
        if any(k.startswith(pre) for k in state):
            state = {
                k[len(pre):]: v
                for k, v in state.items() if k.startswith(pre)
            }
        elif prefix:
            raise KeyError(f'no key of the checkpoint starts with the '
                           f"prefix '{prefix}'")
    return {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}


def detect_format(state_dict: StateDict) -> str:
    """Tell Meta's key names from MMPretrain's.

    Args:
        state_dict (dict): A backbone state dict (see
            :func:`unwrap_state_dict`).

    Returns:
        str: ``'meta'`` or ``'mmpretrain'``.
    """
    keys = list(state_dict)
    meta = any(
        k.startswith(('blocks.', 'patch_embed.proj.', 'norm.')) for k in keys)
    mmpretrain = any(
        k.startswith(('layers.', 'patch_embed.projection.', 'ln1.'))
        for k in keys)
    if meta == mmpretrain:
        what = 'both' if meta else 'neither'
        raise ValueError(
            f"the checkpoint's keys match {what} of DINOv2's formats (Meta: "
            "'blocks.<i>.', 'norm.'; MMPretrain: 'layers.<i>.', 'ln1.'). "
            f'First keys: {keys[:6]}')
    return META if meta else MMPRETRAIN


def _rename_all(state_dict: StateDict, forward: bool) -> StateDict:
    """Apply the renaming tables Meta -> MMPretrain (``forward``) or back;
    names the tables do not cover are kept."""
    block_re, prefix = ((_META_BLOCK, 'layers') if forward else
                        (_MMPRETRAIN_BLOCK, 'blocks'))
    out = {}
    for name, tensor in state_dict.items():
        block = block_re.match(name)
        if block:
            renamed = _rename(block.group(2), _IN_BLOCK, forward=forward)
            if renamed is not None:
                renamed = f'{prefix}.{block.group(1)}.{renamed}'
        else:
            renamed = _rename(name, _TOP_LEVEL, forward=forward)
        out[renamed or name] = tensor
    return out


def meta_to_mmpretrain(state_dict: StateDict) -> StateDict:
    """Rename a Meta DINOv2 state dict to MMPretrain's ViT names.

    ``mask_token`` (used only by DINOv2's masked-image pre-training) is
    dropped; keys this table does not know are kept as they are, so that a
    later ``load_state_dict`` reports them as unexpected.

    Args:
        state_dict (dict): Keys as in Meta's ``DinoVisionTransformer``.

    Returns:
        dict: Keys as in ``mmpretrain.models.VisionTransformer``.
    """
    kept = {
        _CHUNKED_BLOCK.sub(r'blocks.\1.', name): tensor
        for name, tensor in state_dict.items()
        if name not in META_DROPPED_KEYS
    }
    return _rename_all(kept, forward=True)


def mmpretrain_to_meta(state_dict: StateDict,
                       add_mask_token: bool = True) -> StateDict:
    """Rename an MMPretrain ViT state dict to Meta's DINOv2 names.

    Args:
        state_dict (dict): Keys as in ``mmpretrain.models.VisionTransformer``.
        add_mask_token (bool): Add a zero ``mask_token`` so that Meta's
            model loads the result with ``strict=True``. Defaults to True.

    Returns:
        dict: Keys as in Meta's ``DinoVisionTransformer``.
    """
    out = _rename_all(state_dict, forward=False)
    if add_mask_token and 'mask_token' not in out and 'cls_token' in out:
        cls_token = out['cls_token']
        out['mask_token'] = cls_token.new_zeros(1, cls_token.shape[-1])
    return out


def to_mmpretrain(checkpoint: dict,
                  prefix: Optional[str] = None) -> Tuple[StateDict, str]:
    """Unwrap a checkpoint of either format into MMPretrain key names.

    Args:
        checkpoint (dict): What ``torch.load`` returned.
        prefix (str, optional): See :func:`unwrap_state_dict`.

    Returns:
        tuple[dict, str]: the state dict and the detected source format.
    """
    state_dict = unwrap_state_dict(checkpoint, prefix)
    fmt = detect_format(state_dict)
    if fmt == META:
        state_dict = meta_to_mmpretrain(state_dict)
    return state_dict, fmt


_SIZE_LETTERS = {384: 'S', 768: 'B', 1024: 'L', 1536: 'g'}


@dataclass(frozen=True)
class DINOv2Arch:
    """What a state dict reveals about a DINOv2 ViT.

    The number of attention heads cannot be read from the weights (``qkv``
    is ``3 * embed_dims`` wide whatever the split), so it is not checked.
    """
    embed_dims: int
    num_layers: int
    patch_size: int
    ffn_type: str  # 'mlp' or 'swiglu'
    ffn_hidden: int
    num_register_tokens: int

    @property
    def name(self) -> str:
        """E.g. ``ViT-S/14``; ``ViT-<dims>d/<patch>`` for custom sizes."""
        letter = _SIZE_LETTERS.get(self.embed_dims, f'{self.embed_dims}d')
        return f'ViT-{letter}/{self.patch_size}'

    def describe(self) -> str:
        regs = (f', {self.num_register_tokens} register tokens'
                if self.num_register_tokens else '')
        return (f'{self.name} (embed_dims {self.embed_dims}, '
                f'{self.num_layers} blocks, {self.ffn_type.upper()} FFN '
                f'hidden {self.ffn_hidden}, patch {self.patch_size}{regs})')

    def mismatches(self, other: 'DINOv2Arch') -> List[str]:
        """Fields that differ, as ``'name mine vs theirs'`` strings."""
        return [
            f'{field} {getattr(self, field)} vs {getattr(other, field)}'
            for field in self.__dataclass_fields__
            if getattr(self, field) != getattr(other, field)
        ]


def infer_arch(state_dict: StateDict) -> DINOv2Arch:
    """Read the architecture off an MMPretrain-named state dict.

    Args:
        state_dict (dict): Keys as in ``mmpretrain.models.VisionTransformer``
            (convert Meta's with :func:`meta_to_mmpretrain` first).

    Returns:
        DINOv2Arch: the architecture.
    """
    try:
        proj = state_dict['patch_embed.projection.weight']
    except KeyError:
        raise KeyError("the state dict has no 'patch_embed.projection."
                       "weight'; is it a DINOv2 / ViT backbone?") from None
    layer_ids = {
        int(m.group(1))
        for m in map(_MMPRETRAIN_BLOCK.match, state_dict) if m
    }
    if 'layers.0.ffn.w12.weight' in state_dict:
        ffn_type = 'swiglu'
        ffn_hidden = state_dict['layers.0.ffn.w3.weight'].shape[1]
    else:
        ffn_type = 'mlp'
        fc1 = state_dict.get('layers.0.ffn.layers.0.0.weight')
        ffn_hidden = 0 if fc1 is None else fc1.shape[0]
    registers = state_dict.get('register_tokens')
    return DINOv2Arch(
        embed_dims=proj.shape[0],
        num_layers=len(layer_ids),
        patch_size=proj.shape[-1],
        ffn_type=ffn_type,
        ffn_hidden=ffn_hidden,
        num_register_tokens=0 if registers is None else registers.shape[1])
