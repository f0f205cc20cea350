"""Every DINOv2 checkpoint format in circulation loads into the backbone.

Each file is written in its format's exact layout from a randomly
initialised reference model (timm's ``create_model(pretrained=False)``,
transformers' ``Dinov2Model`` / ``Dinov2WithRegistersModel`` from a config
and ``save_pretrained``), loaded by ``DINOv2`` through ``init_cfg``, and the
backbone's features at 518 x 518 must equal the reference model's. The
second container of each reference (``.pth`` beside ``.safetensors``,
``pytorch_model.bin`` beside ``model.safetensors``) must load bit for bit
the same weights. ViT-g is checked on the meta device (keys and shapes
only: its weights would take 4.5 GB).
"""
import grpo_rm_mm  # noqa: F401,I001  (compat shims before the stack)
import runpy
import sys

import pytest
import timm
import torch
from safetensors.torch import load_file, save_file
from transformers import (Dinov2Config, Dinov2Model,
                          Dinov2WithRegistersConfig, Dinov2WithRegistersModel)
from transformers.core_model_loading import revert_weight_conversion

from grpo_rm_mm.models.backbones import DINOv2
from grpo_rm_mm.models.backbones.checkpoint_io import (CheckpointFileError,
                                                       load_checkpoint_file)
from grpo_rm_mm.models.backbones.dinov2_checkpoint import (
    detect_format, to_mmpretrain)

#: float32 features of two implementations of the same 12-block ViT-S
#: (fused vs split q/k/v; features up to |6.2|): bitwise equal on the
#: development machine; the tolerance (~70 ulps of the largest feature)
#: leaves room for other BLAS kernels across 12 blocks
FEATURE_TOL = dict(rtol=1e-5, atol=5e-5)
HF_SMALL = dict(hidden_size=384, num_hidden_layers=12, num_attention_heads=6,
                image_size=518, patch_size=14)
HF_GIANT = dict(hidden_size=1536, num_hidden_layers=40,
                num_attention_heads=24, image_size=518, patch_size=14,
                use_swiglu_ffn=True)


def randomised(build, seed: int) -> torch.nn.Module:
    """``build()`` on the meta device, then every tensor drawn at random
    (scales and norm weights around 1, so that every block matters)."""
    with torch.device('meta'):
        model = build()
    model.to_empty(device='cpu')
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if tensor.dim() == 1 and not name.endswith('bias'):
                tensor.copy_(torch.rand(tensor.shape, generator=gen) + 0.5)
            else:
                tensor.copy_(torch.randn(tensor.shape, generator=gen) * 0.05)
    return model.eval()


def ours(path, registers: int, init_cfg: bool = True) -> DINOv2:
    """The backbone loading ``path`` through ``init_cfg`` (as configs do),
    or with ``load_pretrained`` alone (no random init first: faster)."""
    model = DINOv2(
        arch='small',
        num_register_tokens=registers,
        out_indices=(11, ),
        output_cls_token=True,
        init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    if init_cfg:
        model.init_weights()
    else:
        model.load_pretrained(str(path))
    return model.eval()


def assert_same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    """Renaming and concatenating never compute: bitwise equal."""
    sa, sb = a.state_dict(), b.state_dict()
    assert set(sa) == set(sb)
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key


def check_features(model: DINOv2, tokens: torch.Tensor, x: torch.Tensor,
                   registers: int) -> None:
    """``tokens``: the reference's normed output tokens (B, 1 + R + N, C).
    """
    with torch.no_grad():
        ((featmap, cls_token), ) = model(x)
    assert featmap.shape == (1, 384, 37, 37)
    patches = featmap.flatten(2).transpose(1, 2)
    torch.testing.assert_close(patches, tokens[:, 1 + registers:],
                               **FEATURE_TOL)
    torch.testing.assert_close(cls_token, tokens[:, 0], **FEATURE_TOL)


@pytest.fixture(scope='module')
def image():
    return torch.randn(1, 3, 518, 518,
                       generator=torch.Generator().manual_seed(0))


# ------------------------------------------------------------------- timm
def test_timm_files_with_registers(image, tmp_path):
    """timm's ``reg4`` layout: ``reg_token``, no class slot in ``pos_embed``.
    (timm's models without registers have Meta's names exactly:
    ``test_dinov2.py::test_parity_with_timm_at_518`` loads them.)"""
    ref = randomised(lambda: timm.create_model(
        'vit_small_patch14_reg4_dinov2', pretrained=False), 1)
    state = ref.state_dict()
    assert 'reg_token' in state and state['pos_embed'].shape[1] == 1369
    assert detect_format(state) == 'timm'
    torch.save(state, tmp_path / 'model.pth')
    save_file(state, str(tmp_path / 'model.safetensors'))
    with torch.no_grad():
        tokens = ref.forward_features(image)
    from_safetensors = ours(tmp_path / 'model.safetensors', 4)
    check_features(from_safetensors, tokens, image, 4)
    assert_same_weights(ours(tmp_path / 'model.pth', 4, init_cfg=False),
                        from_safetensors)


# ----------------------------------------------------------- transformers
def hf_files(model, folder) -> None:
    """``save_pretrained``'s ``model.safetensors`` (the hub layout), and
    the ``pytorch_model.bin`` that transformers < 5 wrote: ``torch.save``
    of the same names and tensors (transformers 5 writes safetensors
    only)."""
    model.save_pretrained(str(folder))
    torch.save(load_file(str(folder / 'model.safetensors')),
               folder / 'pytorch_model.bin')


@pytest.mark.parametrize('registers', [0, 4])
def test_transformers_files(registers, image, tmp_path):
    if registers:
        build = (lambda: Dinov2WithRegistersModel(
            Dinov2WithRegistersConfig(num_register_tokens=registers,
                                      **HF_SMALL)))
    else:
        build = (lambda: Dinov2Model(Dinov2Config(**HF_SMALL)))
    ref = randomised(build, 2)
    hf_files(ref, tmp_path)
    hub_keys = set(load_file(str(tmp_path / 'model.safetensors')))
    # the hub's names, as the issue lists them
    assert 'encoder.layer.0.attention.attention.query.weight' in hub_keys
    assert 'encoder.layer.0.layer_scale1.lambda1' in hub_keys
    assert ('embeddings.register_tokens' in hub_keys) == bool(registers)
    with torch.no_grad():
        tokens = ref(pixel_values=image).last_hidden_state
    # (the init_cfg path is the timm test's: load_pretrained alone here)
    from_safetensors = ours(tmp_path / 'model.safetensors', registers,
                            init_cfg=False)
    check_features(from_safetensors, tokens, image, registers)
    assert_same_weights(
        ours(tmp_path / 'pytorch_model.bin', registers, init_cfg=False),
        from_safetensors)
    # transformers 5's in-memory names (q_proj, ...) map to the same
    converted, fmt = to_mmpretrain(ref.state_dict())
    assert fmt == 'transformers'
    loaded = from_safetensors.state_dict()
    assert set(converted) == set(loaded)
    for key, value in converted.items():
        assert torch.equal(value, loaded[key]), key


# ----------------------------------------------------------------- giant
def giant(registers: int) -> dict:
    with torch.device('meta'):
        model = DINOv2(arch='giant', num_register_tokens=registers)
    return {k: v.shape for k, v in model.state_dict().items()}


def hf_giant(registers: int):
    if registers:
        return Dinov2WithRegistersModel(
            Dinov2WithRegistersConfig(num_register_tokens=registers,
                                      **HF_GIANT))
    return Dinov2Model(Dinov2Config(**HF_GIANT))


@pytest.mark.parametrize('registers', [0, 4])
def test_giant_keys_and_shapes_of_every_format(registers):
    expected = giant(registers)
    with torch.device('meta'):
        timm_name = ('vit_giant_patch14_reg4_dinov2'
                     if registers else 'vit_giant_patch14_dinov2')
        timm_model = timm.create_model(timm_name, pretrained=False)
        hf_model = hf_giant(registers)
    hf_state = hf_model.state_dict()
    sources = {
        'timm': timm_model.state_dict(),
        # the hub file's names (what save_pretrained writes) ...
        'transformers': revert_weight_conversion(hf_model, dict(hf_state)),
        # ... and transformers 5's in-memory ones
        'transformers-v5': hf_state,
    }
    # timm names the SwiGLU layers fc1 / fc2: they must not be read as an
    # MLP (w12 is 2 x 4096 wide)
    assert sources['timm']['blocks.0.mlp.fc1.weight'].shape == (8192, 1536)
    for source, state in sources.items():
        converted, fmt = to_mmpretrain(state)
        assert fmt == source.split('-')[0]
        assert {k: v.shape for k, v in converted.items()} == expected, source


# ----------------------------------------------------------------- errors
def test_unknown_format_names_first_keys_and_known_formats(tmp_path):
    torch.save({'encoder.weight': torch.zeros(2), 'head.bias': torch.zeros(1)},
               tmp_path / 'other.pth')
    with pytest.raises(ValueError) as err:
        ours(tmp_path / 'other.pth', 0, init_cfg=False)
    message = str(err.value)
    assert "First keys: ['encoder.weight', 'head.bias']" in message
    for fmt in ('meta', 'timm', 'transformers', 'mmpretrain'):
        assert f'{fmt}: ' in message


def test_classification_wrapper_prefix_is_stripped():
    """transformers' Dinov2ForImageClassification keeps the backbone under
    ``dinov2.`` beside its ``classifier``."""
    model = randomised(lambda: Dinov2Model(Dinov2Config(
        hidden_size=32, num_hidden_layers=1, num_attention_heads=2)), 3)
    hub = revert_weight_conversion(model, model.state_dict())
    state = {f'dinov2.{k}': v for k, v in hub.items()}
    state['classifier.weight'] = torch.zeros(10, 64)
    converted, fmt = to_mmpretrain(state)
    assert fmt == 'transformers'
    assert 'layers.0.attn.qkv.weight' in converted
    assert not any(k.startswith('classifier') for k in converted)


@pytest.mark.parametrize('content, message', [
    (b'', 'is empty'),
    (b'version https://git-lfs.github.com/spec/v1\noid sha256:0\n',
     'Git LFS pointer'),
    (b'<!DOCTYPE html><html>', 'web page'),
])
def test_unreadable_files_are_named(tmp_path, content, message):
    path = tmp_path / 'dinov2.pth'
    path.write_bytes(content)
    with pytest.raises(CheckpointFileError, match=message) as err:
        load_checkpoint_file(str(path))
    assert str(path) in str(err.value)


@pytest.mark.parametrize('name', ['model.safetensors', 'model.pth',
                                  'no_suffix'])
def test_truncated_files_are_named(tmp_path, name):
    state = {'a': torch.randn(64, 64), 'b': torch.randn(8)}
    whole = tmp_path / ('whole.safetensors'
                        if 'safetensors' in name else 'whole.pth')
    if whole.suffix == '.safetensors':
        save_file(state, str(whole))
    else:
        torch.save(state, whole)
    assert torch.equal(load_checkpoint_file(str(whole))['a'], state['a'])
    path = tmp_path / name
    data = whole.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    with pytest.raises(CheckpointFileError, match='truncated') as err:
        load_checkpoint_file(str(path))
    assert str(path) in str(err.value)


def test_safetensors_is_read_without_torch_load(tmp_path, monkeypatch):
    """The safetensors package reads it, whatever torch.load can do."""
    save_file({'x': torch.arange(4.)}, str(tmp_path / 'w.safetensors'))

    def refuse(*args, **kwargs):
        raise AssertionError('torch.load must not read safetensors')

    monkeypatch.setattr(torch, 'load', refuse)
    assert load_checkpoint_file(
        str(tmp_path / 'w.safetensors'))['x'].tolist() == [0., 1., 2., 3.]


def test_sharded_transformers_files(tmp_path):
    model = randomised(lambda: Dinov2Model(Dinov2Config(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2)), 4)
    model.save_pretrained(str(tmp_path / 'sharded'), max_shard_size='20KB')
    model.save_pretrained(str(tmp_path / 'whole'))
    assert (tmp_path / 'sharded' / 'model.safetensors.index.json').exists()
    sharded = load_checkpoint_file(str(tmp_path / 'sharded'))
    whole = load_checkpoint_file(str(tmp_path / 'whole'))
    assert set(sharded) == set(whole)
    assert all(torch.equal(sharded[k], whole[k]) for k in whole)


# ------------------------------------------------------------- converter
def convert(monkeypatch, *args):
    monkeypatch.setattr(sys, 'argv',
                        ['convert_dinov2.py'] + [str(a) for a in args])
    runpy.run_path('tools/convert_dinov2.py', run_name='__main__')


@pytest.mark.parametrize('source', ['timm-reg4', 'transformers-reg4'])
def test_convert_tool_reads_every_format(source, tmp_path, monkeypatch):
    tiny = dict(img_size=518, patch_size=14, embed_dim=32, depth=2,
                num_heads=2, reg_tokens=4, no_embed_class=True,
                init_values=1.0)
    if source.startswith('timm'):
        ref = randomised(
            lambda: timm.models.vision_transformer.VisionTransformer(
                num_classes=0, **tiny), 5)
        src = tmp_path / 'timm.safetensors'
        save_file(ref.state_dict(), str(src))
    else:
        ref = randomised(lambda: Dinov2WithRegistersModel(
            Dinov2WithRegistersConfig(
                hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                num_register_tokens=4, image_size=518, patch_size=14)), 5)
        hf_files(ref, tmp_path / 'hf')
        src = tmp_path / 'hf' / 'model.safetensors'
    convert(monkeypatch, src, tmp_path / 'ours.pth')
    convert(monkeypatch, src, tmp_path / 'meta.pth', '--to', 'meta')
    arch = dict(embed_dims=32, num_layers=2, num_heads=2,
                feedforward_channels=128)
    loaded = []
    for path in (src, tmp_path / 'ours.pth', tmp_path / 'meta.pth'):
        model = DINOv2(arch=arch, num_register_tokens=4,
                       init_cfg=dict(type='Pretrained', checkpoint=str(path)))
        model.init_weights()
        loaded.append(model)
    assert detect_format(torch.load(tmp_path / 'meta.pth')) == 'meta'
    for model in loaded[1:]:
        assert_same_weights(model, loaded[0])
