"""Layer-wise learning-rate decay for MMSeg models with a DINOv2 backbone."""
from functools import partial
from typing import Callable, List, Optional

from mmpretrain.engine.optimizers import \
    LearningRateDecayOptimWrapperConstructor
from mmseg.registry import OPTIM_WRAPPER_CONSTRUCTORS
from torch import nn


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class DINOv2LayerDecayOptimizerConstructor(
        LearningRateDecayOptimWrapperConstructor):
    """MMPretrain's layer-decay constructor, usable from MMSeg segmentors.

    MMSeg's ``LayerDecayOptimizerConstructor`` accepts only BEiT, MAE and
    ConvNeXt backbones, and MMPretrain's constructor asks the *model* for
    ``get_layer_depth``, which MMSeg's ``EncoderDecoder`` does not have. This
    one asks ``model.backbone`` (any backbone with ``get_layer_depth``, such
    as ``DINOv2``), with the ``backbone.`` prefix; parameters outside the
    backbone (the heads) get the full learning rate.

    With ``num_layers`` blocks, the learning rate of a parameter at depth
    ``d`` (embeddings 0, block ``i`` ``i + 1``, final norm and heads
    ``num_layers + 1``) is ``lr * layer_decay_rate ** (num_layers + 1 - d)``.
    Frozen parameters are left out of the optimizer.

    ``paramwise_cfg`` takes MMPretrain's fields: ``layer_decay_rate``,
    ``bias_decay_mult``, ``norm_decay_mult``, ``flat_decay_mult`` and
    ``custom_keys`` (``decay_mult`` only). Example::

        optim_wrapper = dict(
            optimizer=dict(type='AdamW', lr=1e-4, weight_decay=0.05),
            constructor='DINOv2LayerDecayOptimizerConstructor',
            paramwise_cfg=dict(
                layer_decay_rate=0.9,
                flat_decay_mult=0.,
                custom_keys={
                    '.cls_token': dict(decay_mult=0.),
                    '.pos_embed': dict(decay_mult=0.),
                }))
    """

    def add_params(self,
                   params: List[dict],
                   module: nn.Module,
                   prefix: str = '',
                   get_layer_depth: Optional[Callable] = None,
                   **kwargs) -> None:
        """Add ``module``'s parameters with layer-wise learning rates.

        Args:
            params (list[dict]): Parameter groups, extended in place.
            module (nn.Module): The model (or, when recursing, a submodule).
            prefix (str): ``module``'s name prefix. Defaults to ''.
            get_layer_depth (Callable, optional): Depth of a parameter name;
                found on the model or its backbone when None.
        """
        if get_layer_depth is None and prefix == '':
            get_layer_depth = self._find_layer_depth(module)
        super().add_params(
            params,
            module,
            prefix=prefix,
            get_layer_depth=get_layer_depth,
            **kwargs)

    @staticmethod
    def _find_layer_depth(model: nn.Module) -> Callable:
        if hasattr(model, 'get_layer_depth'):
            return model.get_layer_depth
        backbone = getattr(model, 'backbone', None)
        if hasattr(backbone, 'get_layer_depth'):
            return partial(backbone.get_layer_depth, prefix='backbone.')
        raise NotImplementedError(
            f'layer-wise learning-rate decay needs get_layer_depth() on '
            f'{type(model).__name__} or on its backbone '
            f'({type(backbone).__name__})')
