"""The DINOv2 backbone: archs, checkpoints, outputs, parity and freezing.

Parity is checked against timm's ``vit_small_patch14_dinov2`` (randomly
initialised; its state dict has Meta's key names) with the layer scales and
norms set to O(1) values so that every block changes the features.
"""
import grpo_rm_mm  # noqa: F401,I001  (compat shims before the stack)
import math
import re
import runpy
import sys

import pytest
import timm
import torch
import torch.nn.functional as F
from conftest import KERNEL_TOL
from mmseg.registry import MODELS

from grpo_rm_mm.models.backbones import DINOv2
from grpo_rm_mm.models.backbones.dinov2_checkpoint import (
    detect_format, infer_arch, meta_to_mmpretrain, mmpretrain_to_meta,
    to_mmpretrain)

TINY = dict(embed_dims=32, num_layers=3, num_heads=2, feedforward_channels=64)


def tiny(**kwargs) -> DINOv2:
    kwargs.setdefault('arch', TINY)
    model = DINOv2(**kwargs)
    model.init_weights()
    return model


def make_blocks_matter(model: torch.nn.Module, seed: int = 0) -> None:
    """Layer scales and norm weights O(1): random-init blocks are ~identity
    with DINOv2's 1e-5 layer scale, which would make parity trivial."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if 'gamma' in name or ('norm' in name and 'weight' in name) or (
                    'ln' in name and 'weight' in name):
                param.copy_(torch.rand(param.shape, generator=gen) + 0.5)
            elif name.endswith('bias') or 'token' in name:
                param.copy_(torch.randn(param.shape, generator=gen) * 0.1)


def rel_err(ours: torch.Tensor, ref: torch.Tensor) -> float:
    return ((ours - ref).norm() / ref.norm()).item()


def pretrained(path) -> dict:
    return dict(type='Pretrained', checkpoint=str(path))


# ------------------------------------------------------------------ archs
@pytest.mark.parametrize('arch,dims,depth,heads,ffn,hidden', [
    ('small', 384, 12, 6, 'mlp', 1536),
    ('base', 768, 12, 12, 'mlp', 3072),
    ('large', 1024, 24, 16, 'mlp', 4096),
    ('giant', 1536, 40, 24, 'swiglu', 4096),
])
def test_arch_settings(arch, dims, depth, heads, ffn, hidden):
    with torch.device('meta'):  # no memory for ViT-g's 1.1B weights
        model = MODELS.build(dict(type='DINOv2', arch=arch))
    info = infer_arch(model.state_dict())
    assert (info.embed_dims, info.num_layers, info.patch_size) == (dims, depth,
                                                                   14)
    assert (info.ffn_type, info.ffn_hidden) == (ffn, hidden)
    layer = model.layers[0]
    assert layer.attn.num_heads == heads
    assert layer.ln1.eps == model.ln1.eps == 1e-6
    assert layer.attn.gamma1.weight.shape == (dims, )
    assert layer.ffn.gamma2.weight.shape == (dims, )
    assert model.pos_embed.shape == (1, 37 * 37 + 1, dims)
    assert not hasattr(model, 'mask_token')


def test_unknown_arch_and_out_indices():
    with pytest.raises(KeyError, match='huge'):
        DINOv2(arch='huge')
    with pytest.raises(ValueError, match='out_indices'):
        DINOv2(arch=TINY, out_indices=(3, ))


# ---------------------------------------------------------------- outputs
@pytest.mark.parametrize('size', [(224, 224), (230, 230), (100, 150),
                                  (14, 27)])
def test_output_shapes(size):
    model = tiny(out_indices=(0, 2)).eval()
    with torch.no_grad():
        outs = model(torch.randn(2, 3, *size))
    grid = (math.ceil(size[0] / 14), math.ceil(size[1] / 14))
    assert len(outs) == 2
    for out in outs:
        assert out.shape == (2, 32, *grid)


def test_cls_token_output_and_index_order():
    model = tiny(out_indices=(-1, 0), output_cls_token=True).eval()
    plain = tiny(out_indices=(0, 2)).eval()
    plain.load_state_dict(model.state_dict())
    x = torch.randn(2, 3, 56, 42)
    with torch.no_grad():
        outs, maps = model(x), plain(x)
    assert model.out_indices == (2, 0)
    for (featmap, cls_token), expected in zip(outs, maps[::-1]):
        assert cls_token.shape == (2, 32)
        # two modules with the same weights: equal up to kernel rounding
        torch.testing.assert_close(featmap, expected, **KERNEL_TOL)


def test_every_selected_layer_is_normed():
    model = tiny(out_indices=(0, 1, 2)).eval()
    torch.nn.init.ones_(model.ln1.weight)
    torch.nn.init.zeros_(model.ln1.bias)
    with torch.no_grad():
        outs = model(torch.randn(1, 3, 42, 42))
    for out in outs:
        tokens = out.flatten(2)
        assert tokens.mean(1).abs().max() < 1e-5
        torch.testing.assert_close(
            tokens.var(1, unbiased=False), torch.ones(1, 9), rtol=0, atol=1e-3)


def test_centre_padding():
    model = tiny(out_indices=(2, )).eval()
    x = torch.randn(1, 3, 225, 229)  # pads 13 = 6 + 7 rows, 9 = 4 + 5 cols
    padded = F.pad(x, (4, 5, 6, 7))
    with torch.no_grad():
        out, = model(x)
        ref, = model(padded)
    assert out.shape[-2:] == (17, 17)
    # padded inside vs outside: tensors of other strides may meet other
    # kernels, so a few ulps (misplaced padding changes the output by O(1))
    torch.testing.assert_close(out, ref, **KERNEL_TOL)


# ------------------------------------------------------------ checkpoints
def test_meta_and_mmpretrain_checkpoints_give_identical_outputs(tmp_path):
    source = tiny(out_indices=(0, 2), num_register_tokens=2).eval()
    make_blocks_matter(source)
    mmpretrain_sd = source.state_dict()
    meta_sd = mmpretrain_to_meta(mmpretrain_sd)
    assert 'blocks.1.ls2.gamma' in meta_sd and 'norm.weight' in meta_sd
    assert meta_sd['mask_token'].shape == (1, 32)
    assert set(meta_to_mmpretrain(meta_sd)) == set(mmpretrain_sd)
    segmentor = {f'backbone.{k}': v for k, v in mmpretrain_sd.items()}
    segmentor['decode_head.conv_seg.weight'] = torch.zeros(2, 32, 1, 1)
    files = {
        'meta.pth': meta_sd,
        'mmpretrain.pth': dict(state_dict=mmpretrain_sd, meta=dict()),
        'segmentor.pth': dict(state_dict=segmentor),
    }
    x = torch.randn(2, 3, 70, 84)
    with torch.no_grad():
        expected = source(x)
    for name, content in files.items():
        torch.save(content, tmp_path / name)
        model = tiny(
            out_indices=(0, 2),
            num_register_tokens=2,
            init_cfg=pretrained(tmp_path / name)).eval()
        with torch.no_grad():
            outs = model(x)
        for out, ref in zip(outs, expected):
            torch.testing.assert_close(out, ref, **KERNEL_TOL)


def test_format_detection_and_chunked_blocks():
    sd = mmpretrain_to_meta(tiny().state_dict())
    assert detect_format(sd) == 'meta'
    # Meta's training code may chunk the blocks: blocks.<chunk>.<i>.
    chunked = {re.sub(r'^blocks\.', 'blocks.0.', k): v for k, v in sd.items()}
    converted, fmt = to_mmpretrain(dict(model=chunked))
    assert fmt == 'meta' and 'mask_token' not in converted
    assert set(converted) == set(tiny().state_dict())
    assert detect_format(converted) == 'mmpretrain'
    with pytest.raises(ValueError, match='no DINOv2 format known here'):
        detect_format({'head.weight': torch.zeros(1)})


@pytest.mark.parametrize('arch,message', [
    (dict(TINY, embed_dims=48), 'embed_dims 48 vs 32'),
    (dict(TINY, num_layers=4), 'num_layers 4 vs 3'),
    (dict(TINY, ffn_type='swiglu_fused'), "ffn_type swiglu vs mlp"),
])
def test_wrong_arch_is_a_clear_error(tmp_path, arch, message):
    path = tmp_path / 'other.pth'
    torch.save(mmpretrain_to_meta(DINOv2(arch=arch).state_dict()), path)
    model = DINOv2(arch=TINY, init_cfg=pretrained(path))
    with pytest.raises(ValueError, match=message) as err:
        model.init_weights()
    assert "DINOv2(arch='custom') expects" in str(err.value)


def test_wrong_named_arch_message(tmp_path):
    with torch.device('meta'):
        base_shapes = {
            k: v.shape
            for k, v in mmpretrain_to_meta(DINOv2(
                'base').state_dict()).items()
        }
        model = DINOv2(arch='small')
    # the arch is checked on shapes before loading: stride-0 tensors will do
    torch.save(
        {
            k: torch.zeros(1).expand(shape)
            for k, shape in base_shapes.items()
        }, tmp_path / 'vitb.pth')
    with pytest.raises(ValueError) as err:
        model.load_pretrained(str(tmp_path / 'vitb.pth'))
    assert 'is a ViT-B/14 (embed_dims 768, 12 blocks' in str(err.value)
    assert "DINOv2(arch='small') expects a ViT-S/14" in str(err.value)


def test_register_tokens_need_num_register_tokens(tmp_path):
    path = tmp_path / 'reg.pth'
    torch.save(
        mmpretrain_to_meta(tiny(num_register_tokens=4).state_dict()), path)
    with pytest.raises(ValueError, match='num_register_tokens=4'):
        tiny(init_cfg=pretrained(path))


def test_missing_and_unexpected_keys(tmp_path):
    sd = mmpretrain_to_meta(tiny().state_dict())
    del sd['blocks.1.ls1.gamma']
    torch.save(sd, tmp_path / 'missing.pth')
    with pytest.raises(RuntimeError, match=r'layers\.1\.attn\.gamma1'):
        tiny(init_cfg=pretrained(tmp_path / 'missing.pth'))
    sd = mmpretrain_to_meta(tiny().state_dict())
    sd['dino_head.weight'] = torch.zeros(3)
    torch.save(sd, tmp_path / 'extra.pth')
    tiny(init_cfg=pretrained(tmp_path / 'extra.pth'))  # logged, not raised


def test_missing_file():
    with pytest.raises(FileNotFoundError, match='init_cfg.checkpoint='):
        tiny(init_cfg=pretrained('/nonexistent/dinov2_vits14_pretrain.pth'))


def test_convert_tool_round_trip(tmp_path, monkeypatch):
    source = tiny()
    meta = tmp_path / 'meta.pth'
    torch.save(mmpretrain_to_meta(source.state_dict()), meta)
    for args in ([meta, tmp_path / 'mmp.pth'],
                 [tmp_path / 'mmp.pth', tmp_path / 'back.pth', '--to',
                  'meta']):
        monkeypatch.setattr(sys, 'argv',
                            ['convert_dinov2.py'] + [str(a) for a in args])
        runpy.run_path('tools/convert_dinov2.py', run_name='__main__')
    converted = torch.load(tmp_path / 'mmp.pth')['state_dict']
    back = torch.load(tmp_path / 'back.pth')
    original = torch.load(meta)
    assert set(converted) == set(source.state_dict())
    assert set(back) == set(original)
    for key, value in original.items():  # renamed, never computed: bitwise
        assert torch.equal(back[key], value), key


# ----------------------------------------------------------------- parity
@pytest.fixture(scope='module')
def vits14(tmp_path_factory):
    """timm's DINOv2 ViT-S/14 and our DINOv2 loaded from its weights."""
    torch.manual_seed(0)
    ref = timm.create_model(
        'vit_small_patch14_dinov2',
        pretrained=False,
        img_size=518,
        dynamic_img_size=True).eval()
    make_blocks_matter(ref)
    meta_sd = dict(ref.state_dict(), mask_token=torch.zeros(1, 384))
    path = tmp_path_factory.mktemp('ckpt') / 'dinov2_vits14_pretrain.pth'
    torch.save(meta_sd, path)
    model = DINOv2(
        arch='small',
        out_indices=(3, 7, 11),
        output_cls_token=True,
        init_cfg=pretrained(path))
    model.init_weights()
    return ref, model.eval()


def reference_features(ref, x, pos_embed=None):
    """timm's normed intermediate layers (and prefix tokens); with
    ``pos_embed`` (already resized to the input's grid) used as is."""
    if pos_embed is not None:
        with torch.device('meta'):  # skip the random init, weights follow
            resized = timm.create_model(
                'vit_small_patch14_dinov2',
                pretrained=False,
                img_size=tuple(x.shape[-2:]))
        resized.load_state_dict(
            dict(ref.state_dict(), pos_embed=pos_embed), assign=True)
        ref = resized.eval()
    return ref.get_intermediate_layers(
        x, n=(3, 7, 11), reshape=True, norm=True, return_prefix_tokens=True)


def meta_interpolation(pos_embed, grid, offset=0.1):
    """Meta's interpolate_pos_encoding (DINOv2 repository), written out."""
    patch = pos_embed[:, 1:].reshape(1, 37, 37, -1).permute(0, 3, 1, 2)
    patch = F.interpolate(
        patch,
        scale_factor=((grid[0] + offset) / 37, (grid[1] + offset) / 37),
        mode='bicubic',
        antialias=False)
    assert patch.shape[-2:] == grid
    return torch.cat((pos_embed[:, :1], patch.flatten(2).transpose(1, 2)),
                     dim=1)


def test_parity_with_timm_at_518(vits14, tmp_path):
    ref, model = vits14
    # timm's own files (no mask_token; .pth and .safetensors) load the
    # same weights as Meta's file of the fixture, so the parity below
    # holds for them too
    from safetensors.torch import save_file
    torch.save(ref.state_dict(), tmp_path / 'timm.pth')
    save_file(ref.state_dict(), str(tmp_path / 'timm.safetensors'))
    for name in ('timm.pth', 'timm.safetensors'):
        other = DINOv2(arch='small', out_indices=(3, 7, 11))
        other.load_pretrained(str(tmp_path / name))
        for key, value in model.state_dict().items():
            assert torch.equal(other.state_dict()[key], value), (name, key)
    x = torch.randn(1, 3, 518, 518)
    with torch.no_grad():
        ours = model(x)
        theirs = reference_features(ref, x)
    for (featmap, cls_token), (ref_map, ref_cls) in zip(ours, theirs):
        assert featmap.shape == ref_map.shape == (1, 384, 37, 37)
        assert rel_err(featmap, ref_map) < 1e-4
        assert rel_err(cls_token, ref_cls[:, 0]) < 1e-4


@pytest.mark.parametrize('size', [(224, 224), (280, 210)])
def test_parity_at_other_sizes(vits14, size):
    """Defaults follow Meta's interpolation (offset 0.1, no antialias);
    ``interpolate_offset=0, interpolate_antialias=True`` follows timm's."""
    ref, model = vits14
    grid = (size[0] // 14, size[1] // 14)
    x = torch.randn(1, 3, *size)
    with torch.no_grad():
        meta_style = model(x)
        meta_ref = reference_features(ref, x,
                                      meta_interpolation(ref.pos_embed, grid))
        timm_ref = reference_features(ref, x)
        model.interpolate_offset, model.interpolate_antialias = 0., True
        try:
            timm_style = model(x)
        finally:
            model.interpolate_offset, model.interpolate_antialias = 0.1, False
    for ours, m_ref, t_ref, t_ours in zip(meta_style, meta_ref, timm_ref,
                                          timm_style):
        assert rel_err(ours[0], m_ref[0]) < 1e-4
        assert rel_err(t_ours[0], t_ref[0]) < 1e-4
        # the two conventions really differ (~2% with these weights)
        assert rel_err(ours[0], t_ref[0]) > 1e-3


def test_register_token_parity_with_timm(tmp_path):
    """Meta inserts registers after the positional embedding; timm with
    zero positional embeddings for its ``reg_token`` s does the same."""
    torch.manual_seed(0)
    ref = timm.models.vision_transformer.VisionTransformer(
        img_size=518,
        patch_size=14,
        embed_dim=32,
        depth=2,
        num_heads=2,
        mlp_ratio=2.,
        init_values=1e-5,
        reg_tokens=4,
        no_embed_class=False).eval()
    make_blocks_matter(ref)
    with torch.no_grad():
        ref.pos_embed[:, 1:5] = 0
    sd = ref.state_dict()
    meta_sd = {
        k: v
        for k, v in sd.items() if k not in ('reg_token', 'pos_embed')
    }
    meta_sd['register_tokens'] = sd['reg_token']
    meta_sd['pos_embed'] = torch.cat(
        (sd['pos_embed'][:, :1], sd['pos_embed'][:, 5:]), dim=1)
    torch.save(meta_sd, tmp_path / 'reg4.pth')
    model = tiny(
        arch=dict(TINY, num_layers=2),
        out_indices=(0, 1),
        num_register_tokens=4,
        init_cfg=pretrained(tmp_path / 'reg4.pth')).eval()
    # Meta's hub settings for the "with registers" models
    assert model.interpolate_offset == 0 and model.interpolate_antialias
    x = torch.randn(1, 3, 518, 518)
    with torch.no_grad():
        ours = model(x)
        theirs = ref.get_intermediate_layers(
            x, n=(0, 1), reshape=True, norm=True)
    for out, expected in zip(ours, theirs):
        assert rel_err(out, expected) < 1e-4


# ------------------------------------------------------- training controls
def test_frozen_stages():
    model = tiny(frozen_stages=1)
    model.train()
    frozen = [model.patch_embed, model.layers[0]]
    for module in frozen:
        assert not any(p.requires_grad for p in module.parameters())
        assert not any(m.training for m in module.modules())
    assert not model.cls_token.requires_grad
    assert not model.pos_embed.requires_grad
    assert all(p.requires_grad for p in model.layers[1].parameters())
    assert model.layers[1].training and not model.is_frozen
    outs = model(torch.randn(1, 3, 28, 28))
    outs[0].sum().backward()
    assert model.layers[0].attn.qkv.weight.grad is None
    assert model.layers[2].attn.qkv.weight.grad is not None


@pytest.mark.parametrize('cfg', [dict(freeze=True), dict(frozen_stages=3)])
def test_freeze_everything(cfg):
    model = tiny(num_register_tokens=1, **cfg)
    model.train()
    assert model.is_frozen
    assert all(not p.requires_grad for p in model.parameters())
    assert not any(m.training for m in model.modules() if m is not model)


def test_unused_trailing_blocks_are_frozen():
    model = tiny(out_indices=(1, ))
    assert not any(p.requires_grad for p in model.layers[2].parameters())
    assert all(p.requires_grad for p in model.layers[1].parameters())


def test_with_cp_matches_plain():
    plain = tiny(drop_path_rate=0.)
    make_blocks_matter(plain)
    ckpt = tiny(with_cp=True)
    ckpt.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, 42, 56)
    grads = []
    for model in (plain, ckpt):
        model.train()
        out, = model(x)
        out.pow(2).mean().backward()
        grads.append({n: p.grad for n, p in model.named_parameters()})
        if model is plain:
            expected = out.detach()
    torch.testing.assert_close(out.detach(), expected)
    for name, grad in grads[0].items():
        torch.testing.assert_close(grads[1][name], grad, msg=name)


def test_drop_path_rates():
    model = tiny(arch=dict(TINY, ffn_type='swiglu_fused'), drop_path_rate=0.2)
    assert model.layers[0].attn.out_drop.drop_prob == 0
    assert model.layers[-1].attn.out_drop.drop_prob == pytest.approx(0.2)
    # MMPretrain's SwiGLU FFN has no drop path of its own
    assert model.layers[-1].ffn.dropout_layer.drop_prob == pytest.approx(0.2)


def test_get_layer_depth():
    model = tiny(num_register_tokens=1)
    assert model.get_layer_depth('backbone.pos_embed', 'backbone.') == (0, 5)
    assert model.get_layer_depth('backbone.register_tokens',
                                 'backbone.') == (0, 5)
    assert model.get_layer_depth('backbone.layers.1.ffn.w3.weight',
                                 'backbone.') == (2, 5)
    assert model.get_layer_depth('backbone.ln1.weight', 'backbone.') == (4, 5)
    assert model.get_layer_depth('decode_head.bn.weight',
                                 'backbone.') == (4, 5)
