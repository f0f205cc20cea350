from .layer_decay import DINOv2LayerDecayOptimizerConstructor

__all__ = ['DINOv2LayerDecayOptimizerConstructor']
