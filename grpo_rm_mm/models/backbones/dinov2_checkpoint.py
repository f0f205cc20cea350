"""DINOv2 checkpoints: every published key layout, format and arch.

DINOv2's weights circulate under four sets of key names:

- Meta's repository (``dinov2_vits14_pretrain.pth``): ``blocks.3.ls1.gamma``,
  ``norm.weight``, ``register_tokens``, SwiGLU (ViT-g) as ``mlp.w12`` /
  ``mlp.w3``;
- timm (``vit_small_patch14_dinov2``, ``..._reg4_dinov2``; ``.pth`` or
  ``model.safetensors``): Meta's names, except ``reg_token`` for the
  registers, a ``pos_embed`` without the class token's slot in the models
  with registers (timm folded that embedding into ``cls_token``), and the
  SwiGLU layers named ``mlp.fc1`` / ``mlp.fc2``;
- HuggingFace transformers (``Dinov2Model``, ``Dinov2WithRegistersModel``;
  ``model.safetensors`` / ``pytorch_model.bin``): ``embeddings.*``,
  ``encoder.layer.3.attention.attention.query``, ``layer_scale1.lambda1``,
  ``layernorm.weight``, SwiGLU as ``mlp.weights_in`` / ``mlp.weights_out``
  (in memory, transformers >= 5 also uses ``attention.q_proj`` ... and
  ``mlp.gate_proj`` / ``up_proj`` / ``down_proj``; both are read);
- MMPretrain's ``VisionTransformer``, which the ``DINOv2`` backbone is:
  ``layers.3.attn.gamma1.weight``, ``ln1.weight``, ...

The format is told from the keys (:func:`detect_format`); timm's and
transformers' names are first brought to Meta's (:func:`to_meta_names`),
and the Meta <-> MMPretrain table below is used in both directions by the
``DINOv2`` backbone and by ``tools/convert_dinov2.py``. Every renaming
happens here and nowhere else; it depends on nothing but torch.
"""
import math
import re
from dataclasses import dataclass
from typing import Callable, Dict, Iterable, List, Optional, Tuple

import torch

StateDict = Dict[str, torch.Tensor]

META = 'meta'
MMPRETRAIN = 'mmpretrain'
TIMM = 'timm'
TRANSFORMERS = 'transformers'

#: every format read, with the key names that tell it (for messages)
FORMATS = {
    META: "Meta's DINOv2 (blocks.<i>.ls1.gamma, norm.weight, "
    'register_tokens)',
    TIMM: "timm (Meta's names with reg_token, pos_embed without the class "
    'slot, SwiGLU as mlp.fc1 / mlp.fc2)',
    TRANSFORMERS: 'HuggingFace transformers Dinov2Model / '
    'Dinov2WithRegistersModel (embeddings.*, encoder.layer.<i>.attention.'
    'attention.query, layer_scale1.lambda1, layernorm.weight)',
    MMPRETRAIN: "MMPretrain's VisionTransformer / this project's DINOv2 "
    '(layers.<i>.attn.gamma1.weight, ln1.weight)',
}

#: key prefixes that mark each family of names
_MARKERS = {
    TRANSFORMERS: ('embeddings.patch_embeddings.', 'encoder.layer.',
                   'layernorm.'),
    MMPRETRAIN: ('layers.', 'patch_embed.projection.', 'ln1.'),
    META: ('blocks.', 'patch_embed.proj.', 'norm.'),  # and timm's
}

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
#: prefixes in front of the backbone's keys in full-model checkpoints
#: (DDP, MMSeg / MMPretrain models, transformers' *ForImageClassification).
_MODEL_PREFIXES = ('module.', 'backbone.', 'dinov2.',
                   'dinov2_with_registers.')


def rename_prefix(name: str,
                  pairs: Iterable[Tuple[str, str]]) -> Optional[str]:
    """Rename by the first ``(src, dst)`` pair whose ``src`` is ``name`` or,
    ending in a dot, a prefix of it; None if none is."""
    for src, dst in pairs:
        if name == src or (src.endswith('.') and name.startswith(src)):
            return dst + name[len(src):]
    return None


def _rename(name: str, table: tuple, forward: bool) -> Optional[str]:
    """Rename by ``table``'s Meta -> MMPretrain pairs (``forward``) or back;
    None if no pair matches."""
    return rename_prefix(name, table if forward else
                         [(dst, src) for src, dst in table])


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


class UnknownCheckpointFormatError(ValueError):
    """A state dict whose key names match no DINOv2 format known here."""


def detect_format(state_dict: StateDict) -> str:
    """Tell the DINOv2 formats apart by their key names (and, between
    Meta's and timm's, by what only timm does).

    Args:
        state_dict (dict): A backbone state dict (see
            :func:`unwrap_state_dict`).

    Returns:
        str: one of :data:`FORMATS`: ``'meta'``, ``'timm'``,
        ``'transformers'`` or ``'mmpretrain'``. timm's models without
        registers (ViT-S/B/L) have exactly Meta's names and give ``'meta'``.

    Raises:
        UnknownCheckpointFormatError: the keys match no format, or several.
    """
    keys = list(state_dict)
    found = [
        fmt for fmt, marks in _MARKERS.items()
        if any(k.startswith(marks) for k in keys)
    ]
    if len(found) != 1:
        what = ('several DINOv2 formats (' + ', '.join(found) + ')'
                if found else 'no DINOv2 format known here')
        known = '; '.join(f'{name}: {how}' for name, how in FORMATS.items())
        raise UnknownCheckpointFormatError(
            f"the checkpoint's keys match {what}. First keys: {keys[:8]}. "
            f'Known formats: {known}')
    if found[0] == META and _timm_only(state_dict):
        return TIMM
    return found[0]


# ------------------------------------------------------------------- timm
_TIMM_FC = re.compile(r'^(blocks\.\d+\.mlp\.)(fc1|fc2)\.')
_TIMM_SWIGLU = {'fc1': 'w12', 'fc2': 'w3'}


def _timm_packed_swiglu(state_dict: StateDict) -> bool:
    """timm names Meta's SwiGLU ``w12`` / ``w3`` ``fc1`` / ``fc2``; it is a
    SwiGLU when ``fc1`` is twice as wide as ``fc2``'s input (a plain MLP's
    are equal)."""
    for name, fc1 in state_dict.items():
        match = _TIMM_FC.match(name)
        if match and name.endswith('fc1.weight'):
            fc2 = state_dict.get(match.group(1) + 'fc2.weight')
            return fc2 is not None and fc1.shape[0] == 2 * fc2.shape[1]
    return False


def _pos_embed_has_class_slot(pos_embed: torch.Tensor) -> bool:
    """DINOv2 grids are square: N positions are a grid, N - 1 a grid plus
    the class token's slot."""
    num = pos_embed.shape[1]
    return math.isqrt(num)**2 != num


def _timm_only(state_dict: StateDict) -> bool:
    pos_embed = state_dict.get('pos_embed')
    return ('reg_token' in state_dict or _timm_packed_swiglu(state_dict)
            or (pos_embed is not None
                and not _pos_embed_has_class_slot(pos_embed)))


def timm_to_meta(state_dict: StateDict) -> StateDict:
    """Rename a timm DINOv2 state dict to Meta's names.

    timm adds no positional embedding to the class token of its models
    with registers (``no_embed_class``); a zero slot in front of the grid's
    embeddings does exactly the same in Meta's layout.
    """
    packed = _timm_packed_swiglu(state_dict)
    out = {}
    for name, tensor in state_dict.items():
        if name == 'reg_token':
            name = 'register_tokens'
        elif packed:
            name = _TIMM_FC.sub(
                lambda m: m.group(1) + _TIMM_SWIGLU[m.group(2)] + '.', name)
        out[name] = tensor
    pos_embed = out.get('pos_embed')
    if pos_embed is not None and not _pos_embed_has_class_slot(pos_embed):
        zero = pos_embed.new_zeros(pos_embed.shape[0], 1, pos_embed.shape[2])
        out['pos_embed'] = torch.cat((zero, pos_embed), dim=1)
    return out


# ----------------------------------------------------------- transformers
#: transformers name -> Meta name, outside the blocks
_HF_TOP_LEVEL = (
    ('embeddings.cls_token', 'cls_token'),
    ('embeddings.mask_token', 'mask_token'),
    ('embeddings.position_embeddings', 'pos_embed'),
    ('embeddings.register_tokens', 'register_tokens'),
    ('embeddings.patch_embeddings.projection.', 'patch_embed.proj.'),
    ('layernorm.', 'norm.'),
)
#: transformers name -> Meta name, inside ``encoder.layer.<i>.`` (hub
#: files' names first, then those transformers >= 5 uses in memory)
_HF_IN_BLOCK = (
    ('norm1.', 'norm1.'),
    ('norm2.', 'norm2.'),
    ('attention.output.dense.', 'attn.proj.'),
    ('attention.o_proj.', 'attn.proj.'),
    ('layer_scale1.lambda1', 'ls1.gamma'),
    ('layer_scale2.lambda1', 'ls2.gamma'),
    ('mlp.fc1.', 'mlp.fc1.'),
    ('mlp.fc2.', 'mlp.fc2.'),
    ('mlp.weights_in.', 'mlp.w12.'),
    ('mlp.weights_out.', 'mlp.w3.'),
    ('mlp.down_proj.', 'mlp.w3.'),
)
#: Meta tensors that transformers splits: Meta name -> the parts (in the
#: order they are concatenated along dim 0), for each naming
_HF_SPLIT = {
    'attn.qkv': (('attention.attention.query', 'attention.attention.key',
                  'attention.attention.value'),
                 ('attention.q_proj', 'attention.k_proj',
                  'attention.v_proj')),
    # SwiGLU: silu(first half) * second half, as Meta's w12
    'mlp.w12': (('mlp.gate_proj', 'mlp.up_proj'), ),
}
_HF_BLOCK = re.compile(r'^encoder\.layer\.(\d+)\.(.*)$')


def _join_split_tensors(block: StateDict) -> StateDict:
    """Concatenate transformers' q / k / v (and gate / up) back into
    Meta's ``qkv`` (and ``w12``); parts missing leave the names as they
    are, so that loading reports them."""
    out = dict(block)
    for meta_name, namings in _HF_SPLIT.items():
        for parts in namings:
            for suffix in ('weight', 'bias'):
                names = [f'{part}.{suffix}' for part in parts]
                if all(name in out for name in names):
                    out[f'{meta_name}.{suffix}'] = torch.cat(
                        [out.pop(name) for name in names], dim=0)
    return out


def transformers_to_meta(state_dict: StateDict) -> StateDict:
    """Rename a transformers ``Dinov2Model`` /
    ``Dinov2WithRegistersModel`` state dict to Meta's names (names it does
    not know are kept, for loading to report)."""
    blocks: Dict[str, StateDict] = {}
    out = {}
    for name, tensor in state_dict.items():
        block = _HF_BLOCK.match(name)
        if block:
            blocks.setdefault(block.group(1), {})[block.group(2)] = tensor
        else:
            out[_rename(name, _HF_TOP_LEVEL, forward=True) or name] = tensor
    for index, block in blocks.items():
        for name, tensor in _join_split_tensors(block).items():
            renamed = _rename(name, _HF_IN_BLOCK, forward=True) or name
            out[f'blocks.{index}.{renamed}'] = tensor
    return out


_TO_META: Dict[str, Callable[[StateDict], StateDict]] = {
    META: dict,
    TIMM: timm_to_meta,
    TRANSFORMERS: transformers_to_meta,
}


def to_meta_names(state_dict: StateDict, fmt: str) -> StateDict:
    """Bring a Meta-, timm- or transformers-named state dict to Meta's
    names (``fmt`` as :func:`detect_format` gives it)."""
    return _TO_META[fmt](state_dict)


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
    """Unwrap a checkpoint of any format into MMPretrain key names.

    Args:
        checkpoint (dict): What the checkpoint file holds (see
            :func:`~.checkpoint_io.load_checkpoint_file`).
        prefix (str, optional): See :func:`unwrap_state_dict`.

    Returns:
        tuple[dict, str]: the state dict and the detected source format.
    """
    state_dict = unwrap_state_dict(checkpoint, prefix)
    fmt = detect_format(state_dict)
    if fmt != MMPRETRAIN:
        state_dict = meta_to_mmpretrain(to_meta_names(state_dict, fmt))
    return state_dict, fmt


_SIZE_LETTERS = {384: 'S', 768: 'B', 1024: 'L', 1536: 'g'}


@dataclass(frozen=True)
class ArchKeys:
    """Where a family of key names keeps what :meth:`DINOv2Arch.read`
    reads."""
    backbone: str  # what the names belong to, for the error message
    patch_embed: str  # the patch projection's weight (dims, 3, patch, patch)
    block: re.Pattern  # any key of a block; group 1 is its index
    swiglu_in: str  # a weight of block 0 that only a SwiGLU FFN has
    swiglu_out: str  # that FFN's output weight (dims, hidden)
    mlp_in: str  # a GELU MLP's first weight in block 0 (hidden, dims)
    registers: str  # the register tokens (1, n, dims)


_MMPRETRAIN_ARCH_KEYS = ArchKeys(
    backbone='DINOv2 / ViT',
    patch_embed='patch_embed.projection.weight',
    block=_MMPRETRAIN_BLOCK,
    swiglu_in='layers.0.ffn.w12.weight',
    swiglu_out='layers.0.ffn.w3.weight',
    mlp_in='layers.0.ffn.layers.0.0.weight',
    registers='register_tokens')


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

    @classmethod
    def read(cls, state_dict: StateDict, keys: ArchKeys) -> 'DINOv2Arch':
        """Read the architecture off a state dict named as ``keys`` says."""
        try:
            proj = state_dict[keys.patch_embed]
        except KeyError:
            raise KeyError(f"the state dict has no '{keys.patch_embed}'; "
                           f'is it a {keys.backbone} backbone?') from None
        block_ids = {
            int(m.group(1))
            for m in map(keys.block.match, state_dict) if m
        }
        if keys.swiglu_in in state_dict:
            ffn_type = 'swiglu'
            ffn_hidden = state_dict[keys.swiglu_out].shape[1]
        else:
            ffn_type = 'mlp'
            fc1 = state_dict.get(keys.mlp_in)
            ffn_hidden = 0 if fc1 is None else fc1.shape[0]
        registers = state_dict.get(keys.registers)
        return cls(
            embed_dims=proj.shape[0],
            num_layers=len(block_ids),
            patch_size=proj.shape[-1],
            ffn_type=ffn_type,
            ffn_hidden=ffn_hidden,
            num_register_tokens=0
            if registers is None else registers.shape[1])


def infer_arch(state_dict: StateDict) -> DINOv2Arch:
    """Read the architecture off an MMPretrain-named state dict.

    Args:
        state_dict (dict): Keys as in ``mmpretrain.models.VisionTransformer``
            (convert Meta's with :func:`meta_to_mmpretrain` first).

    Returns:
        DINOv2Arch: the architecture.
    """
    return DINOv2Arch.read(state_dict, _MMPRETRAIN_ARCH_KEYS)
