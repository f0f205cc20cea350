"""Representation evaluation: weighted kNN and a linear probe on frozen
features (``tools/eval_representation.py``)."""
from .checks import accuracy
from .features import extract_features
from .knn import knn_predict
from .linear_probe import LinearProbe, fit_linear_probe, linear_probe_predict
from .representation import evaluate_representation

__all__ = [
    'LinearProbe', 'accuracy', 'evaluate_representation', 'extract_features',
    'fit_linear_probe', 'knn_predict', 'linear_probe_predict'
]
