"""DINOv2's linear-evaluation features for MMPretrain classifiers."""
from typing import Sequence, Tuple

import torch
from mmengine.model import BaseModule
from mmpretrain.registry import MODELS
from torch import Tensor


def dinov2_linear_input(outputs: Sequence[Sequence[Tensor]],
                        use_avgpool: bool = False) -> Tensor:
    """The class tokens of every output, then optionally the mean patch
    token of the last, concatenated (DINOv2's ``create_linear_input``).

    Args:
        outputs: per backbone output, ``[featmap (B, C, h, w), cls (B, C)]``
            as ``DINOv2(output_cls_token=True)`` returns them.
        use_avgpool (bool): append the last output's mean patch token.

    Returns:
        Tensor: (B, C * (len(outputs) + use_avgpool)).
    """
    if not outputs or not all(
            isinstance(o, (list, tuple)) and len(o) == 2 for o in outputs):
        raise TypeError('DINOv2ClsNeck needs [featmap, class token] per '
                        'backbone output: set the backbone\'s '
                        'output_cls_token=True')
    tokens = [cls_token for _, cls_token in outputs]
    if use_avgpool:
        tokens.append(outputs[-1][0].mean(dim=(2, 3)))
    return torch.cat(tokens, dim=1)


@MODELS.register_module()
class DINOv2ClsNeck(BaseModule):
    """Features for a linear head as DINOv2's linear evaluation makes them.

    Class token of each ``out_indices`` block (the last block when there is
    one), concatenated with the mean of the last block's patch tokens when
    ``use_avgpool``; the head's ``in_channels`` is ``embed_dims`` times the
    number of pieces. No parameters.

    Args:
        use_avgpool (bool): Defaults to False (class token only).
        init_cfg (dict, optional): Defaults to None.
    """

    def __init__(self, use_avgpool: bool = False, init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.use_avgpool = use_avgpool

    def forward(self, inputs: Sequence[Sequence[Tensor]]) -> Tuple[Tensor]:
        return (dinov2_linear_input(inputs, self.use_avgpool), )
