"""DINOv2's linear head, a DINOv2 EncoderDecoder and layer-wise lr decay."""
import grpo_rm_mm  # noqa: F401,I001  (compat shims before the stack)
import pytest
import torch
from mmengine.config import ConfigDict
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

from grpo_rm_mm.models.backbones.dinov2_checkpoint import mmpretrain_to_meta

TINY = dict(embed_dims=32, num_layers=3, num_heads=2, feedforward_channels=64)


@pytest.fixture(autouse=True)
def mmseg_scope():
    """Build as MMSeg's runner does (``default_scope='mmseg'``)."""
    with DefaultScope.overwrite_default_scope('mmseg'):
        yield


def head_cfg(**kwargs) -> dict:
    cfg = dict(
        type='DINOv2LinearHead',
        in_channels=[32, 32],
        in_index=[0, 1],
        num_classes=5,
        loss_decode=dict(type='CrossEntropyLoss', loss_weight=1.0))
    cfg.update(kwargs)
    return cfg


def segmentor_cfg(**backbone) -> dict:
    return dict(
        type='EncoderDecoder',
        data_preprocessor=dict(
            type='SegDataPreProcessor',
            mean=[123.675, 116.28, 103.53],
            std=[58.395, 57.12, 57.375],
            bgr_to_rgb=True,
            pad_val=0,
            seg_pad_val=255,
            size=(64, 64)),  # not a multiple of 14: centre-padded to 70
        backbone=dict(
            type='DINOv2',
            arch=TINY,
            out_indices=(2, ),
            output_cls_token=True,
            **backbone),
        decode_head=head_cfg(),
        train_cfg=dict(),
        test_cfg=ConfigDict(mode='whole'))


def test_head_forward_with_cls_token():
    head = MODELS.build(head_cfg()).eval()
    featmap, cls_token = torch.randn(2, 32, 5, 7), torch.randn(2, 32)
    with torch.no_grad():
        logits = head(([featmap, cls_token], ))
        expected = head.conv_seg(
            head.bn(
                torch.cat(
                    [featmap, cls_token[:, :, None, None].expand_as(featmap)],
                    dim=1)))
    assert head.channels == 64 and head.bn.num_features == 64
    assert logits.shape == (2, 5, 5, 7)
    torch.testing.assert_close(logits, expected)


def test_head_resize_concat_of_several_layers():
    head = MODELS.build(
        head_cfg(in_channels=[32, 16, 32], in_index=[0, 1, 3])).eval()
    inputs = (torch.randn(1, 32, 6, 6), torch.randn(1, 16, 3, 3),
              torch.randn(1, 8, 6, 6), torch.randn(1, 32, 6, 6))
    with torch.no_grad():
        assert head(inputs).shape == (1, 5, 6, 6)


def test_head_rejects_a_hidden_width():
    with pytest.raises(ValueError, match='sum\\(in_channels\\)=64'):
        MODELS.build(head_cfg(channels=128))


def make_batch(sizes, num_classes=5):
    inputs, samples = [], []
    for h, w in sizes:
        inputs.append(torch.randint(0, 256, (3, h, w), dtype=torch.uint8))
        label = torch.randint(0, num_classes, (1, h, w))
        label[:, :3] = 255  # ignored pixels
        sample = SegDataSample()
        sample.gt_sem_seg = PixelData(data=label)
        sample.set_metainfo(dict(img_shape=(h, w), ori_shape=(h, w)))
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def test_encoder_decoder_train_step_and_predict():
    model = MODELS.build(segmentor_cfg())
    model.init_weights()
    optim_wrapper = build_optim_wrapper(
        model, dict(optimizer=dict(type='SGD', lr=0.1)))
    before = model.decode_head.conv_seg.weight.detach().clone()
    data = make_batch([(60, 50), (60, 50)])
    model.train()
    log_vars = model.train_step(data, optim_wrapper)
    assert torch.isfinite(log_vars['decode.loss_ce'])
    assert not torch.equal(before, model.decode_head.conv_seg.weight)
    model.eval()
    with torch.no_grad():
        results = model.test_step(make_batch([(60, 50)]))
    assert results[0].pred_sem_seg.data.shape == (1, 60, 50)


def test_encoder_decoder_pretrained_meta_checkpoint(tmp_path):
    """``EncoderDecoder(pretrained=...)`` hands the path to the backbone."""
    source = MODELS.build(segmentor_cfg()).backbone
    torch.save(mmpretrain_to_meta(source.state_dict()), tmp_path / 'meta.pth')
    cfg = ConfigDict(segmentor_cfg(), pretrained=str(tmp_path / 'meta.pth'))
    model = MODELS.build(cfg)
    model.init_weights()
    for key, value in source.state_dict().items():
        assert torch.equal(model.backbone.state_dict()[key], value), key


def test_layer_decay_constructor_with_encoder_decoder():
    model = MODELS.build(segmentor_cfg(frozen_stages=0))
    optim_wrapper = build_optim_wrapper(
        model,
        dict(
            optimizer=dict(type='AdamW', lr=1.0, weight_decay=0.05),
            constructor='DINOv2LayerDecayOptimizerConstructor',
            paramwise_cfg=dict(layer_decay_rate=0.5, flat_decay_mult=0.)))
    groups = {g['param_name']: g for g in optim_wrapper.optimizer.param_groups}
    # 3 blocks: depths 0 (embeddings), 1..3 (blocks), 4 (norm, head)
    assert groups['backbone.layers.0.attn.qkv.weight']['lr'] == 0.5**3
    assert groups['backbone.layers.2.attn.qkv.weight']['lr'] == 0.5
    assert groups['backbone.ln1.weight']['lr'] == 1.0
    assert groups['decode_head.conv_seg.weight']['lr'] == 1.0
    assert groups['decode_head.bn.weight']['weight_decay'] == 0.
    assert groups['backbone.layers.1.ffn.layers.1.weight'][
        'weight_decay'] == 0.05
    # frozen embeddings are not optimised at all
    assert not any(
        name.startswith(('backbone.patch_embed', 'backbone.pos'))
        for name in groups)


def test_layer_decay_constructor_needs_layer_depth():
    cfg = segmentor_cfg()
    cfg['backbone'] = dict(
        type='ResNetV1c', depth=18, out_indices=(3, ))  # MMSeg's: no depth
    cfg['decode_head'] = head_cfg(in_channels=[512], in_index=[0])
    model = MODELS.build(cfg)
    with pytest.raises(NotImplementedError, match='ResNet'):
        build_optim_wrapper(
            model,
            dict(
                optimizer=dict(type='SGD', lr=1.0),
                constructor='DINOv2LayerDecayOptimizerConstructor',
                paramwise_cfg=dict(layer_decay_rate=0.5)))


def test_head_names_mismatched_inputs():
    import pytest
    import torch

    from grpo_rm_mm.models.decode_heads import DINOv2LinearHead
    head = DINOv2LinearHead(in_channels=[8, 8], in_index=[0, 1],
                            num_classes=3)
    maps_only = (torch.randn(2, 8, 4, 4), )  # output_cls_token=False
    with pytest.raises(ValueError, match='output_cls_token'):
        head(maps_only)
    wide = ([torch.randn(2, 16, 4, 4), torch.randn(2, 16)], )
    with pytest.raises(ValueError, match=r'in_channels=\[8, 8\]'):
        head(wide)
