"""Evaluation: weighted kNN and a linear probe on frozen features
(``tools/eval_representation.py``), MMSeg's IoU metric with background /
foreground IoU, and MMPretrain's expected calibration error."""
from .calibration_metric import (ExpectedCalibrationError,
                                 expected_calibration_error)
from .checks import accuracy
from .class_iou_metric import ClassIoUMetric
from .features import extract_features
from .knn import knn_predict
from .linear_probe import LinearProbe, fit_linear_probe, linear_probe_predict
from .representation import evaluate_representation

__all__ = [
    'ClassIoUMetric', 'ExpectedCalibrationError', 'LinearProbe', 'accuracy',
    'evaluate_representation', 'expected_calibration_error',
    'extract_features', 'fit_linear_probe', 'knn_predict',
    'linear_probe_predict'
]
