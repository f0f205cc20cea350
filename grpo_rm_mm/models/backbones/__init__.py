from .dinov2 import DINOv2
from .dinov3 import DINOv3

__all__ = ['DINOv2', 'DINOv3']
