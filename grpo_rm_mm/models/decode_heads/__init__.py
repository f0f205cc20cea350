from .dinov2_linear_head import DINOv2LinearHead

__all__ = ['DINOv2LinearHead']
