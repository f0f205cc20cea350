from .dinov2_cls_neck import DINOv2ClsNeck, dinov2_linear_input

__all__ = ['DINOv2ClsNeck', 'dinov2_linear_input']
