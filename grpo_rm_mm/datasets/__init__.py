from . import transforms  # noqa: F401
from .synthetic_voc import make_synthetic_voc

__all__ = ['make_synthetic_voc']
