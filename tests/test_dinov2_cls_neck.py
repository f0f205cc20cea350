"""DINOv2ClsNeck against MMPretrain's ViT run on the same weights."""
import pytest
import torch
from mmpretrain.models import VisionTransformer
from torch.testing import assert_close

from grpo_rm_mm.models.backbones.dinov2 import DINOv2
from grpo_rm_mm.models.necks import DINOv2ClsNeck

ARCH = dict(embed_dims=24, num_layers=3, num_heads=2,
            feedforward_channels=48)


@pytest.fixture(scope='module')
def pair():
    torch.manual_seed(0)
    ours = DINOv2(arch=ARCH, img_size=42, out_indices=(1, 2),
                  output_cls_token=True).eval()
    ours.init_weights()
    ref = VisionTransformer(arch=ARCH, img_size=42, patch_size=14,
                            out_type='raw', out_indices=(1, 2),
                            layer_scale_init_value=1e-5)
    ref.eval()  # MMPretrain's ViT.train() returns None
    # MMPretrain names: the same state dict loads into both
    ref.load_state_dict(ours.state_dict())
    return ours, ref


@pytest.mark.parametrize('use_avgpool', [False, True])
def test_neck_is_dinov2_linear_input(pair, use_avgpool):
    ours, ref = pair
    x = torch.randn(2, 3, 42, 42)
    with torch.no_grad():
        got, = DINOv2ClsNeck(use_avgpool)(ours(x))
        # MMPretrain norms only its last output: norm the middle one here
        mid, last = ref(x)
        mid = ref.ln1(mid)
    want = [mid[:, 0], last[:, 0]]
    if use_avgpool:
        want.append(last[:, 1:].mean(dim=1))
    assert got.shape == (2, 24 * len(want))
    assert_close(got, torch.cat(want, dim=1), atol=1e-5, rtol=1e-5)


def test_neck_needs_class_tokens():
    with pytest.raises(TypeError, match='output_cls_token=True'):
        DINOv2ClsNeck()((torch.zeros(1, 4, 2, 2), ))
