"""grpo-rm-mm: GRPO-RM fine-tuning of DINOv2 on MMSegmentation / MMPretrain.

Importing the package first applies the stack's compatibility shims
(:mod:`grpo_rm_mm.compat`), then registers every component in the
MMSegmentation, MMPretrain and MMEngine registries.
"""
from . import compat

compat.apply()

from . import datasets, engine, evaluation, models  # noqa: E402,F401
from .version import __version__  # noqa: E402

__all__ = [
    '__version__', 'compat', 'datasets', 'engine', 'evaluation', 'models'
]
