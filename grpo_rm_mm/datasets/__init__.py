from . import transforms  # noqa: F401
from .digits import DigitsDataset
from .synthetic_cls import make_synthetic_cls
from .synthetic_voc import make_synthetic_voc

__all__ = ['DigitsDataset', 'make_synthetic_cls', 'make_synthetic_voc']
