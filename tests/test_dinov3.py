"""The DINOv3 backbone: RoPE, archs, outputs, checkpoints, parity, freezing.

Parity references, randomly initialised (layer scales and norms set to O(1)
so that every block changes the features):

- timm's ``vit_small_patch16_dinov3`` (timm 1.0.31, ``timm/models/eva.py``);
- HuggingFace transformers' ``DINOv3ViTModel``, built from a config.

Their weights are written in three formats: timm's own state dict; Meta's
key names, transcribed below from ``facebookresearch/dinov3``
(``dinov3/models/vision_transformer.py``, ``layers/attention.py``,
``layers/rope_position_encoding.py``); transformers' names, which its own
``DINOv3ViTModel`` loads strictly.
"""
import grpo_rm_mm  # noqa: F401,I001  (compat shims before the stack)
import math
import re

import pytest
import timm
import torch
import torch.nn.functional as F
from conftest import KERNEL_TOL
from mmengine.registry import DefaultScope
from mmseg.registry import MODELS
from safetensors.torch import save_file

from grpo_rm_mm.models.backbones import DINOv3
from grpo_rm_mm.models.backbones.axial_rope import (AxialRoPE2d,
                                                    augment_coords,
                                                    apply_rope, patch_coords,
                                                    rope_periods,
                                                    rope_sin_cos)
from grpo_rm_mm.models.backbones.dinov3_checkpoint import (detect_format,
                                                           infer_arch,
                                                           to_meta_names)

TINY = dict(embed_dims=32, num_layers=3, num_heads=2, feedforward_channels=64)


def tiny(**kwargs) -> DINOv3:
    kwargs.setdefault('arch', TINY)
    model = DINOv3(**kwargs)
    model.init_weights()
    return model


def make_blocks_matter(model: torch.nn.Module, seed: int = 0) -> None:
    """Layer scales and norm weights O(1), biases and tokens non-zero:
    DINOv3's 1e-5 layer scale makes random blocks ~identity."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if re.search(r'gamma|lambda|norm.*weight', name):
                param.copy_(torch.rand(param.shape, generator=gen) + 0.5)
            elif name.endswith('bias') or 'token' in name:
                param.copy_(torch.randn(param.shape, generator=gen) * 0.1)


def rel_err(ours: torch.Tensor, ref: torch.Tensor) -> float:
    return ((ours - ref).norm() / ref.norm()).item()


def pretrained(path) -> dict:
    return dict(type='Pretrained', checkpoint=str(path))


def centre_pad(x: torch.Tensor, patch: int = 16) -> torch.Tensor:
    """What the backbone does to its input, done outside for references
    that truncate to whole patches instead."""
    pads = []
    for size in (x.shape[-1], x.shape[-2]):
        extra = -size % patch
        pads += [extra // 2, extra - extra // 2]
    return F.pad(x, pads)


# ------------------------------------------------------------- RoPE
def rope_reference(x, height, width, base):
    """2-D axial RoPE from its definition, in float64 with Python math.

    Patch (i, j) has centre y = (2i + 1) / H - 1, x = (2j + 1) / W - 1. Of
    the D / 2 channel pairs (t, t + D / 2), pair t < D / 4 turns by
    2 pi y / base ** (4 t / D), pair t >= D / 4 by 2 pi x / base **
    (4 (t - D / 4) / D).
    """
    dim = x.shape[-1]
    out = x.clone()
    for i in range(height):
        for j in range(width):
            n = i * width + j
            for t in range(dim // 2):
                coord = (2 * i + 1) / height - 1 if t < dim // 4 else (
                    2 * j + 1) / width - 1
                k = t % (dim // 4)
                theta = 2 * math.pi * coord / base**(4 * k / dim)
                a, b = x[..., n, t], x[..., n, t + dim // 2]
                out[..., n, t] = a * math.cos(theta) - b * math.sin(theta)
                out[..., n, t + dim // 2] = (
                    b * math.cos(theta) + a * math.sin(theta))
    return out


@pytest.mark.parametrize('grid,dim,base', [((3, 5), 16, 100.),
                                           ((4, 4), 8, 10.)])
def test_rope_matches_its_definition(grid, dim, base):
    x = torch.randn(2, 3, grid[0] * grid[1], dim, dtype=torch.float64)
    expected = rope_reference(x, *grid, base)
    rope = AxialRoPE2d(dim, base=base)
    exact = apply_rope(x, *rope(grid, dtype=torch.float64))
    torch.testing.assert_close(exact, expected, rtol=0, atol=1e-12)
    # float32 (what the backbone runs): float32 rounding of the angles
    single = apply_rope(x.float(), *rope(grid))
    assert single.dtype == torch.float32
    torch.testing.assert_close(single.double(), expected, rtol=0, atol=5e-6)


def test_rope_scores_depend_on_relative_positions_only():
    """<R(p) q, R(p') k> is a function of p - p' (shifted coordinates)."""
    dim, periods = 16, rope_periods(16, dtype=torch.float64)
    q, k = torch.randn(2, dim, dtype=torch.float64)
    coords = torch.tensor([[0.3, -0.5], [-0.7, 0.1]], dtype=torch.float64)
    shifted = coords + torch.tensor([0.25, -0.4], dtype=torch.float64)

    def score(c):
        sin, cos = rope_sin_cos(c, periods)
        return (apply_rope(q[None], sin[:1], cos[:1]) *
                apply_rope(k[None], sin[1:], cos[1:])).sum()

    torch.testing.assert_close(score(coords), score(shifted), rtol=1e-12,
                               atol=1e-12)
    assert abs(score(coords) - (q * k).sum()) > 1e-3  # it does rotate


def test_coordinates_and_periods():
    coords = patch_coords(2, 4)
    assert coords[:, 0].tolist() == [-0.5] * 4 + [0.5] * 4  # rows: y
    assert coords[:4, 1].tolist() == [-0.75, -0.25, 0.25, 0.75]
    assert rope_periods(64, 100.)[[0, 1, 15]].tolist() == pytest.approx(
        [1., 100**(1 / 16), 100**(15 / 16)], rel=1e-6)
    with pytest.raises(ValueError, match='divisible by 4'):
        AxialRoPE2d(30)


def test_coordinate_augmentation_is_off_by_default_and_training_only():
    plain = AxialRoPE2d(16).train()
    assert not plain.augments
    torch.testing.assert_close(plain((3, 3))[0], plain.eval()((3, 3))[0],
                               rtol=0, atol=0)
    aug = AxialRoPE2d(16, rescale_coords=2.).train()
    assert not torch.equal(aug((3, 3))[0], aug.eval()((3, 3))[0])
    assert torch.equal(aug((3, 3))[0], plain((3, 3))[0])  # eval: none
    coords = patch_coords(2, 4)  # no zero coordinate: ratios are defined
    torch.manual_seed(0)
    ratio = augment_coords(coords, rescale=2.) / coords
    assert torch.allclose(ratio, ratio[0, 0]) and 0.5 <= ratio[0, 0] <= 2
    ratio = augment_coords(coords, jitter=3.) / coords
    assert torch.allclose(ratio, ratio[:1]) and not torch.allclose(
        ratio[0, 0], ratio[0, 1])
    shift = augment_coords(coords, shift=0.1) - coords
    assert torch.allclose(shift, shift[:1]) and shift.abs().max() <= 0.1
    with pytest.raises(ValueError, match='jitter_coords must be >= 1'):
        AxialRoPE2d(16, jitter_coords=0.5)


# ------------------------------------------------------------ archs
TIMM_NAMES = {
    'small': 'vit_small_patch16_dinov3',
    's+': 'vit_small_plus_patch16_dinov3',
    'base': 'vit_base_patch16_dinov3',
    'large': 'vit_large_patch16_dinov3',
    'h+': 'vit_huge_plus_patch16_dinov3',
    '7b': 'vit_7b_patch16_dinov3',
}


@pytest.mark.parametrize('arch,name,dims,depth,heads,ffn,hidden', [
    ('small', 'ViT-S/16', 384, 12, 6, 'mlp', 1536),
    ('s+', 'ViT-S+/16', 384, 12, 6, 'swiglu', 1536),
    ('base', 'ViT-B/16', 768, 12, 12, 'mlp', 3072),
    ('large', 'ViT-L/16', 1024, 24, 16, 'mlp', 4096),
    ('h+', 'ViT-H+/16', 1280, 32, 20, 'swiglu', 5120),
    ('7b', 'ViT-7B/16', 4096, 40, 32, 'swiglu', 8192),
])
def test_arch_table_matches_timm(arch, name, dims, depth, heads, ffn,
                                 hidden):
    with torch.device('meta'):  # no memory for the 7B's weights
        model = MODELS.build(dict(type='DINOv3', arch=arch))
        ref = timm.create_model(TIMM_NAMES[arch], pretrained=False)
    info = infer_arch(model.state_dict())
    assert info.name == name
    assert (info.embed_dims, info.num_layers, info.patch_size) == (dims,
                                                                   depth, 16)
    assert (info.ffn_type, info.ffn_hidden) == (ffn, hidden)
    assert info.num_register_tokens == 4
    block = model.blocks[0]
    assert block.attn.num_heads == heads == ref.blocks[0].attn.num_heads
    assert block.norm1.eps == model.norm.eps == 1e-5
    assert block.attn.qkv.bias is None
    assert not hasattr(model, 'mask_token')
    # timm's weights, renamed: the same names and shapes as ours
    ours = {k: v.shape for k, v in model.state_dict().items()}
    theirs = {k: v.shape for k, v in to_meta_names(ref.state_dict(),
                                                   'timm').items()}
    assert ours == theirs


def test_unknown_arch_and_bad_settings():
    with pytest.raises(KeyError, match='giant'):
        DINOv3(arch='giant')
    with pytest.raises(ValueError, match='out_indices'):
        DINOv3(arch=TINY, out_indices=(3, ))
    with pytest.raises(ValueError, match='custom DINOv3 arch'):
        DINOv3(arch=dict(embed_dims=32))
    with pytest.raises(ValueError, match="'mlp' or 'swiglu'"):
        DINOv3(arch=dict(TINY, ffn_type='geglu'))
    with pytest.raises(ValueError, match='frozen_stages'):
        DINOv3(arch=TINY, frozen_stages=4)


def test_reachable_from_mmpretrain():
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        from mmpretrain.registry import MODELS as PRETRAIN_MODELS
        model = PRETRAIN_MODELS.build(
            dict(
                type='ImageClassifier',
                backbone=dict(
                    type='mmseg.DINOv3',
                    arch=TINY,
                    out_indices=(2, ),
                    output_cls_token=True),
                neck=dict(type='DINOv2ClsNeck'),
                head=dict(
                    type='LinearClsHead', num_classes=3, in_channels=32)))
    assert type(model.backbone).__name__ == 'DINOv3'
    scores = model(torch.randn(2, 3, 40, 40), mode='tensor')
    assert scores.shape == (2, 3)


# ---------------------------------------------------------- outputs
@pytest.mark.parametrize('size', [(224, 224), (100, 150), (16, 33)])
def test_output_shapes(size):
    model = tiny(out_indices=(0, 2)).eval()
    with torch.no_grad():
        outs = model(torch.randn(2, 3, *size))
    grid = (math.ceil(size[0] / 16), math.ceil(size[1] / 16))
    assert [out.shape for out in outs] == [(2, 32, *grid)] * 2


def test_cls_token_output_and_index_order():
    model = tiny(out_indices=(-1, 0), output_cls_token=True).eval()
    plain = tiny(out_indices=(0, 2)).eval()
    plain.load_state_dict(model.state_dict())
    x = torch.randn(2, 3, 48, 64)
    with torch.no_grad():
        outs, maps = model(x), plain(x)
    assert model.out_indices == (2, 0)
    for (featmap, cls_token), expected in zip(outs, maps[::-1]):
        assert cls_token.shape == (2, 32)
        torch.testing.assert_close(featmap, expected, **KERNEL_TOL)


def test_every_selected_layer_is_normed():
    model = tiny(out_indices=(0, 1, 2)).eval()
    with torch.no_grad():
        outs = model(torch.randn(1, 3, 48, 48))
    for out in outs:
        tokens = out.flatten(2)
        assert tokens.mean(1).abs().max() < 1e-5
        torch.testing.assert_close(
            tokens.var(1, unbiased=False), torch.ones(1, 9), rtol=0,
            atol=1e-3)


def test_centre_padding():
    model = tiny(out_indices=(2, )).eval()
    make_blocks_matter(model)
    x = torch.randn(1, 3, 37, 45)  # pads 11 = 5 + 6 rows, 3 = 1 + 2 cols
    with torch.no_grad():
        out, = model(x)
        ref, = model(F.pad(x, (1, 2, 5, 6)))
    assert out.shape[-2:] == (3, 3)
    torch.testing.assert_close(out, ref, **KERNEL_TOL)


# ------------------------------------------------ checkpoint formats
def timm_to_meta_file(sd: dict, num_heads: int) -> dict:
    """timm's DINOv3 ViT-S/16 (GELU MLP, no q / v bias) written with Meta's
    key names, as Meta's release stores them: ``storage_tokens``,
    ``ls1.gamma``; a ``qkv.bias`` with a ``bias_mask`` of zeros (Meta's
    attention uses ``bias * bias_mask``; the released masks are zero, as
    listed in facebookresearch/dinov3#195; the bias here is not, so that
    ignoring the mask would show); the RoPE ``periods`` buffer
    (bfloat16-rounded here, as timm notes some files are); ``mask_token``
    (1, D)."""
    out = {}
    for name, value in sd.items():
        name = name.replace('reg_token', 'storage_tokens')
        out[re.sub(r'gamma_(\d)', r'ls\1.gamma', name)] = value
    dims = sd['cls_token'].shape[-1]
    for key in [k for k in out if k.endswith('attn.qkv.weight')]:
        prefix = key[:-len('weight')]
        out[prefix + 'bias'] = torch.full((3 * dims, ), 7.)
        out[prefix + 'bias_mask'] = torch.zeros(3 * dims)
    head_dim = dims // num_heads
    periods = 100**(2 * torch.arange(head_dim // 4) / (head_dim // 2))
    out['rope_embed.periods'] = periods.bfloat16().float()
    out['mask_token'] = torch.zeros(1, dims)
    return out


def timm_to_hf_file(sd: dict, gated: bool) -> dict:
    """timm's DINOv3 state dict written with transformers' names, as its
    ``model.safetensors`` files hold them (``layer.<i>.``)."""
    out = {}
    for name, value in sd.items():
        block = re.match(r'blocks\.(\d+)\.(.*)', name)
        if not block:
            name = {'cls_token': 'embeddings.cls_token',
                    'reg_token': 'embeddings.register_tokens'}.get(
                        name, name)
            out[name.replace('patch_embed.proj.',
                             'embeddings.patch_embeddings.')] = value
            continue
        i, rest = block.groups()
        if rest == 'attn.qkv.weight':
            for part, w in zip('qkv', value.chunk(3)):
                out[f'layer.{i}.attention.{part}_proj.weight'] = w
            continue
        if rest in ('attn.q_bias', 'attn.v_bias'):
            out[f'layer.{i}.attention.{rest[5]}_proj.bias'] = value
            continue
        ffn = ({'mlp.fc1_g.': 'mlp.gate_proj.', 'mlp.fc1_x.': 'mlp.up_proj.',
                'mlp.fc2.': 'mlp.down_proj.'} if gated else
               {'mlp.fc1.': 'mlp.up_proj.', 'mlp.fc2.': 'mlp.down_proj.'})
        for table in (ffn, {'attn.proj.': 'attention.o_proj.',
                            'gamma_1': 'layer_scale1.lambda1',
                            'gamma_2': 'layer_scale2.lambda1'}):
            for src, dst in table.items():
                if rest.startswith(src):
                    rest = dst + rest[len(src):]
                    break
        out[f'layer.{i}.{rest}'] = value
    out['embeddings.mask_token'] = torch.zeros(1, 1, sd['cls_token'].shape[-1])
    return out


def hf_model(sd: dict, config: dict):
    """transformers' DINOv3ViTModel with the transformers-named weights
    (strict: every name must be right)."""
    from transformers import DINOv3ViTConfig, DINOv3ViTModel
    from transformers.initialization import no_init_weights
    with no_init_weights():  # every weight is loaded below
        model = DINOv3ViTModel(
            DINOv3ViTConfig(num_register_tokens=4, layerscale_value=1e-5,
                            key_bias=False, attn_implementation='eager',
                            **config)).eval()
    renamed = {re.sub(r'^layer\.', 'model.layer.', k): v
               for k, v in sd.items()}
    model.load_state_dict(renamed, strict=True)
    return model


def hf_features(model, x, indices):
    """transformers' normed intermediate layers: map and class token."""
    with torch.no_grad():
        states = model(x, output_hidden_states=True).hidden_states
    grid = (x.shape[-2] // 16, x.shape[-1] // 16)
    outs = []
    for i in indices:
        normed = model.norm(states[i + 1])
        featmap = normed[:, 5:].reshape(x.shape[0], *grid, -1)
        outs.append((featmap.permute(0, 3, 1, 2), normed[:, 0]))
    return outs


SIZES = [(224, 224), (200, 250)]  # the second: not a multiple of 16


@pytest.fixture(scope='module')
def vits16(tmp_path_factory):
    """timm's DINOv3 ViT-S/16, its weights in the three formats, the
    transformers model holding the same weights, and both references'
    normed features of blocks 3, 7, 11 at each of ``SIZES`` (the inputs
    centre-padded as the backbone pads them: both truncate instead)."""
    torch.manual_seed(0)
    ref = timm.create_model('vit_small_patch16_dinov3',
                            pretrained=False).eval()
    make_blocks_matter(ref)
    folder = tmp_path_factory.mktemp('dinov3_ckpt')
    sd = ref.state_dict()
    hf_sd = timm_to_hf_file(sd, gated=False)
    files = {
        'timm': folder / 'vit_small_patch16_dinov3.pth',
        'meta': folder / 'dinov3_vits16_pretrain_lvd1689m.pth',
        'transformers': folder / 'model.safetensors',
    }
    torch.save(sd, files['timm'])
    torch.save(timm_to_meta_file(sd, num_heads=6), files['meta'])
    save_file(hf_sd, str(files['transformers']))
    hf = hf_model(hf_sd, dict(query_bias=False, value_bias=False))
    references = []
    for size in SIZES:
        x = torch.randn(1, 3, *size)
        padded = centre_pad(x)
        with torch.no_grad():
            timm_feats = ref.forward_intermediates(
                padded, indices=[3, 7, 11], norm=True,
                return_prefix_tokens=True, intermediates_only=True)
        timm_feats = [(m, prefix[:, 0]) for m, prefix in timm_feats]
        references.append(
            (x, timm_feats, hf_features(hf, padded, (3, 7, 11))))
    return ref, hf, files, references


@pytest.mark.parametrize('fmt', ['timm', 'meta', 'transformers'])
def test_parity_with_timm_and_transformers(vits16, fmt):
    """Normed intermediate features and class tokens from every format's
    file match timm and transformers, at a size that is a multiple of 16
    and one that is not."""
    _, _, files, references = vits16
    model = DINOv3(
        arch='small',
        out_indices=(3, 7, 11),
        output_cls_token=True,
        init_cfg=pretrained(files[fmt]))
    model.init_weights()
    model.eval()
    for x, timm_feats, hf_feats in references:
        with torch.no_grad():
            ours = model(x)
        grid = (math.ceil(x.shape[-2] / 16), math.ceil(x.shape[-1] / 16))
        for (featmap, cls_token), *refs in zip(ours, timm_feats, hf_feats):
            assert featmap.shape == (1, 384, *grid)
            for ref_map, ref_cls in refs:
                assert rel_err(featmap, ref_map) < 1e-5
                assert rel_err(cls_token, ref_cls) < 1e-5


def test_rope_is_what_places_the_patches(vits16):
    """Negative control for the parity test: another RoPE base (or none of
    the rotation) changes the features by far more than its tolerance."""
    ref = vits16[0]
    with torch.device('meta'):  # no random init: the weights follow
        model = DINOv3(arch='small', out_indices=(11, ), rope_base=10.)
    model.load_state_dict(
        to_meta_names(ref.state_dict(), 'timm'), strict=True, assign=True)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        ours, = model.eval()(x)
        theirs = ref.forward_intermediates(
            x, indices=[11], norm=True, intermediates_only=True)[0]
    assert rel_err(ours, theirs) > 1e-3  # 100x the parity tolerance


@pytest.mark.parametrize('source', ['timm', 'transformers'])
def test_swiglu_and_qkv_bias_parity(source, tmp_path):
    """The S+/H+/7B block (SwiGLU) and query / value biases (timm's
    ``_qkvb`` models, transformers' query_bias / value_bias), tiny."""
    torch.manual_seed(0)
    ref = timm.create_model('vit_small_plus_patch16_dinov3_qkvb',
                            pretrained=False, embed_dim=64, depth=2,
                            num_heads=2).eval()
    make_blocks_matter(ref)
    sd = ref.state_dict()
    assert sd['blocks.0.attn.q_bias'].abs().sum() > 0
    if source == 'timm':
        content, path = sd, tmp_path / 'timm.pth'
        torch.save(content, path)
    else:
        content, path = timm_to_hf_file(sd, gated=True), tmp_path / 'hf.bin'
        torch.save(content, path)
        hf = hf_model(content, dict(
            hidden_size=64, intermediate_size=256, num_hidden_layers=2,
            num_attention_heads=2, use_gated_mlp=True, hidden_act='silu'))
    arch = dict(embed_dims=64, num_layers=2, num_heads=2,
                feedforward_channels=256, ffn_type='swiglu')
    model = tiny(arch=arch, out_indices=(0, 1), qkv_bias=True,
                 init_cfg=pretrained(path)).eval()
    x = torch.randn(1, 3, 48, 80)
    with torch.no_grad():
        ours = model(x)
        theirs = ref.forward_intermediates(
            x, indices=[0, 1], norm=True, intermediates_only=True)
    for out, expected in zip(ours, theirs):
        assert rel_err(out, expected) < 1e-5
    if source == 'transformers':
        for out, (h_map, _) in zip(ours, hf_features(hf, x, (0, 1))):
            assert rel_err(out, h_map) < 1e-5
    # the same file into a model without biases: refused, by name
    with pytest.raises(ValueError, match='qkv_bias=True'):
        tiny(arch=arch, init_cfg=pretrained(path))


def test_meta_file_details(vits16):
    """Meta's qkv.bias_mask is applied (an uninitialised one refused) and
    the key third zeroed; the mask, the mask token and the 7B's local-crop
    class norm are dropped; transformers' 5.x module names
    (``model.layer.<i>.``) read like its files' (``layer.<i>.``)."""
    _, hf, files, _ = vits16
    meta = torch.load(files['meta'])
    meta['local_cls_norm.weight'] = torch.ones(384)
    converted = to_meta_names(meta, 'meta')
    assert meta['blocks.0.attn.qkv.bias'].eq(7).all()
    assert not converted['blocks.0.attn.qkv.bias'].any()  # mask of zeros
    ours = set(DINOv3('small').state_dict())
    biases = {f'blocks.{i}.attn.qkv.bias' for i in range(12)}
    assert set(converted) == ours | biases | {'rope_embed.periods'}
    assert set(to_meta_names(hf.state_dict(), 'transformers')) == ours
    # the mask Meta's code now initialises: query and value kept, key not
    meta['blocks.0.attn.qkv.bias_mask'] = torch.ones(1152)
    meta['blocks.0.attn.qkv.bias_mask'][384:768] = 0
    bias = to_meta_names(meta, 'meta')['blocks.0.attn.qkv.bias']
    assert bias[:384].eq(7).all() and bias[768:].eq(7).all()
    assert not bias[384:768].any()
    meta['blocks.0.attn.qkv.bias_mask'][0] = math.nan
    with pytest.raises(ValueError, match='bias_mask is not initialised'):
        to_meta_names(meta, 'meta')


def test_format_detection_errors():
    with pytest.raises(ValueError, match='DINOv2 backbone'):
        detect_format({'pos_embed': torch.zeros(1), 'cls_token': None})
    with pytest.raises(ValueError, match='none of'):
        detect_format({'head.weight': torch.zeros(1)})
    with pytest.raises(ValueError, match='meta and timm'):
        detect_format({'storage_tokens': None, 'reg_token': None})


# -------------------------------------------------- loading errors
@pytest.mark.parametrize('arch,message', [
    (dict(TINY, embed_dims=48), 'embed_dims 48 vs 32'),
    (dict(TINY, num_layers=4), 'num_layers 4 vs 3'),
    (dict(TINY, ffn_type='swiglu'), 'ffn_type swiglu vs mlp'),
])
def test_wrong_arch_is_a_clear_error(tmp_path, arch, message):
    path = tmp_path / 'other.pth'
    torch.save(DINOv3(arch=arch).state_dict(), path)
    model = DINOv3(arch=TINY, init_cfg=pretrained(path))
    with pytest.raises(ValueError, match=message) as err:
        model.init_weights()
    assert "DINOv3(arch='custom') expects" in str(err.value)


def test_wrong_named_arch_and_registers(tmp_path):
    with torch.device('meta'):
        shapes = {k: v.shape for k, v in DINOv3('base').state_dict().items()}
        model = DINOv3('small')
    # the arch is checked on shapes before loading: stride-0 tensors will do
    torch.save({k: torch.zeros(1).expand(s) for k, s in shapes.items()},
               tmp_path / 'vitb.pth')
    with pytest.raises(ValueError) as err:
        model.load_pretrained(str(tmp_path / 'vitb.pth'))
    assert 'is a ViT-B/16 (embed_dims 768, 12 blocks' in str(err.value)
    assert "DINOv3(arch='small') expects a ViT-S/16" in str(err.value)
    torch.save(tiny(num_register_tokens=2).state_dict(), tmp_path / 'r2.pth')
    with pytest.raises(ValueError, match='num_register_tokens 2 vs 4'):
        tiny(init_cfg=pretrained(tmp_path / 'r2.pth'))


def test_wrong_heads_or_base_from_meta_periods(vits16):
    files = vits16[2]
    with torch.device('meta'):
        wrong_heads = DINOv3(arch=dict(DINOv3.arch_zoo['small'],
                                       num_heads=12))
        wrong_base = DINOv3('small', rope_base=1000.)
    with pytest.raises(ValueError, match=r'head size 64 \(6 heads\)'):
        wrong_heads.load_pretrained(str(files['meta']))
    with pytest.raises(ValueError, match='rope_base=1000.0'):
        wrong_base.load_pretrained(str(files['meta']))


def test_truncated_text_and_missing_files(vits16, tmp_path):
    files = vits16[2]
    for fmt, suffix in (('meta', '.pth'), ('transformers', '.safetensors')):
        data = files[fmt].read_bytes()
        cut = tmp_path / f'cut{suffix}'
        cut.write_bytes(data[:len(data) // 2])
        with pytest.raises(ValueError, match='truncated') as err:
            tiny(init_cfg=pretrained(cut))
        assert str(cut) in str(err.value)
    lfs = tmp_path / 'dinov3_vits16.pth'
    lfs.write_text('version https://git-lfs.github.com/spec/v1\n')
    with pytest.raises(ValueError, match='is a text file, not weights.*'
                       'Git LFS pointer'):
        tiny(init_cfg=pretrained(lfs))
    with pytest.raises(FileNotFoundError, match='init_cfg.checkpoint='):
        tiny(init_cfg=pretrained('/nonexistent/dinov3_vits16.pth'))


def test_missing_unexpected_keys_and_whole_models(tmp_path):
    source = tiny(out_indices=(0, 2)).eval()
    make_blocks_matter(source)
    sd = source.state_dict()
    torch.save({k: v for k, v in sd.items() if k != 'blocks.1.ls1.gamma'},
               tmp_path / 'missing.pth')
    with pytest.raises(RuntimeError, match=r'blocks\.1\.ls1\.gamma'):
        tiny(init_cfg=pretrained(tmp_path / 'missing.pth'))
    torch.save(dict(sd, **{'dino_head.weight': torch.zeros(3)}),
               tmp_path / 'extra.pth')
    tiny(init_cfg=pretrained(tmp_path / 'extra.pth'))  # logged, not raised
    segmentor = {f'backbone.{k}': v for k, v in sd.items()}
    segmentor['decode_head.conv_seg.weight'] = torch.zeros(2, 32, 1, 1)
    torch.save(dict(state_dict=segmentor, meta=dict()),
               tmp_path / 'segmentor.pth')
    model = tiny(out_indices=(0, 2),
                 init_cfg=pretrained(tmp_path / 'segmentor.pth')).eval()
    x = torch.randn(1, 3, 40, 56)
    with torch.no_grad():
        for out, ref in zip(model(x), source(x)):
            torch.testing.assert_close(out, ref, **KERNEL_TOL)


def test_qkv_bias_model_accepts_a_file_without_biases(tmp_path):
    source = tiny()
    torch.save(source.state_dict(), tmp_path / 'nobias.pth')
    model = tiny(qkv_bias=True, init_cfg=pretrained(tmp_path / 'nobias.pth'))
    assert not model.blocks[0].attn.qkv.bias.any()


# ------------------------------------------------ training controls
def test_frozen_stages():
    model = tiny(frozen_stages=1)
    model.train()
    for module in (model.patch_embed, model.blocks[0]):
        assert not any(p.requires_grad for p in module.parameters())
        assert not any(m.training for m in module.modules())
    assert not model.cls_token.requires_grad
    assert not model.storage_tokens.requires_grad
    assert all(p.requires_grad for p in model.blocks[1].parameters())
    assert model.blocks[1].training and not model.is_frozen
    outs = model(torch.randn(1, 3, 32, 32))
    outs[0].sum().backward()
    assert model.blocks[0].attn.qkv.weight.grad is None
    assert model.blocks[2].attn.qkv.weight.grad is not None


@pytest.mark.parametrize('cfg', [dict(freeze=True), dict(frozen_stages=3)])
def test_freeze_everything(cfg):
    model = tiny(**cfg)
    model.train()
    assert model.is_frozen
    assert not any(m.training for m in model.modules() if m is not model)


def test_unused_trailing_blocks_are_frozen():
    model = tiny(out_indices=(1, ))
    assert not any(p.requires_grad for p in model.blocks[2].parameters())
    assert all(p.requires_grad for p in model.blocks[1].parameters())


def test_with_cp_matches_plain():
    plain = tiny()
    make_blocks_matter(plain)
    ckpt = tiny(with_cp=True)
    ckpt.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, 48, 64)
    grads, outs = [], []
    for model in (plain, ckpt):
        model.train()
        out, = model(x)
        out.pow(2).mean().backward()
        outs.append(out.detach())
        grads.append({n: p.grad for n, p in model.named_parameters()})
    torch.testing.assert_close(outs[1], outs[0])
    for name, grad in grads[0].items():
        torch.testing.assert_close(grads[1][name], grad, msg=name)


def test_drop_path_is_the_same_in_every_block():
    model = tiny(drop_path_rate=0.2)
    assert [b.drop_path.drop_prob for b in model.blocks] == [0.2] * 3


def test_layer_decay_depths_reach_the_optimizer():
    from mmseg.registry import OPTIM_WRAPPER_CONSTRUCTORS
    model = tiny()
    assert model.get_layer_depth('backbone.storage_tokens',
                                 'backbone.') == (0, 5)
    assert model.get_layer_depth('backbone.patch_embed.proj.weight',
                                 'backbone.') == (0, 5)
    assert model.get_layer_depth('backbone.blocks.1.mlp.fc1.weight',
                                 'backbone.') == (2, 5)
    assert model.get_layer_depth('backbone.norm.weight',
                                 'backbone.') == (4, 5)
    assert model.get_layer_depth('decode_head.conv_seg.weight',
                                 'backbone.') == (4, 5)
    segmentor = torch.nn.Module()
    segmentor.backbone = model
    segmentor.decode_head = torch.nn.Linear(32, 2)
    constructor = OPTIM_WRAPPER_CONSTRUCTORS.build(
        dict(type='DINOv2LayerDecayOptimizerConstructor',
             optim_wrapper_cfg=dict(
                 type='OptimWrapper',
                 optimizer=dict(type='AdamW', lr=1.0,
                                weight_decay=0.05)),
             paramwise_cfg=dict(layer_decay_rate=0.5)))
    optimizer = constructor(segmentor).optimizer
    lrs = {}
    names = {id(p): n for n, p in segmentor.named_parameters()}
    for group in optimizer.param_groups:
        for param in group['params']:
            lrs[names[id(param)]] = group['lr']
    assert lrs['backbone.cls_token'] == 0.5**4
    assert lrs['backbone.blocks.0.attn.qkv.weight'] == 0.5**3
    assert lrs['backbone.blocks.2.ls2.gamma'] == 0.5
    assert lrs['decode_head.weight'] == 1.0
