"""Evaluation: weighted kNN and a linear probe on frozen features
(``tools/eval_representation.py``), and MMSeg's IoU metric with background /
foreground IoU."""
from .checks import accuracy
from .class_iou_metric import ClassIoUMetric
from .features import extract_features
from .knn import knn_predict
from .linear_probe import LinearProbe, fit_linear_probe, linear_probe_predict
from .representation import evaluate_representation

__all__ = [
    'ClassIoUMetric', 'LinearProbe', 'accuracy', 'evaluate_representation',
    'extract_features', 'fit_linear_probe', 'knn_predict',
    'linear_probe_predict'
]
