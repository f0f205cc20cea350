"""DINOv2's linear segmentation head: batch norm + 1x1 conv."""
from typing import List, Optional, Sequence, Union

import torch
from mmcv.cnn import build_norm_layer
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.models.utils import resize
from mmseg.registry import MODELS

Inputs = Sequence[Union[torch.Tensor, List[torch.Tensor]]]


@MODELS.register_module()
class DINOv2LinearHead(BaseDecodeHead):
    """The linear head of DINOv2's segmentation evaluation (its ``BNHead``).

    The selected inputs are resized to the first selected feature map's size
    and concatenated (``resize_concat``), then pass a batch norm and the 1x1
    classifier conv (``conv_seg``). There is no other layer, so ``channels``
    is the concatenated width.

    Inputs may be ``[featmap, cls_token]`` pairs (``DINOv2`` with
    ``output_cls_token=True``): as in DINOv2, the pairs are flattened into
    one list before ``in_index`` selects from it, and a class token (B, C)
    is spread over the whole map. E.g. the last block with its class token:
    ``in_index=[0, 1], in_channels=[C, C]``; the last four blocks (the "+ms"
    recipe), ``out_indices=(8, 9, 10, 11)``, ``in_index=[0, 1, 2, 3]``.

    Args:
        in_channels (int | Sequence[int]): Width of each selected input.
        in_index (int | Sequence[int]): Indices into the flattened inputs.
            Defaults to 0.
        channels (int, optional): Must equal the sum of ``in_channels``;
            None computes it. Defaults to None.
        norm_cfg (dict): The batch norm; DINOv2 uses ``SyncBN`` on several
            GPUs. Defaults to ``dict(type='BN')``.
        dropout_ratio (float): Dropout before ``conv_seg``; DINOv2 uses 0.
            Defaults to 0.
        **kwargs: The rest of ``BaseDecodeHead``'s arguments
            (``num_classes``, ``loss_decode``, ``align_corners`` ...).
    """

    def __init__(self,
                 in_channels: Union[int, Sequence[int]],
                 in_index: Union[int, Sequence[int]] = 0,
                 channels: Optional[int] = None,
                 norm_cfg: dict = dict(type='BN'),
                 dropout_ratio: float = 0.,
                 **kwargs) -> None:
        if isinstance(in_channels, int):
            in_channels = [in_channels]
        if isinstance(in_index, int):
            in_index = [in_index]
        in_channels, in_index = list(in_channels), list(in_index)
        total = sum(in_channels)
        if channels is not None and channels != total:
            raise ValueError(f'DINOv2LinearHead has no layer between the '
                             f'inputs and conv_seg: channels must be '
                             f'sum(in_channels)={total}, got {channels}')
        kwargs.setdefault('input_transform', 'resize_concat')
        if kwargs['input_transform'] != 'resize_concat':
            raise ValueError('DINOv2LinearHead only supports '
                             "input_transform='resize_concat'")
        super().__init__(
            in_channels=in_channels,
            channels=total,
            in_index=in_index,
            norm_cfg=norm_cfg,
            dropout_ratio=dropout_ratio,
            **kwargs)
        self.bn = build_norm_layer(norm_cfg, total)[1]
        self.input_widths = in_channels  # MMSeg keeps only their sum

    def _transform_inputs(self, inputs: Inputs) -> torch.Tensor:
        """Flatten ``[map, cls]`` pairs, select, resize and concatenate."""
        flat = []
        for item in inputs:
            flat.extend(item if isinstance(item, (list, tuple)) else [item])
        if max(self.in_index) >= len(flat):
            raise ValueError(
                f'DINOv2LinearHead in_index={self.in_index} but the backbone '
                f'gives {len(flat)} inputs (a [map, cls_token] pair counts '
                'two: does output_cls_token match the head?)')
        selected = [flat[i] for i in self.in_index]
        widths = [x.shape[1] for x in selected]
        if widths != self.input_widths:
            raise ValueError(
                f'DINOv2LinearHead in_channels={self.input_widths} but the '
                f'selected inputs have {widths}')
        size = next((x.shape[2:] for x in selected if x.dim() == 4), None)
        if size is None:
            raise ValueError('DINOv2LinearHead needs at least one feature '
                             'map among the selected inputs')
        maps = []
        for x in selected:
            if x.dim() == 2:  # a class token covers every pixel
                maps.append(x[:, :, None, None].expand(-1, -1, *size))
            else:
                maps.append(
                    resize(
                        x,
                        size=size,
                        mode='bilinear',
                        align_corners=self.align_corners))
        return torch.cat(maps, dim=1)

    def forward(self, inputs: Inputs) -> torch.Tensor:
        """Segmentation logits at the first selected map's resolution."""
        return self.cls_seg(self.bn(self._transform_inputs(inputs)))
